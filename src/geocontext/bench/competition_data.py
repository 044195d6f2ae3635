"""A simulated competition on the real label matrix: DATA and FEATURES folders, hidden test labels.

A seeded random subset of the real train.csv.zip (real ids, real tag sets) is split into `labelled`
rows (DATA/train.csv) and `test` rows (DATA/test.csv: ids only); the test rows' labels go to
solution.csv beside DATA, never inside it, so a run cannot see them. Titles, image embeddings and grid
references come from a generator family (synthetic.families). The subset keeps the real ids, so the
real upload order (photos uploaded together, tagged alike) is there as in the competition; order
"shuffled" deals the ids out at random instead (ids then say nothing); order "far" keeps the real order
but moves every test id FAR_OFFSET up, in every file that names it (test.csv, metadata.csv, FEATURES,
solution.csv), so no test photo has a labelled one near it, as Geograph's untagged archive photos have
not. Built once per settings under CACHE/<generator>-<seed>-<labelled>-<test>[-ORDER]/ and reused.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..competition import COLUMNS, ID
from ..console import say
from ..data.readers import Labels, read_labels
from ..embedding.features import save_features
from ..pipeline.evaluate import evaluate
from ..synthetic.families import MISSING_IMAGES, NOISE, generate
from .data import SHARED

VERSION = 1  # bump when the folders' contents change: caches are rebuilt
CACHE = Path("bench-cache/competition")
ORDERS = ("real", "shuffled", "far")
FAR_OFFSET = 10_000_000  # above every real Geograph id of the competition (the largest is 7,564,337)


@dataclass(frozen=True)
class Competition:
    folder: Path
    settings: dict

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def features(self) -> Path:
        return self.folder / "features"

    @property
    def solution(self) -> Path:
        """The hidden test labels (gridimage_id + tag columns), outside DATA."""
        return self.folder / "solution.csv"


@lru_cache(maxsize=2)
def real_labels(path: str) -> Labels:
    """The real label matrix, read once per process (several competitions are built from it)."""
    return read_labels(path, columns=COLUMNS)


def _frame(ids: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(y, columns=list(COLUMNS))
    frame.insert(0, ID, ids)
    return frame


def build(generator: str, seed: int, labelled: int, n_test: int, noise: float | None = None,
          shared: str | Path = SHARED, cache: str | Path = CACHE, order: str = "real") -> Competition:
    """The competition for these settings, built unless already in `cache`. order "real" keeps each photo
    its real id (the real upload order); "shuffled" deals the same ids out at random, so ids say nothing;
    "far" moves the test ids FAR_OFFSET up (no labelled id near any test photo)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    noise = float(NOISE[generator] if noise is None else noise)
    settings = {"version": VERSION, "generator": generator, "seed": seed, "labelled": labelled, "test": n_test,
                "noise": noise, "missing_images": MISSING_IMAGES, **({"order": order} if order != "real" else {})}
    suffix = "" if order == "real" else f"-{order}"
    comp = Competition(Path(cache) / f"{generator}-{seed}-{labelled}-{n_test}{suffix}", settings)
    stamp = comp.folder / "settings.json"
    if stamp.exists() and json.loads(stamp.read_text()) == settings:
        return comp
    source = Path(shared) / "train.csv.zip"
    if not source.exists():
        raise FileNotFoundError(f"{source}: not found (the real label matrix; pass --shared FOLDER)")
    labels = real_labels(str(source))
    if labelled < 1 or n_test < 1 or labelled + n_test > len(labels):
        raise ValueError(f"--labelled {labelled} + --test {n_test} must be positive and at most the"
                         f" {len(labels)} photos of {source}")
    say(f"building {comp.folder}: {generator} (noise {noise}), {labelled} labelled + {n_test} test photos")
    stamp.unlink(missing_ok=True)  # a half-built folder is never taken for a finished one
    for sub in (comp.data, comp.features):
        shutil.rmtree(sub, ignore_errors=True)
    comp.data.mkdir(parents=True)
    picked = np.random.default_rng(seed).permutation(len(labels))[:labelled + n_test]
    ids, y = labels.ids[picked], labels.y[picked]
    if order == "shuffled":
        ids = np.random.default_rng(seed + 1).permutation(ids)
    elif order == "far":
        ids = np.concatenate([ids[:labelled], ids[labelled:] + FAR_OFFSET])
    made = generate(generator, y, seed, noise)
    _frame(ids[:labelled], y[:labelled]).to_csv(comp.data / "train.csv", index=False)
    pd.DataFrame({ID: ids[labelled:]}).to_csv(comp.data / "test.csv", index=False)
    _frame(ids[labelled:], y[labelled:]).to_csv(comp.solution, index=False)
    if (Path(shared) / "tags-top.csv").exists():
        os.symlink((Path(shared) / "tags-top.csv").resolve(), comp.data / "tags-top.csv")
    pd.DataFrame({ID: ids, "title": "", "grid_reference": made.grid_reference}).to_csv(
        comp.data / "metadata.csv", index=False)  # titles are in FEATURES; the text is not needed
    meta = {"encoder": f"synthetic ({generator}, seed {seed}, noise {noise})", "synthetic": True}
    for split, rows in (("train", slice(0, labelled)), ("test", slice(labelled, None))):
        save_features(comp.features, split, ids[rows], made.image[rows], made.title[rows], meta)
    stamp.write_text(json.dumps(settings))
    return comp


def score_submission(comp: Competition, submission: str | Path) -> float:
    """Exact match (all 49 tags right) of a submission on the hidden test labels, joined by id."""
    return float(evaluate(submission, comp.solution)["exact_match"])
