"""Distance dropout (the published v2.3 scheme): training rows whose distance input is withheld or wrong.

Without it the model reads "Cross Far" off the distance field and fails on the millions of archive
photos with no distance. Per training photo, decided by its gridimage_id alone (so the same photo gets
the same treatment in every epoch, every run and every process, whatever the row order):
- with probability `unknown_share` (30%) its distance index becomes "Unknown" (22), whatever its class;
- otherwise, if it is labelled Cross Far, with probability `cross_far_share` (all of them in v2.3) it
  gets a random short distance index in 0..`short_max_index` (9: 256 m and closer).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..hashing import splitmix64, unit_interval
from .distance import UNKNOWN_INDEX

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass
class DistanceDropout:
    unknown_share: float = 0.3
    cross_far_share: float = 1.0
    short_max_index: int = 9
    seed: int = 0  # changes which photos are picked; 0 reproduces the same picks everywhere

    def __post_init__(self):
        for name in ("unknown_share", "cross_far_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"distance dropout {name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.short_max_index < UNKNOWN_INDEX:
            raise ValueError(f"short_max_index must be in 0..{UNKNOWN_INDEX - 1}, got {self.short_max_index}")

    def to_dict(self) -> dict:
        return asdict(self)

    def apply(self, ids: np.ndarray, dist_idx: np.ndarray, cross_far: np.ndarray) -> np.ndarray:
        """A corrupted copy of `dist_idx` (int64) for photos `ids`; `cross_far` marks Cross Far rows."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.array(dist_idx, dtype=np.int64, copy=True)
        withheld = id_uniform(ids, self.seed, 0) < self.unknown_share
        corrupt = ~withheld & np.asarray(cross_far, dtype=bool) & (id_uniform(ids, self.seed, 1) < self.cross_far_share)
        short = np.floor(id_uniform(ids, self.seed, 2) * (self.short_max_index + 1)).astype(np.int64)
        out[withheld] = UNKNOWN_INDEX
        out[corrupt] = short[corrupt]
        return out


def id_uniform(ids: np.ndarray, seed: int = 0, stream: int = 0) -> np.ndarray:
    """A uniform [0, 1) number per id from a SplitMix64 hash of (id, seed, stream): no generator state."""
    with np.errstate(over="ignore"):
        x = np.asarray(ids).astype(np.uint64) + _GOLDEN * np.uint64(1 + 2 * stream + 1_000_003 * seed)
    return unit_interval(splitmix64(x))
