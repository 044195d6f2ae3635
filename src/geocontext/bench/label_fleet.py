"""Several `label` workers against the stand-in that answers as Geograph's server does (labeller/standin.py):
the share of photos embedded more than once when N workers share one IP, with and without --workers /
--worker-index, and a photo-host outage in the middle of a run.

    python -m geocontext.bench.label_fleet [--cache bench-cache] [--photos-per-worker 1500] [--limit 100] [--workers 2 4]
    python -m geocontext.bench.label_fleet --outage 30 --photos-per-worker 750 --workers 2

Each worker is its own process (`geocontext label context`; with --outage also `label types`), all on
loopback: one client IP, as N workers on one host or behind one NAT. The server's rules are the real
ones (rows per IP or per offset, `sleep` of ceil(sqrt(limit)) s after each batch). The model is the
tests' tiny random-weight CLIP plus SECONDS_A_PHOTO of simulated model time a photo (ViT-B-32 on this
2-core CPU, BENCHMARKS section 9), slept rather than computed so that N workers do not slow each other:
what is measured is the overlap, not the speed. Without the options every worker is served the rows of
the IP's offset, so the runs without them label --baseline-photos only."""
from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..console import say

SECONDS_A_PHOTO = 0.07
TINY_CLIP = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 32, "patch_size": 8},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
SLOW_MODEL = """
import sys, time
from geocontext.embedding.encoder import Encoder
fast = Encoder.encode_images
def slow(self, images):
    time.sleep({seconds} * len(images))
    return fast(self, images)
Encoder.encode_images = slow
from geocontext.cli import main
sys.exit(main(sys.argv[1:]))
"""


def tiny_run(work: Path, demo: Path) -> tuple[Path, list[str]]:
    """(run folder, encoder options of `label context`): a one-variant run on `demo`'s photos embedded by
    the tiny random-weight CLIP, the worker's own encoder (another is refused). Made once per folder."""
    from ..cli import main
    from ..decoding.select import DecodeConfig
    from ..pipeline.config import RunConfig
    from ..pipeline.run import run
    from ..training.config import TrainConfig, VariantConfig

    (work / "tiny.json").write_text(json.dumps(TINY_CLIP))
    encoder = ["--model", str(work / "tiny.json"), "--random-weights", "--device", "cpu", "--precision", "fp32"]
    if not (work / "run" / "run.json").exists():
        assert main(["embed", "--data", str(demo), "--out", str(work / "features"), "--workers", "0",
                     "--accept-missing", *encoder]) == 0
        config = RunConfig(variants=[VariantConfig("linear", train=TrainConfig(head="linear", epochs=2, lr=5e-2))],
                           decode=DecodeConfig(global_trials=4, per_tag_trials=4, label_sets=50))
        run(demo, work / "features", work / "run", config, accept_missing=True)
    return work / "run", encoder


def queue_photos(demo: Path, n: int, first: int = 1_000_000, titles: list[str] | None = None) -> list:
    """`n` queue photos cycling over the demo's training photos, with titles and (for `label types`) vectors."""
    from ..labeller.labeler_php import Photo

    paths = sorted(p.relative_to(demo).as_posix() for p in (demo / "train_images").rglob("*.jpg"))
    vector = base64.b64encode(np.random.default_rng(0).normal(size=512).astype("<f4").tobytes()).decode()
    titles = titles or [f"Photo {k} by the river" for k in range(n)]
    return [Photo(first + k, titles[k], f"/photos/{paths[k % len(paths)]}", f"/photos/{paths[k % len(paths)]}",
                  embeddings=vector, distance="64") for k in range(n)]


def _types_checkpoint(work: Path) -> Path:
    import torch

    from ..typetags.checkpoint import save_checkpoint
    from ..typetags.classifier import TypeClassifier

    path = work / "types.pth"
    if not path.exists():
        torch.manual_seed(0)
        save_checkpoint(path, TypeClassifier(clip_dim=512).eval())
    return path


def _launch(command: list[str], log: Path, seconds: float) -> subprocess.Popen:
    src = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", SLOW_MODEL.format(seconds=seconds), *command], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=log.parent)


