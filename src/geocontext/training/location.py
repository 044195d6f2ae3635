"""A location encoder: what the training photos in the same square were tagged, at several scales.

A raw normalised lat/lon into a linear head cannot say "this square is coastal": tags cluster in places
(coasts, uplands, canals, cities) that no straight line in (lat, lon) separates. `LocationPriors` counts,
for each tag, the training photos in the same cell of about 1, 10 and 100 km, and turns the counts into
a smoothed log-odds prior per tag and scale, shrunk toward the coarser scale's prior (the 100 km scale
toward the global share) with `strength` pseudo-photos, plus log(1 + photos in the cell) per scale.

Training rows get out-of-fold priors: each row's own fold is left out of its counts, so a head cannot
learn to read its own label back. New photos (hold-out, test, `predict`) get priors from all training
rows. The counts are kept as arrays (`state`), saved with a run and rebuilt for new photos.
Unknown locations get the global prior and zero counts.

In a run, `fit_priors` fits them on the training rows and gives every labelled row its columns;
`columns` gives new photos theirs from the normalised locations the pipeline carries.

`fourier_features` is the other encoder: sin and cos of random projections of the coordinates (in km) at
length scales of 5, 25 and 100 km, a fixed draw (nothing learnt, nothing to save). Where the priors need
photos in the very cell, these let a head draw smooth regions (an upland, a stretch of coast) from few.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data import grid
from ..data.split import folds
from ..hashing import content_digest

KM_PER_DEG_LAT = 111.0
KM_PER_DEG_LON = 111.0 * np.cos(np.deg2rad(54.0))  # Great Britain and Ireland: ~50-60 N
SCALES_KM = (1.0, 10.0, 100.0)
OOF_FOLDS = 5
FOURIER_KM = (5.0, 25.0, 100.0)
FOURIER_PER_SCALE = 32
FOURIER_DIM = 2 * FOURIER_PER_SCALE * len(FOURIER_KM)
_FOURIER_SEED = 20_241  # one fixed draw: a saved head and new photos see the same frequencies


def cell_keys(latlon: np.ndarray, km: float) -> np.ndarray:
    """An int64 cell key per (lat, lon) row on a grid of about `km` km; -1 where the location is unknown."""
    latlon = np.asarray(latlon, dtype=np.float64)
    known = np.isfinite(latlon).all(axis=1)
    safe = np.where(known[:, None], latlon, 0.0)
    i = np.floor(safe[:, 0] * KM_PER_DEG_LAT / km).astype(np.int64)
    j = np.floor(safe[:, 1] * KM_PER_DEG_LON / km).astype(np.int64)
    return np.where(known, (i + 100_000) * 1_000_000 + (j + 500_000), -1)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p)).astype(np.float32)


class LocationPriors:
    """Per-cell tag counts at several scales; `features(latlon)` -> (N, n_tags * scales + scales) float32."""

    def __init__(self, scales: tuple[float, ...], keys: list[np.ndarray], counts: list[np.ndarray],
                 totals: list[np.ndarray], global_rate: np.ndarray, strength: float):
        self.scales, self.keys, self.counts, self.totals = tuple(scales), keys, counts, totals
        self.global_rate, self.strength = global_rate, float(strength)

    @classmethod
    def fit(cls, latlon: np.ndarray, y: np.ndarray, scales=SCALES_KM, strength: float = 5.0) -> "LocationPriors":
        y = np.asarray(y, dtype=np.float32)
        keys, counts, totals = [], [], []
        for km in scales:
            k = cell_keys(latlon, km)
            known = k >= 0
            uniq, inverse = np.unique(k[known], return_inverse=True)
            c = np.zeros((len(uniq), y.shape[1]), dtype=np.float32)
            np.add.at(c, inverse, y[known])
            keys.append(uniq)
            counts.append(c)
            totals.append(np.bincount(inverse, minlength=len(uniq)).astype(np.float32))
        return cls(scales, keys, counts, totals, y.mean(axis=0), strength)

    @property
    def dim(self) -> int:
        return len(self.scales) * (len(self.global_rate) + 1)

    def _lookup(self, latlon: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
        """(counts, totals) of each row's cell at scale `s`; zeros for unknown or unseen cells."""
        k = cell_keys(latlon, self.scales[s])
        keys = self.keys[s]
        c = np.zeros((len(k), len(self.global_rate)), dtype=np.float32)
        n = np.zeros(len(k), dtype=np.float32)
        if len(keys):
            pos = np.minimum(np.searchsorted(keys, k), len(keys) - 1)
            hit = (k >= 0) & (keys[pos] == k)
            c[hit], n[hit] = self.counts[s][pos[hit]], self.totals[s][pos[hit]]
        return c, n

    def _encode(self, cells: list[tuple[np.ndarray, np.ndarray]], global_rate: np.ndarray) -> np.ndarray:
        """Coarse to fine: each scale's rate is shrunk toward the next coarser scale's."""
        parts, base = [], np.broadcast_to(global_rate, cells[0][0].shape)
        for c, n in reversed(cells):
            rate = (c + self.strength * base) / (n[:, None] + self.strength)
            parts.append((_logit(rate), np.log1p(n)[:, None].astype(np.float32)))
            base = rate
        parts.reverse()
        return np.concatenate([p for pair in parts for p in pair], axis=1)

    def columns(self, location: np.ndarray) -> np.ndarray:
        """Priors for new photos at normalised locations (data.grid.normalise; NaN where unknown)."""
        return self.features(grid.denormalise(location))

    def digest(self) -> str:
        """Names the counts: two variants with equal priors share one fused input."""
        return content_digest(*self.keys, *self.counts, self.global_rate)

    def features(self, latlon: np.ndarray) -> np.ndarray:
        """Priors for new photos, from all training rows."""
        return self._encode([self._lookup(latlon, s) for s in range(len(self.scales))], self.global_rate)

    def out_of_fold(self, latlon: np.ndarray, y: np.ndarray, fold: np.ndarray) -> np.ndarray:
        """Priors for the training rows this was fitted on, each without its own fold's photos."""
        out = np.empty((len(latlon), self.dim), dtype=np.float32)
        y = np.asarray(y, dtype=np.float32)
        for k in np.unique(fold):
            own = fold == k
            mine = LocationPriors.fit(latlon[own], y[own], self.scales, self.strength)
            cells = []
            for s in range(len(self.scales)):
                c_all, n_all = self._lookup(latlon[own], s)
                c_own, n_own = mine._lookup(latlon[own], s)
                cells.append((c_all - c_own, n_all - n_own))
            rest = ~own
            out[own] = self._encode(cells, y[rest].mean(axis=0) if rest.any() else self.global_rate)
        return out

    def state(self) -> dict:
        """Arrays and numbers only: saved beside a head, loaded with weights_only=True."""
        t = lambda xs: [torch.from_numpy(np.ascontiguousarray(x)) for x in xs]  # noqa: E731
        return {"scales": list(self.scales), "keys": t(self.keys), "counts": t(self.counts), "totals": t(self.totals),
                "global_rate": torch.from_numpy(np.asarray(self.global_rate)), "strength": self.strength}

    @classmethod
    def from_state(cls, d: dict) -> "LocationPriors":
        arrays = lambda xs: [np.asarray(x.numpy() if isinstance(x, torch.Tensor) else x) for x in xs]  # noqa: E731
        return cls(tuple(d["scales"]), arrays(d["keys"]), arrays(d["counts"]), arrays(d["totals"]),
                   arrays([d["global_rate"]])[0], d["strength"])


