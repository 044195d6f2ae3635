"""Embedding speed: `geocontext embed` (batched) against the published notebook's one-photo-at-a-time loop.

Both embed the same generated 640x480 JPEGs (Geograph's usual size) and titles with the same ViT-B-32, on
this machine, in this run, alternating repeat by repeat so that background load hits both alike.
Photos/s include JPEG decoding, preprocessing, the image and the title. The batched path is the whole
stage (DataLoader workers, chunk files, the merge into FEATURES); the naive loop only computes.

    python -m geocontext.bench.embedding [--photos 96] [--repeats 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ..competition import ID, image_path
from ..embedding.encoder import Encoder, EncoderConfig, load_encoder
from ..embedding.features import load_features
from ..embedding.embed import EmbedConfig, embed

WORDS = ("Footpath", "Church", "Farm track", "River", "Stone wall", "Lighthouse", "Railway bridge", "Woodland",
         "Moorland", "Harbour", "Castle ruins", "Canal lock", "Village green", "Trig point", "Reservoir dam")
PLACES = ("Aberdeen", "Bodmin Moor", "Cardigan", "Durham", "Ely", "Fort William", "Hexham", "Kendal", "Lewes",
          "Mallaig", "Oban", "Penrith", "Ripon", "Tenby", "Ullapool", "Wells")


def make_photo(rng: np.random.Generator, width: int = 640, height: int = 480) -> Image.Image:
    """A landscape-like picture: sky gradient over smooth ground texture, with grain (JPEG-realistic size)."""
    coarse = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
    ground = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.float32)
    ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    sky = rng.uniform(120, 230, 3).astype(np.float32)
    horizon = rng.uniform(0.3, 0.6)
    img = np.where(ramp < horizon, sky * (1 - 0.3 * ramp), ground)
    img += rng.normal(0, 10, img.shape).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def make_data(folder: Path, n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """A DATA folder with `n` test photos and titles; returns (ids, titles)."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(10_000, 8_000_000), size=n, replace=False)
    titles = [f"{rng.choice(WORDS)} near {rng.choice(PLACES)}" for _ in range(n)]
    pd.DataFrame({ID: ids}).to_csv(folder / "test.csv", index=False)
    pd.DataFrame({ID: ids, "title": titles, "grid_reference": ""}).to_csv(folder / "metadata.csv", index=False)
    for gid in ids:
        path = image_path(folder, "test", int(gid))
        path.parent.mkdir(parents=True, exist_ok=True)
        make_photo(rng).save(path, quality=85)
    return ids, titles


