"""`predict` at archive scale: 1M and 2M generated photos (features written chunk by chunk, never
committed), peak memory (VmHWM, bench/measure.py) and wall time of `geocontext predict` on each.

    python -m geocontext.bench.archive [--cache bench-cache] [--sizes 1000000 2000000]

The run that predicts is trained once on a small generated split (default variants, few epochs):
predict's cost depends on the variants and the decoder, not on how well they were trained."""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..competition import ID
from ..console import say
from ..synthetic.world import World, grid_references, sample_labels, synthesize_features

VERSION = 1
_BLOCK = 100_000


def _write_split(folder: Path, ids: np.ndarray, world: World, rng, dim: int) -> None:
    """FEATURES/test/ for `ids`, generated and written block by block (a 2M x 512 split is 8 GB)."""
    target = folder / "test"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    np.save(target / "ids.npy", ids)
    arrays = {name: np.lib.format.open_memmap(target / f"{name}.npy", "w+", np.float32, (len(ids), dim))
              for name in ("image", "title")}
    for start in range(0, len(ids), _BLOCK):
        y = sample_labels(world, min(_BLOCK, len(ids) - start), rng)
        arrays["image"][start:start + len(y)], arrays["title"][start:start + len(y)] = synthesize_features(world, y, rng)
    for array in arrays.values():
        array.flush()
    del arrays
    meta = {"dim": dim, "normalized": False, "encoder": "synthetic (bench.archive)", "synthetic": True, "rows": len(ids)}
    (target / "meta.json").write_text(json.dumps(meta, indent=2))


def build(cache: Path, n: int, seed: int = 0, dim: int = 512) -> tuple[Path, Path]:
    """DATA (test.csv, metadata.csv with grid references) and FEATURES/test for `n` photos."""
    root = cache / f"archive-{n}"
    stamp, data_dir, features_dir = root / "settings.json", root / "data", root / "features"
    settings = {"version": VERSION, "n": n, "seed": seed, "dim": dim}
    if stamp.exists() and json.loads(stamp.read_text()) == settings:
        return data_dir, features_dir
    say(f"archive bench: generating {n:,} photos x {dim} in {root}")
    data_dir.mkdir(parents=True, exist_ok=True)
    world, rng = World.create(seed, dim), np.random.default_rng(seed + n)
    ids = rng.choice(np.arange(10_000, 20_000_000), size=n, replace=False).astype(np.int64)
    pd.DataFrame({ID: ids}).to_csv(data_dir / "test.csv", index=False)
    refs = np.concatenate([grid_references(world, sample_labels(world, min(_BLOCK, n - s), rng), rng)
                           for s in range(0, n, _BLOCK)])
    pd.DataFrame({ID: ids, "title": "", "grid_reference": refs}).to_csv(data_dir / "metadata.csv", index=False)
    _write_split(features_dir, ids, world, rng, dim)
    stamp.write_text(json.dumps(settings))
    return data_dir, features_dir


def trained_run(cache: Path, dim: int = 512, n_train: int = 20_000) -> Path:
    """A finished run (default variants, 3 epochs) on `n_train` generated training photos."""
    from ..decoding.select import DecodeConfig
    from ..pipeline.config import RunConfig
    from ..pipeline.run import run
    from ..pipeline.run_folder import RunFolder
    from ..training.config import TrainConfig, default_variants
    from . import data as bench_data

    out = cache / f"archive-run-{n_train}"
    variants = [type(v)(v.name, v.features, TrainConfig(**{**v.train.to_dict(), "epochs": 3})) for v in default_variants()]
    if RunFolder(out).run_json.exists():
        made = json.loads(RunFolder(out).run_json.read_text())["config"]["variants"]
        if made == json.loads(json.dumps([dataclasses.asdict(v) for v in variants])):  # as run.json holds them
            return out
        say(f"{out}: trained with other variants than today's defaults: training it again")
        shutil.rmtree(out)
    data_dir, features_dir, _ = bench_data.build(cache / "archive-train", None, seed=1, n_train=n_train, n_test=2_000,
                                                 dim=dim, log=say)
    run(data_dir, features_dir, out, RunConfig(variants=variants, decode=DecodeConfig(global_trials=10, per_tag_trials=10)))
    return out


def archive(cache: Path, sizes=(1_000_000, 2_000_000), repeats: int = 1, n_train: int = 20_000) -> dict:
    from .suite import BenchConfig, measured

    cfg = BenchConfig(cache=cache)
    run_dir = trained_run(cache, n_train=n_train)
    result = {"run": str(run_dir), "sizes": {}}
    for n in sizes:
        data_dir, features_dir = build(cache, n)
        times = [measured(cfg, f"predict-{n}", ["predict", "--run", str(run_dir), "--data", str(data_dir), "--features",
                                                str(features_dir), "--out", str(cache / f"archive-{n}.csv.zip"),
                                                "--probs", str(cache / f"archive-{n}-probs.npy")])
                 for _ in range(repeats)]
        walls = sorted(t["wall_s"] for t in times)
        result["sizes"][n] = {"wall_s_median": walls[len(walls) // 2], "peak_rss_gb": max(t["peak_rss_gb"] for t in times),
                              "photos_per_s": n / walls[len(walls) // 2]}
        (cache / f"archive-{n}-probs.npy").unlink(missing_ok=True)  # 400 MB at 2M photos
        say(f"archive bench: {n:,} photos: {result['sizes'][n]}")
    return result


def section(r: dict, targets: list) -> list[str]:
    sizes = {int(k): v for k, v in r["sizes"].items()}
    rows = [f"| {n:,} | {v['wall_s_median']:.1f} | {v['photos_per_s']:,.0f} | {v['peak_rss_gb']:.2f} |"
            for n, v in sorted(sizes.items())]
    if len(sizes) >= 2:
        small, big = min(sizes), max(sizes)
        ratio = sizes[big]["peak_rss_gb"] / sizes[small]["peak_rss_gb"]
        targets.append((f"predict at {big:,} photos: peak memory", "<= 4 GB", f"{sizes[big]['peak_rss_gb']:.2f} GB",
                        sizes[big]["peak_rss_gb"] <= 4))
        targets.append((f"predict: peak at {big:,} / peak at {small:,}", "<= 1.25x", f"{ratio:.2f}x", ratio <= 1.25))
    return ["## 8. Predict at archive scale", "",
            "`geocontext predict --probs` on generated photos (512-d image and title features, grid references in"
            " metadata.csv), the default variants; inputs fused, decoded and written chunk by chunk."
            " Command: `python -m geocontext.bench.archive` (part of `make bench`).", "",
            "| photos | wall s (median) | photos/s | peak RSS GB |", "|---|---:|---:|---:|", *rows, ""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geocontext.bench.archive", description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("bench-cache"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 2_000_000])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    result = archive(args.cache, tuple(args.sizes), args.repeats)
    (args.cache / "archive.json").write_text(json.dumps(result, indent=2))
    targets: list = []
    print("\n".join(section(result, targets)))
    for t in targets:
        print(" | ".join(map(str, t)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
