"""The benchmark's competition at the real scale, cached in an ignored folder.

Labels are the competition's real train.csv.zip (609,822 photos x 49 tags) and test ids its real
test.csv (135,489), read from ../shared when present. There are no photos, titles or grid references
here, so those are generated from the labels by the model documented in `geocontext.synth`; the test
photos get label sets drawn from the training photos' sets (their true labels are Kaggle's secret),
written to solution.csv for leaderboard-style scoring. Without ../shared a generated label file of the
same shape stands in, and the cache says so.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..competition import COLUMNS, ID
from ..data.readers import read_labels, read_test_ids
from ..embedding.features import save_features
from ..synthetic.world import World, grid_references, sample_labels, synthesize_features

VERSION = 1  # bump when the generator changes: the cache is rebuilt
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "kaggle-competition"  # beside the repo
N_TRAIN, N_TEST = 609_822, 135_489


def _link_or_write(target: Path, source: Path) -> None:
    if target.exists() or target.is_symlink():
        target.unlink()
    os.symlink(source.resolve(), target)  # the real files stay in ../shared, never copied


def build(cache: str | Path, shared: str | Path | None = SHARED, seed: int = 0, n_train: int = N_TRAIN,
          n_test: int = N_TEST, dim: int = 512, noise: float = 0.9, log=print) -> tuple[Path, Path, dict]:
    """DATA and FEATURES folders under `cache` (reused when already built with the same settings)."""
    cache = Path(cache)
    shared = Path(shared) if shared is not None else None
    real = shared is not None and (shared / "train.csv.zip").exists() and (shared / "test.csv").exists()
    settings = {"version": VERSION, "seed": seed, "dim": dim, "noise": noise, "real_labels": real,
                "n_train": None if real else n_train, "n_test": None if real else n_test}
    stamp = cache / "settings.json"
    data_dir, features_dir = cache / "data", cache / "features"
    if stamp.exists() and json.loads(stamp.read_text()) == settings:
        return data_dir, features_dir, settings
    if not real and shared is not None:
        log(f"note: {shared} not found; benchmarking on a generated label file of the same shape")
    data_dir.mkdir(parents=True, exist_ok=True)
    world = World.create(seed, dim)
    rng = np.random.default_rng(seed)
    if real:
        _link_or_write(data_dir / "train.csv.zip", shared / "train.csv.zip")
        _link_or_write(data_dir / "test.csv", shared / "test.csv")
        if (shared / "tags-top.csv").exists():
            _link_or_write(data_dir / "tags-top.csv", shared / "tags-top.csv")
        train = read_labels(data_dir / "train.csv.zip", columns=COLUMNS)
        train_ids, train_y = train.ids, train.y
        test_ids = read_test_ids(data_dir)
    else:
        ids = rng.choice(np.arange(10_000, 8_000_000), size=n_train + n_test, replace=False)
        train_ids, test_ids = ids[:n_train], ids[n_train:]
        train_y = sample_labels(world, n_train, rng)
        frame = pd.DataFrame(train_y, columns=list(COLUMNS))
        frame.insert(0, ID, train_ids)
        frame.to_csv(data_dir / "train.csv", index=False)
        pd.DataFrame({ID: test_ids}).to_csv(data_dir / "test.csv", index=False)
    test_y = train_y[rng.integers(0, len(train_y), len(test_ids))]
    solution = pd.DataFrame(test_y, columns=list(COLUMNS))
    solution.insert(0, ID, test_ids)
    solution["Usage"] = np.where(rng.uniform(size=len(test_ids)) < 0.5, "Public", "Private")
    solution.to_csv(data_dir / "solution.csv", index=False)

    all_ids = np.concatenate([train_ids, test_ids])
    all_y = np.concatenate([train_y, test_y])
    pd.DataFrame({ID: all_ids, "title": "", "grid_reference": grid_references(world, all_y, rng)}).to_csv(
        data_dir / "metadata.csv", index=False)
    for split, ids, y in (("train", train_ids, train_y), ("test", test_ids, test_y)):
        log(f"generating {split} features: {len(ids)} x {dim}")
        image = np.empty((len(ids), dim), dtype=np.float32)
        title = np.empty((len(ids), dim), dtype=np.float32)
        for start in range(0, len(ids), 100_000):
            image[start:start + 100_000], title[start:start + 100_000] = synthesize_features(
                world, y[start:start + 100_000], rng, noise=noise)
        save_features(features_dir, split, ids, image, title,
                      {"encoder": f"synthetic (geocontext.synth, seed {seed}, noise {noise})", "synthetic": True})
        del image, title
    stamp.write_text(json.dumps(settings))
    return data_dir, features_dir, settings
