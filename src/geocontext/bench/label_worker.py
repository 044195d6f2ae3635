"""Photos/s of one `label context` worker: ViT-B-32 (random weights: the same arithmetic as real ones)
against the loopback queue stand-in serving 640x480 JPEGs, with a run's default variants.

    python -m geocontext.bench.label_worker [--cache bench-cache] [--photos 500] [--limit 250] [--busy N]

Everything a real worker does is timed: the queue round trips, concurrent photo downloads, JPEG
decoding and preprocessing, image and title embedding, the run's variants and decoder, the posts.
The replies carry the titles (no title=1 request) and no `sleep`: the worker's own speed, not the
server's pace. --busy N runs N busy processes (`python -c 'while True: pass'`) beside the timed part:
a load others can reproduce; the load average is printed either way."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..competition import COLUMNS
from ..console import say


def photos(folder: Path, n: int, seed: int = 0) -> list[dict]:
    """`n` generated 640x480 JPEGs (a Geograph photo's usual size) and queue rows pointing at them."""
    from ..synthetic.demo import make_title, render_photo
    from ..synthetic.world import World, sample_labels

    rng = np.random.default_rng(seed)
    world = World.create(seed)
    y = sample_labels(world, n, rng)
    rows = []
    for i in range(n):
        path = folder / f"{i:06d}.jpg"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            render_photo(y[i], rng).resize((640, 480)).save(path, quality=85)
        rows.append({"gridimage_id": 1_000_000 + i, "title": make_title(y[i], COLUMNS, rng), "fullpath": path.name})
    return rows


def measure(cache: Path, n: int = 500, limit: int = 250, model: str = "ViT-B-32", precision: str = "auto",
            n_train: int = 20_000, busy: int = 0) -> dict:
    from ..embedding.encoder import EncoderConfig, load_encoder
    from ..embedding.embed import EmbedConfig
    from ..labeller.context import ContextWorker
    from ..labeller.queue import QueueClient, RetryPolicy
    from ..labeller.standin import QueueStandIn
    from ..labeller.worker import serve
    from .archive import trained_run

    run_dir = trained_run(cache, n_train=n_train)
    rows = photos(cache / "labeller-photos", n)
    encoder = load_encoder(EncoderConfig(model=model, random_weights=True, precision=precision))
    batch, _ = EmbedConfig().resolved(encoder.device.type)
    warm = [{"rows": [{**r, "gridimage_id": r["gridimage_id"] + 10_000_000} for r in rows[:batch]]}]
    replies = warm + [{"rows": rows[s:s + limit]} for s in range(0, n, limit)]
    with QueueStandIn(replies, photos=cache / "labeller-photos") as queue:
        for reply in queue.replies:
            reply["prefix"] = f"{queue.base}/photos/"
        client = QueueClient(queue.endpoint("clip"), 0, RetryPolicy())
        worker = ContextWorker(run_dir, encoder, client, batch_size=batch)
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            serve(client, worker, limit, loops=1)  # warm-up: first calls allocate and pick kernels
            burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
            try:
                load = [os.getloadavg()[0]]  # other jobs on the machine: the figure means little without it
                start = time.perf_counter()
                serve(client, worker, limit, loops=len(replies) - 1)
                wall = time.perf_counter() - start
                load.append(os.getloadavg()[0])
            finally:
                for burner in burners:
                    burner.kill()
                    burner.wait()
        posted = sum(1 for body in queue.posts for r in body if "label" in r and r["label"] != "Failed")
    lines = [l for l in log.getvalue().splitlines() if "batch" in l and "photos/s" in l][1:]
    return {"photos": n, "limit": limit, "batch_size": batch, "encoder": encoder.name, "precision": encoder.precision,
            "device": str(encoder.device), "wall_s": wall, "photos_per_s": n / wall, "records_posted": posted,
            "batch_lines": lines, "load_average": load, "cpus": os.cpu_count(), "busy": busy}


def section(r: dict) -> list[str]:
    return ["## 9. One context labeller worker", "",
            f"`geocontext label context` against the loopback queue stand-in: {r['photos']} photos (640x480 JPEG) in"
            f" batches of {r['limit']}, {r['encoder']} in {r['precision']} on {r['device']} (model batch {r['batch_size']}),"
            " the run's default variants; downloads, decoding, embedding, the variants and the posts all included."
            " Command: `python -m geocontext.bench.label_worker` (part of `make bench`).", "",
            f"**{r['photos_per_s']:.1f} photos/s** ({r['wall_s']:.1f} s for {r['photos']} photos after a warm-up batch).", "",
            *_load_line(r), "Per batch:", "", *[f"    {l}" for l in r["batch_lines"]], ""]


def _load_line(r: dict) -> list[str]:
    """The machine's load while it was measured: other jobs slow the figure."""
    if not r.get("load_average"):
        return []
    start, end = r["load_average"]
    beside = f" with {r['busy']} busy processes beside the worker" if r.get("busy") else ""
    return [f"The machine's 1-minute load average was {start:.1f} at the start and {end:.1f} at the end, on"
            f" {r['cpus']} CPUs{beside}.", ""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geocontext.bench.label_worker", description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("bench-cache"))
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--limit", type=int, default=250)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--busy", type=int, default=0, help="busy processes beside the timed part (a reproducible load)")
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    result = measure(args.cache, args.photos, args.limit, precision=args.precision, busy=args.busy)
    (args.cache / "labeller.json").write_text(json.dumps(result, indent=2))
    say("\n".join(section(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