def fleet(work: Path, demo: Path, photos: int, limit: int, workers: int, placed: bool, outage: float = 0.0,
          seconds: float = SECONDS_A_PHOTO, timeout: float = 3600.0) -> dict:
    """One run: `workers` context workers (and as many types workers with an outage) until the queue is
    done; per model the photos labelled, labelled more than once, answered Failed."""
    from ..labeller.standin import QueueStandIn

    run_dir, encoder = tiny_run(work, demo)
    models = {"clip": ["label", "context", "--run", str(run_dir), *encoder]}
    if outage:
        models["types"] = ["label", "types", "--checkpoint", str(_types_checkpoint(work))]
    name = f"{workers}w-{'offsets' if placed else 'none'}{'-outage' if outage else ''}"
    logs = work / "logs" / name
    logs.mkdir(parents=True, exist_ok=True)
    events: list[str] = []
    with QueueStandIn(photos=demo, table=queue_photos(demo, photos)) as queue:
        procs = [_launch([*command, "--endpoint", queue.endpoint(model), "--limit", str(limit),
                          *(["--workers", str(workers), "--worker-index", str(i)] if placed else [])],
                         logs / f"{model}-{i}.log", seconds)
                 for model, command in models.items() for i in range(workers)]
        began = time.monotonic()
        if outage:
            threading.Thread(target=_outage, args=(queue, photos, outage, began, events), daemon=True).start()
        while any(queue.php.left(m) for m in models) and time.monotonic() - began < timeout:
            time.sleep(0.5)
        wall = time.monotonic() - began
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
        left = {m: len(queue.php.left(m)) for m in models}
        rows = list(queue.php.labels.values())
    out = {"name": name, "photos": photos, "limit": limit, "workers": workers, "placed": placed, "outage_s": outage,
           "seconds_a_photo": seconds, "wall_s": round(wall, 1), "events": events, "models": {}}
    for model in models:
        posts = Counter()  # a photo's labels stored by how many posts (REPLACE INTO keys the labels, not the posts)
        for body, posted_to in zip(queue.posts, queue.post_models):
            if posted_to == model:
                posts.update({r.get("image_id") for r in body if "label" in r})
        failed = sum(1 for r in rows if r["model"] == model and r["label"] == "Failed")
        texts = [p.read_text() for p in logs.glob(f"{model}-*.log")]
        out["models"][model] = {"labelled": photos - left[model], "left": left[model],
                                "more_than_once": sum(1 for n in posts.values() if n > 1), "failed": failed,
                                "unreachable_lines": sum(t.count("photo host unreachable:") for t in texts),
                                "reachable_lines": sum(t.count("photo host reachable again") for t in texts)}
    return out


def _outage(queue, photos: int, seconds: float, began: float, events: list) -> None:
    """The photo host goes down once a third of the photos are labelled for `clip`, for `seconds`."""
    while len(queue.php.left("clip")) > photos * 2 // 3:
        time.sleep(0.2)
    events.append(f"photo host down at {time.monotonic() - began:.0f} s ({photos - len(queue.php.left('clip'))} labelled)")
    queue.photo_host_down()
    time.sleep(seconds)
    queue.photo_host_up()
    events.append(f"photo host up at {time.monotonic() - began:.0f} s")


def section(results: list[dict]) -> list[str]:
    lines = ["| workers | offsets | photos | labelled | labelled more than once | share | Failed |", "|---:|---|---:|---:|---:|---:|---:|"]
    for r in results:
        for model, m in r["models"].items():
            share = m["more_than_once"] / max(m["labelled"], 1)
            lines.append(f"| {r['workers']} ({model}) | {'--workers/--worker-index' if r['placed'] else 'none (as before)'}"
                         f" | {r['photos']} | {m['labelled']} | {m['more_than_once']} | {share:.1%} | {m['failed']} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geocontext.bench.label_fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("bench-cache"))
    parser.add_argument("--photos-per-worker", type=int, default=1500, help="the queue's photos: this many per worker"
                        " (the last ones, within about a stride of the end, may be done twice)")
    parser.add_argument("--baseline-photos", type=int, default=600, help="photos of the runs without the options")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--outage", type=float, default=0.0, help="seconds the photo host is down (then one run per"
                        " --workers, with the options, context and types workers)")
    parser.add_argument("--seconds-a-photo", type=float, default=SECONDS_A_PHOTO)
    args = parser.parse_args(argv)
    from ..synthetic.demo import build_dataset

    work = args.cache / "label-fleet"
    demo = work / "data"
    if not (demo / "train.csv").exists():
        build_dataset(demo, n_train=240, n_test=60, seed=3)
    results = []
    for workers in args.workers:
        photos = args.photos_per_worker * workers
        runs = [(photos, True)] if args.outage else [(photos, True), (args.baseline_photos, False)]
        for photos, placed in runs:
            results.append(fleet(work, demo, photos, args.limit, workers, placed, args.outage, args.seconds_a_photo))
            say(json.dumps(results[-1]))
    (work / f"results{'-outage' if args.outage else ''}.json").write_text(json.dumps(results, indent=2))
    say("\n".join(section(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
