"""An id-neighbour encoder: what the labelled photos uploaded just before and after a photo were tagged.

Geograph ids are upload order, and photos uploaded together share their tags: on the real train.csv,
a photo's nearest other labelled id carries exactly the same tag set 15.9% of the time (a random pair:
0.64%), and test ids interleave with the labelled ones. `IdNeighbours` keeps the labelled rows sorted by
id (ids and each tag set as one integer) and gives any photo, by searchsorted and prefix sums:
- for each id window of half-width h in `windows` (ids within +-h, the photo's own id never counted): a
  per-tag rate as smoothed log-odds, each window shrunk toward the next wider one and the widest toward
  the global tag shares with `strength` pseudo-photos, plus log(1 + photos in the window): exactly the
  location priors' scheme with id windows for cells. A window that holds nobody says the wider one's
  rate, and far from every labelled id every column is the no-information value (global shares, zero
  counts), so a head sees "nothing known" rather than a stale neighbour.
- for each k in `nearest`: the mean tag vector of the k nearest labelled ids, each weighted by
  1 / (1 + gap / tau) and shrunk toward the narrowest window's rate (so it too fades with the gap), as
  log-odds, plus log(1 + gap) of the k-th nearest (capped at GAP_CAP where there is none).

Training rows get the columns out of fold (`out_of_fold`: a row's own fold, its own label with it, never
counts), hold-out rows from the training rows only, new photos (test, `predict`, the archive) from all
labelled rows (`features`), as the location priors do. Training rows may also be given a seeded
exclusion radius (`dropout` share of them, hashed from the id): their neighbours within the radius are
ignored, so a head also learns from photos whose nearest labelled id is far, as archive photos' are.

`state()` holds tensors and numbers only (ids, tag-set codes, the settings): `predict` and the archive
labeller rebuild the same columns from a saved head. `upload_order_facts` prints the signal for any
DATA folder.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
import torch

from ..data.split import folds
from ..hashing import content_digest, splitmix64, unit_interval

OOF_FOLDS = 5
GAP_CAP = 1 << 20  # "no neighbour": a gap larger than any between Geograph ids
_CHUNK = 32_768  # query rows at a time: bounds temporaries to ~100 MB at 49 tags and 8 neighbours
_DROP_SALT = 0x6A09E667F3BCC909  # the exclusion radius' own hash: independent of the split and folds


@dataclass(frozen=True)
class NeighbourSpec:
    """Which columns the block has and how a training row is made to look far (see the module)."""

    # Chosen on the real label matrix at full size (bench.neighbours; README "Photos uploaded together"):
    # the k-nearest columns alone beat id windows and both together; shrinking with 4 pseudo-photos beat 1
    # and 16 once far photos count; half the training rows made to look far (no neighbour at all) cost
    # nothing near and made far photos score as without the block.
    windows: tuple[int, ...] = ()
    nearest: tuple[int, ...] = (1, 2, 4, 8)
    strength: float = 4.0  # pseudo-photos each rate is shrunk with
    tau: float = 16.0  # gap at which a nearest neighbour weighs half
    dropout: float = 0.5  # share of training rows given an exclusion radius
    radius_max: float = float(GAP_CAP)  # their radius: log-uniform in [1, radius_max] (GAP_CAP: none left)
    folds: int = OOF_FOLDS  # out-of-fold folds for training rows (more: their neighbours as dense as a test photo's)

    def __post_init__(self):
        object.__setattr__(self, "windows", tuple(sorted(int(w) for w in self.windows)))
        object.__setattr__(self, "nearest", tuple(sorted(int(k) for k in self.nearest)))
        if not self.windows and not self.nearest:
            raise ValueError("neighbour block: give at least one window or one nearest count")
        if any(w < 1 for w in self.windows) or any(k < 1 for k in self.nearest):
            raise ValueError("neighbour windows and nearest counts must be >= 1")
        if not (self.strength > 0 and self.tau > 0 and 0 <= self.dropout <= 1 and self.radius_max >= 1
                and self.folds >= 2):
            raise ValueError("neighbour strength and tau must be > 0, dropout in [0, 1], radius_max >= 1, folds >= 2")

    def to_state(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def tag_codes(y: np.ndarray) -> np.ndarray:
    """Each 0/1 row (at most 63 tags) as one int64: the tag set as a number."""
    y = np.asarray(y)
    if y.shape[1] > 63:
        raise ValueError("the neighbour block packs tag sets into 63 bits: at most 63 tags")
    return (y.astype(np.int64) << np.arange(y.shape[1], dtype=np.int64)).sum(axis=1)


def tag_sets(codes: np.ndarray, n_tags: int) -> np.ndarray:
    """uint8 (..., n_tags): the tag sets of `codes` (`tag_codes` undone)."""
    return ((np.asarray(codes)[..., None] >> np.arange(n_tags, dtype=np.int64)) & 1).astype(np.uint8)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p)).astype(np.float32)


def training_radius(ids: np.ndarray, share: float, radius_max: float, seed: int) -> np.ndarray:
    """int64 exclusion radius per training row, hashed from its id and the seed: 0 (nothing excluded but
    the row itself) for most; for `share` of them log-uniform in [1, radius_max] (GAP_CAP: no neighbour)."""
    with np.errstate(over="ignore"):
        h = splitmix64(np.asarray(ids, dtype=np.int64).astype(np.uint64) ^ np.uint64(_DROP_SALT + seed))
    u = unit_interval(h)
    hit = u < share
    v = np.where(hit, u / max(share, 1e-12), 0.0)  # uniform in [0, 1) again within the hit rows
    r = np.exp(v * np.log(radius_max)) if radius_max < GAP_CAP else np.full(len(u), float(GAP_CAP))
    return np.where(hit, np.round(r), 0).astype(np.int64)


def nearest_gaps(sorted_ids: np.ndarray, ids: np.ndarray, k: int = 1,
                 radius: np.ndarray | None = None) -> np.ndarray:
    """`nearest_sorted`'s gaps, `_CHUNK` query rows at a time: int64 over `ids` for k = 1, else (N, k)."""
    q = np.asarray(ids, np.int64)
    r = None if radius is None else np.asarray(radius, np.int64)
    out = np.empty((len(q), k), np.int64)
    for s in range(0, len(q), _CHUNK):
        out[s:s + _CHUNK] = nearest_sorted(sorted_ids, q[s:s + _CHUNK], k, None if r is None else r[s:s + _CHUNK])[1]
    return out[:, 0] if k == 1 else out