def naive_loop(encoder: Encoder, paths: list[Path], titles: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The notebook's way: open, preprocess and encode one photo and its title at a time, fp32."""
    image, text = [], []
    with torch.no_grad():
        for path, title in zip(paths, titles):
            img = encoder.preprocess(Image.open(path).convert("RGB")).unsqueeze(0).to(encoder.device)
            image.append(encoder.model.encode_image(img).float().cpu().numpy()[0])
            text.append(encoder.model.encode_text(encoder.tokenizer([title]).to(encoder.device)).float().cpu().numpy()[0])
    return np.stack(image), np.stack(text)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def run_benchmark(photos: int = 96, repeats: int = 3, model: str = "ViT-B-32", device: str = "auto",
                  batch_size: int | None = None, workers: int | None = None, seed: int = 0) -> dict:
    """Photos/s of the naive loop and of `geocontext embed` (fp32 and the auto precision), medians of
    `repeats` alternating runs, and how far the auto precision's embeddings are from the naive fp32 ones."""
    work = Path(tempfile.mkdtemp(prefix="geocontext-bench-embed-"))
    try:
        (work / "data").mkdir()
        ids, titles = make_data(work / "data", photos, seed)
        paths = [image_path(work / "data", "test", int(i)) for i in ids]
        encoders = {"fp32": load_encoder(EncoderConfig(model=model, random_weights=True, device=device,
                                                       precision="fp32", seed=seed))}
        auto = load_encoder(EncoderConfig(model=model, random_weights=True, device=device, seed=seed))
        if auto.precision != "fp32":
            encoders[auto.precision] = auto
        config = EmbedConfig(batch_size=batch_size, workers=workers)
        batch, n_workers = config.resolved(auto.device.type)

        def batched(encoder: Encoder, n: int | None = None) -> tuple[float, Path]:
            out = work / f"features-{encoder.precision}"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            embed(work / "data", out, ["test"], config, encoder)
            return time.perf_counter() - start, out

        def naive(n: int | None = None) -> tuple[float, tuple]:
            start = time.perf_counter()
            result = naive_loop(encoders["fp32"], paths[:n], titles[:n])
            return time.perf_counter() - start, result

        # Warm-up (first-call kernel setup) on a few photos, then alternate the contenders repeat by repeat.
        naive(4)
        for enc in encoders.values():
            batched(enc)
        seconds = {"naive": [], **{f"batched-{p}": [] for p in encoders}}
        for _ in range(repeats):
            t, naive_out = naive()
            seconds["naive"].append(t)
            for p, enc in encoders.items():
                seconds[f"batched-{p}"].append(batched(enc)[0])
        rates = {k: photos / statistics.median(v) for k, v in seconds.items()}
        agreement = {}
        for p, enc in encoders.items():
            fs = load_features(work / f"features-{enc.precision}", "test")
            agreement[p] = {"image_min_cosine": float(_cosine(np.asarray(fs.image), naive_out[0]).min()),
                            "title_min_cosine": float(_cosine(np.asarray(fs.title), naive_out[1]).min())}
        best = max((k for k in rates if k != "naive"), key=rates.get)
        return {
            "benchmark": "embedding", "model": f"{model} (random weights; speed does not depend on their values)",
            "photos": photos, "photo_size": "640x480 JPEG q85", "repeats": repeats, "device": str(auto.device),
            "batch_size": batch, "workers": n_workers, "machine": _machine(auto.device),
            "median_seconds": {k: statistics.median(v) for k, v in seconds.items()},
            "all_seconds": seconds, "photos_per_s": rates,
            "speedup_vs_naive": {k: v / rates["naive"] for k, v in rates.items() if k != "naive"},
            "default_path": f"batched-{auto.precision}", "best": best,
            "agreement_with_naive_fp32": agreement,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _machine(device: torch.device) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def markdown(result: dict) -> str:
    rows = ["| path | photos/s | median s | x naive | min cosine vs naive fp32 (image / title) |",
            "| --- | ---: | ---: | ---: | --- |"]
    for key, rate in result["photos_per_s"].items():
        speed = "1.00" if key == "naive" else f"{result['speedup_vs_naive'][key]:.2f}"
        agree = result["agreement_with_naive_fp32"].get(key.removeprefix("batched-"))
        agree = f"{agree['image_min_cosine']:.4f} / {agree['title_min_cosine']:.4f}" if agree else "(reference)"
        name = "naive loop, fp32 (one photo + title at a time)" if key == "naive" else \
            f"geocontext embed, {key.removeprefix('batched-')}{' (default)' if key == result['default_path'] else ''}"
        rows.append(f"| {name} | {rate:.1f} | {result['median_seconds'][key]:.2f} | {speed} | {agree} |")
    m = result["machine"]
    head = (f"Embedding {result['photos']} photos ({result['photo_size']}) with {result['model']} on"
            f" {result['device']} ({m.get('gpu', m['cpu'])}, {m['cores']} cores, torch {m['torch']}),"
            f" batch {result['batch_size']}, {result['workers']} worker(s), median of {result['repeats']} alternating repeats.")
    return head + "\n\n" + "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geocontext.bench.embedding", description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    os.environ.setdefault("GEOCONTEXT_PROGRESS", "0")
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # the embed stage's own progress lines
        result = run_benchmark(args.photos, args.repeats, args.model, args.device, args.batch_size, args.workers)
    print(markdown(result))
    print()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
