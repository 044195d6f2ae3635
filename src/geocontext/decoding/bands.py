"""The final choice by gap band: photos near labelled ones and photos far from every one can want different
members and decoders (issue 30).

A photo's *gap* is the id distance to its nearest labelled photo (training.neighbours). Its band:

    near   gap <= 5          (77% of the real test photos: the id-neighbour block and decoder speak loudly)
    mid    5 < gap <= 100
    far    gap > 100         (Geograph's untagged archive: upload neighbours say little or nothing)

`Banded` holds one `Choice` per band (bands may share one) and applies to each photo its band's; a run
makes each band's choice, and its estimate, on hold-out rows made to look like that band's photos
(pipeline.bands). Where ids say nothing to any member or decoder a run keeps one plain `Choice`.
"""
from __future__ import annotations

import numpy as np

from ..training.neighbours import NeighbourSource
from .select import Choice

EDGES = (5, 100)  # upper gap of each band but the last
NAMES = ("near", "mid", "far")


def band_of(gaps: np.ndarray) -> np.ndarray:
    """int8 band index (0 near, 1 mid, 2 far) of each gap."""
    return np.searchsorted(np.asarray(EDGES), np.asarray(gaps, np.int64), side="left").astype(np.int8)


def describe(band: int) -> str:
    """"near (gap <= 5)", "mid (5 < gap <= 100)", "far (gap > 100)"."""
    low = EDGES[band - 1] if band else None
    high = EDGES[band] if band < len(EDGES) else None
    if low is None:
        return f"{NAMES[band]} (gap <= {high})"
    return f"{NAMES[band]} ({low} < gap <= {high})" if high is not None else f"{NAMES[band]} (gap > {low})"


class Banded:
    """One `Choice` per band; `combine` and `decode` take the photos' ids (their band comes from their gap
    to the labelled rows `neighbours`) or their `bands` directly."""

    kind = "banded"

    def __init__(self, choices: list[Choice], neighbours: NeighbourSource | None = None, main: int = 0):
        if len(choices) != len(NAMES):
            raise ValueError(f"a banded choice needs one choice per band ({len(NAMES)}), got {len(choices)}")
        self.choices, self.neighbours, self.main = list(choices), neighbours, int(main)
        self.members = list(dict.fromkeys(m for c in self.choices for m in c.members))

    @property
    def name(self) -> str:
        names = [c.name for c in self.choices]
        if len(set(names)) == 1:
            return names[0]
        return "; ".join(f"{NAMES[b]}: {n}" for b, n in enumerate(names))

    @property
    def decoder(self):
        """The decoder of the band that most hold-out rows (hence test photos) fell in, for reports."""
        return self.choices[self.main].decoder

    def bands(self, ids: np.ndarray | None, bands: np.ndarray | None = None) -> np.ndarray:
        if bands is not None:
            return np.asarray(bands, np.int8)
        if ids is None or self.neighbours is None:
            raise ValueError("a choice by gap band needs the photos' ids and the run's labelled ids"
                             " (OUT/neighbours.npz)")
        return band_of(self.neighbours.gaps(np.asarray(ids, np.int64)))

    def _apply(self, how: str, probs: list[np.ndarray], ids, bands) -> np.ndarray:
        if len(probs) != len(self.members):
            raise ValueError(f"{self.name} reads {len(self.members)} variants, got {len(probs)} probability arrays")
        by_name = dict(zip(self.members, probs))
        band = self.bands(ids, bands)
        out = None
        for b, choice in enumerate(self.choices):
            rows = np.flatnonzero(band == b)
            if not len(rows):
                continue
            part = [by_name[m][rows] for m in choice.members]
            got = choice.combine(part) if how == "combine" else choice.decode(part, None if ids is None else
                                                                                np.asarray(ids)[rows])
            if out is None:
                out = np.empty((len(band), got.shape[1]), dtype=got.dtype)
            out[rows] = got
        if out is None:  # no photos at all
            return np.empty((0, probs[0].shape[1] if probs and probs[0].ndim == 2 else 0), dtype=np.float32)
        return out

    def combine(self, probs: list[np.ndarray], ids: np.ndarray | None = None,
                bands: np.ndarray | None = None) -> np.ndarray:
        return self._apply("combine", probs, ids, bands)

    def decode(self, probs: list[np.ndarray], ids: np.ndarray | None = None,
               bands: np.ndarray | None = None) -> np.ndarray:
        return self._apply("decode", probs, ids, bands)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "members": self.members, "edges": list(EDGES),
                "main": self.main, "bands": {NAMES[b]: c.to_dict() for b, c in enumerate(self.choices)}}

    @classmethod
    def from_dict(cls, d: dict, n_tags: int, neighbours: NeighbourSource | None = None) -> "Banded":
        if tuple(d.get("edges", ())) != EDGES:
            raise ValueError(f"a choice by gap band saved with band edges {d.get('edges')}, this kit has {list(EDGES)}")
        return cls([Choice.from_dict(d["bands"][n], n_tags, neighbours) for n in NAMES], neighbours, d.get("main", 0))


def choice_from_dict(d: dict, n_tags: int, neighbours: NeighbourSource | None = None) -> Choice | Banded:
    """A run's final choice as run.json keeps it: one `Choice`, or a `Banded` one."""
    if d.get("kind") == Banded.kind:
        return Banded.from_dict(d, n_tags, neighbours)
    return Choice.from_dict(d, n_tags, neighbours)