def fit_priors(location: np.ndarray, y: np.ndarray, fit: np.ndarray, ids: np.ndarray,
               seed: int) -> tuple[LocationPriors, np.ndarray]:
    """Priors fitted on the rows `fit` (bool) of normalised `location` and labels `y`, and the columns of
    every row: out of fold (folds hashed from `ids`) for the `fit` rows, from all of them for the others."""
    latlon = grid.denormalise(location)
    priors = LocationPriors.fit(latlon[fit], y[fit])
    out = priors.features(latlon)
    out[fit] = priors.out_of_fold(latlon[fit], y[fit], folds(ids[fit], OOF_FOLDS, seed))
    return priors, out


def fourier_features(location: np.ndarray) -> np.ndarray:
    """(N, FOURIER_DIM) float32 random Fourier features of normalised locations; zeros where unknown."""
    latlon = grid.denormalise(location)
    known = np.isfinite(latlon).all(axis=1)
    km = np.where(known[:, None], latlon, 0.0) * [KM_PER_DEG_LAT, KM_PER_DEG_LON]
    rng = np.random.default_rng(_FOURIER_SEED)
    w = np.concatenate([rng.normal(0.0, 1.0 / s, (2, FOURIER_PER_SCALE)) for s in FOURIER_KM], axis=1)
    phase = km @ w
    out = np.concatenate([np.sin(phase), np.cos(phase)], axis=1).astype(np.float32)
    out[~known] = 0.0
    return out
