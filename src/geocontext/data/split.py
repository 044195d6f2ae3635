"""The seeded hold-out split: a photo's side depends only on its id and the seed, so every variant,
every rerun and a grown training set keep the same photos in the hold-out."""
from __future__ import annotations

import numpy as np

from ..hashing import splitmix64, unit_interval


def holdout_mask(ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """True for the ids in the hold-out (about `fraction` of them)."""
    if not 0 < fraction < 1:
        raise ValueError(f"hold-out fraction must be between 0 and 1, got {fraction}")
    with np.errstate(over="ignore"):
        salted = np.asarray(ids, dtype=np.int64).astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    return unit_interval(splitmix64(salted)) < fraction


def folds(ids: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold number (0..n_folds-1) of each id, for cross-fitting inside the hold-out."""
    with np.errstate(over="ignore"):
        salted = np.asarray(ids, dtype=np.int64).astype(np.uint64) ^ np.uint64(0xD1B54A32D192ED03 + seed)
    return (splitmix64(salted) % np.uint64(n_folds)).astype(np.int64)


def stop_mask(ids: np.ndarray, share: float, seed: int) -> np.ndarray:
    """True for the hold-out ids (about `share` of them) whose only use is choosing each head's epoch,
    hashed independently of the hold-out split and of the cross-fitting folds."""
    if not 0 < share < 1:
        raise ValueError(f"the share of hold-out rows that choose epochs must be between 0 and 1, got {share}")
    with np.errstate(over="ignore"):
        salted = np.asarray(ids, dtype=np.int64).astype(np.uint64) ^ np.uint64(0x8CB92BA72F3D8DD7 + seed)
    return unit_interval(splitmix64(salted)) < share