def nearest_sorted(sorted_ids: np.ndarray, ids: np.ndarray, k: int,
                   radius: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(index into `sorted_ids`, gap) of the k ids of `sorted_ids` nearest each of `ids` beyond `radius`
    (0: any but the id itself), nearest first, ties to the lower id; index -1 and gap GAP_CAP where there
    are fewer within GAP_CAP."""
    q = np.asarray(ids, np.int64)
    r = np.zeros(len(q), np.int64) if radius is None else np.asarray(radius, np.int64)
    n = len(sorted_ids)
    left_end = np.searchsorted(sorted_ids, q - r, "left")  # rows before it are below q - r
    right_start = np.searchsorted(sorted_ids, q + r, "right")  # rows from it on are above q + r
    step = np.arange(k)
    li, ri = left_end[:, None] - 1 - step, right_start[:, None] + step
    lok, rok = li >= 0, ri < n
    lgap = np.where(lok, q[:, None] - sorted_ids[np.clip(li, 0, max(n - 1, 0))] if n else 0, GAP_CAP)
    rgap = np.where(rok, sorted_ids[np.clip(ri, 0, max(n - 1, 0))] - q[:, None] if n else 0, GAP_CAP)
    idx, gap = np.concatenate([np.where(lok, li, -1), np.where(rok, ri, -1)], 1), np.concatenate([lgap, rgap], 1)
    take = np.argsort(gap, axis=1, kind="stable")[:, :k]
    idx, gap = np.take_along_axis(idx, take, 1), np.minimum(np.take_along_axis(gap, take, 1), GAP_CAP)
    return np.where(gap < GAP_CAP, idx, -1), gap  # as far as GAP_CAP or further: no neighbour


class IdNeighbours:
    """Labelled rows sorted by id; `features(ids)` -> (N, dim) float32 (see the module)."""

    def __init__(self, ids: np.ndarray, codes: np.ndarray, n_tags: int, global_rate: np.ndarray,
                 spec: NeighbourSpec = NeighbourSpec()):
        order = np.argsort(ids, kind="stable")
        self.ids, self.codes = np.asarray(ids, np.int64)[order], np.asarray(codes, np.int64)[order]
        if len(self.ids) > 1 and not (np.diff(self.ids) > 0).all():
            raise ValueError("neighbour block: labelled ids must be unique")
        self.n_tags, self.global_rate, self.spec = int(n_tags), np.asarray(global_rate, np.float32), spec
        self._cum = None  # prefix sums of the tag sets, made when first needed (never saved)

    @classmethod
    def fit(cls, ids: np.ndarray, y: np.ndarray, spec: NeighbourSpec = NeighbourSpec()) -> "IdNeighbours":
        y = np.asarray(y)
        rate = y.mean(axis=0) if len(y) else np.zeros(y.shape[1])
        return cls(ids, tag_codes(y), y.shape[1], rate, spec)

    @property
    def dim(self) -> int:
        s = self.spec
        return len(s.windows) * (self.n_tags + 1) + len(s.nearest) * (self.n_tags + 1)

    def _prefix(self) -> np.ndarray:
        if self._cum is None:  # int32 is exact: at most 2^31 photos
            self._cum = np.zeros((len(self.ids) + 1, self.n_tags), dtype=np.int32)
            for s in range(0, len(self.ids), 1 << 18):
                part = np.cumsum(tag_sets(self.codes[s:s + (1 << 18)], self.n_tags), axis=0, dtype=np.int32)
                self._cum[s + 1:s + 1 + len(part)] = part + self._cum[s]
        return self._cum

    def nearest(self, ids: np.ndarray, k: int, radius: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(index into the sorted rows, gap) of the k nearest labelled ids beyond `radius` (`nearest_sorted`)."""
        return nearest_sorted(self.ids, ids, k, radius)

    def _codes_at(self, idx: np.ndarray) -> np.ndarray:
        """Tag-set codes of rows `idx` (0, the empty set, where idx is -1)."""
        return np.where(idx >= 0, self.codes[np.maximum(idx, 0)], 0) if len(self.codes) else np.zeros_like(idx)

    def _windows(self, q: np.ndarray, r: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(tag counts, photos) in each window [q-h, q-r-1] and [q+r+1, q+h]."""
        cum, out = self._prefix(), []
        left_end = np.searchsorted(self.ids, q - r, "left")
        right_start = np.searchsorted(self.ids, q + r, "right")
        for h in self.spec.windows:
            lo = np.minimum(np.searchsorted(self.ids, q - h, "left"), left_end)
            hi = np.maximum(np.searchsorted(self.ids, q + h, "right"), right_start)
            c = (cum[left_end] - cum[lo] + cum[hi] - cum[right_start]).astype(np.float32)
            out.append((c, (left_end - lo + hi - right_start).astype(np.float32)))
        return out

    def _encode(self, q: np.ndarray, r: np.ndarray, global_rate: np.ndarray) -> np.ndarray:
        s, parts = self.spec, []
        base = np.broadcast_to(global_rate, (len(q), self.n_tags))
        for c, n in reversed(self._windows(q, r)):  # widest first: each shrinks toward the wider one
            base = (c + s.strength * base) / (n[:, None] + s.strength)
            parts.append(np.concatenate([_logit(base), np.log1p(n)[:, None].astype(np.float32)], axis=1))
        parts.reverse()
        if s.nearest:
            idx, gap = self.nearest(q, s.nearest[-1], r)
            w = np.where(idx >= 0, 1.0 / (1.0 + gap / s.tau), 0.0).astype(np.float32)
            mass = np.cumsum(w, axis=1)
            tags = np.cumsum(w[:, :, None] * tag_sets(self._codes_at(idx), self.n_tags), axis=1)
            for k in s.nearest:
                rate = (tags[:, k - 1] + s.strength * base) / (mass[:, k - 1, None] + s.strength)
                parts.append(np.concatenate([_logit(rate), np.log1p(gap[:, k - 1:k]).astype(np.float32)], 1))
        return np.concatenate(parts, axis=1)

    def features(self, ids: np.ndarray, radius: np.ndarray | None = None) -> np.ndarray:
        """Columns for new photos from all fitted rows (their own id excluded), chunk by chunk: memory is
        the output plus ~100 MB, so an archive is streamed by calling this on slices of its ids.
        `radius`: per photo, ignore labelled ids within it (0: none; GAP_CAP: all)."""
        q = np.asarray(ids, np.int64)
        r = np.zeros(len(q), np.int64) if radius is None else np.asarray(radius, np.int64)
        out = np.empty((len(q), self.dim), dtype=np.float32)
        for s in range(0, len(q), _CHUNK):
            out[s:s + _CHUNK] = self._encode(q[s:s + _CHUNK], r[s:s + _CHUNK], self.global_rate)
        return out

    def out_of_fold(self, ids: np.ndarray, y: np.ndarray, fold: np.ndarray, seed: int = 0) -> np.ndarray:
        """Columns for the rows this was fitted on, each from the other folds' rows only (with the
        spec's exclusion radius for its `dropout` share, hashed from id and seed)."""
        ids, y = np.asarray(ids, np.int64), np.asarray(y)
        radius = training_radius(ids, self.spec.dropout, self.spec.radius_max, seed)
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for k in np.unique(fold):
            own = fold == k
            rest = IdNeighbours.fit(ids[~own], y[~own], self.spec) if (~own).any() else self._empty()
            rows = np.flatnonzero(own)
            for s in range(0, len(rows), _CHUNK):
                part = rows[s:s + _CHUNK]
                out[part] = rest._encode(ids[part], radius[part], rest.global_rate)
        return out

    def _empty(self) -> "IdNeighbours":
        return IdNeighbours(np.zeros(0, np.int64), np.zeros(0, np.int64), self.n_tags, self.global_rate, self.spec)

    def candidates(self, ids: np.ndarray, k: int, radius: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(tag-set codes, gaps) of each photo's k nearest labelled ids beyond `radius` (code -1 where
        none): the sets its neighbours carry, e.g. as extra candidates for a label-set decoder."""
        codes, gaps = np.empty((len(ids), k), np.int64), np.empty((len(ids), k), np.int64)
        for s in range(0, len(ids), _CHUNK):
            r = None if radius is None else radius[s:s + _CHUNK]
            idx, gap = self.nearest(np.asarray(ids[s:s + _CHUNK], np.int64), k, r)
            codes[s:s + _CHUNK] = np.where(idx >= 0, self._codes_at(idx), -1)
            gaps[s:s + _CHUNK] = gap
        return codes, gaps

    def gaps(self, ids: np.ndarray, radius: np.ndarray | None = None, k: int = 1) -> np.ndarray:
        """int64 gap from each photo to its nearest labelled id beyond `radius` (its own id never counts),
        GAP_CAP where there is none within GAP_CAP; (N, k) gaps, nearest first, for k > 1 (`nearest_gaps`)."""
        return nearest_gaps(self.ids, ids, k, radius)

    def digest(self) -> str:
        """Names the fitted rows and settings: two variants with equal blocks share one fused input."""
        settings = np.array([*self.spec.windows, -1, *self.spec.nearest, self.spec.strength, self.spec.tau,
                             self.spec.dropout, self.spec.radius_max, self.spec.folds], dtype=np.float64)
        return content_digest(self.ids, self.codes, self.global_rate, settings)

    def state(self) -> dict:
        """Tensors and numbers only: saved beside a head, loaded with weights_only=True."""
        return {"ids": torch.from_numpy(self.ids.copy()), "codes": torch.from_numpy(self.codes.copy()),
                "n_tags": self.n_tags, "global_rate": torch.from_numpy(self.global_rate.copy()),
                "spec": self.spec.to_state()}

    @classmethod
    def from_state(cls, d: dict) -> "IdNeighbours":
        spec = NeighbourSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["spec"].items()})
        return cls(d["ids"].numpy(), d["codes"].numpy(), int(d["n_tags"]), d["global_rate"].numpy(), spec)


def fit_neighbours(ids: np.ndarray, y: np.ndarray, fit: np.ndarray, seed: int,
                   spec: NeighbourSpec = NeighbourSpec(),
                   radius: np.ndarray | None = None) -> tuple[IdNeighbours, np.ndarray]:
    """The block fitted on the rows `fit` (bool) of `ids` and labels `y`, and the columns of every row:
    out of fold (spec.folds folds hashed from the ids and `seed`, data.split.folds) for the `fit` rows,
    from all of them for the others (each ignoring the labelled ids within its `radius`, when given)."""
    ids = np.asarray(ids, np.int64)
    block = IdNeighbours.fit(ids[fit], np.asarray(y)[fit], spec)
    out = block.features(ids, radius)
    out[fit] = block.out_of_fold(ids[fit], np.asarray(y)[fit], folds(ids[fit], spec.folds, seed), seed)
    return block, out


class NeighbourSource(Protocol):
    """What reads upload neighbours at decode time (decoders, the choice by gap band) needs: the labelled
    tag sets and each photo's nearest ones. `IdNeighbours` meets it, and so does `Excluding`."""

    codes: np.ndarray

    def candidates(self, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def gaps(self, ids: np.ndarray) -> np.ndarray: ...


class Excluding:
    """The labelled rows as photos `ids` would see them from further off: each of those photos ignores the
    labelled ids within its `radius` (other photos: none but their own id). A hold-out made to look like
    the photos a run will tag (pipeline.honest.matched_radius) reads its neighbours through this."""

    def __init__(self, labelled: IdNeighbours, ids: np.ndarray, radius: np.ndarray):
        order = np.argsort(np.asarray(ids, np.int64), kind="stable")
        self.labelled, self.ids = labelled, np.asarray(ids, np.int64)[order]
        self.radius = np.asarray(radius, np.int64)[order]
        self.codes = labelled.codes

    def radius_of(self, ids: np.ndarray) -> np.ndarray:
        """Each photo's exclusion radius (0 for photos this view does not move)."""
        q = np.asarray(ids, np.int64)
        if not len(self.ids):
            return np.zeros(len(q), np.int64)
        pos = np.minimum(np.searchsorted(self.ids, q), len(self.ids) - 1)
        return np.where(self.ids[pos] == q, self.radius[pos], 0)

    def candidates(self, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.labelled.candidates(ids, k, self.radius_of(ids))

    def gaps(self, ids: np.ndarray) -> np.ndarray:
        return self.labelled.gaps(ids, self.radius_of(ids))
