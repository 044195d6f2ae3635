"""Probabilities -> 0/1 tag sets. Every decoder gives each photo at least one tag."""
from __future__ import annotations

import numpy as np


def ensure_one_tag(tags: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Give rows with no tag their most probable one (every Geograph photo has a tag)."""
    empty = ~tags.any(axis=1)
    if empty.any():
        tags[np.flatnonzero(empty), probs[empty].argmax(axis=1)] = 1
    return tags


class ThresholdDecoder:
    """A tag is on when its probability reaches its threshold (one for all tags, or one per tag)."""

    kind = "threshold"

    def __init__(self, thresholds=0.5):
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        if self.thresholds.ndim > 1 or np.any((self.thresholds < 0) | (self.thresholds > 1)):
            raise ValueError("thresholds must be a number or a vector of numbers in [0, 1]")

    def decode(self, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs)
        if self.thresholds.ndim == 1 and self.thresholds.shape[0] != probs.shape[1]:
            raise ValueError(f"{self.thresholds.shape[0]} thresholds for {probs.shape[1]} tags")
        return ensure_one_tag((probs >= self.thresholds).astype(np.uint8), probs)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "thresholds": self.thresholds.tolist()}


def decoder_from_dict(d: dict):
    kinds = {cls.kind: cls for cls in (ThresholdDecoder,)}
    if d.get("kind") not in kinds:
        raise ValueError(f"unknown decoder kind {d.get('kind')!r}; expected one of {sorted(kinds)}")
    return kinds[d["kind"]](**{k: v for k, v in d.items() if k != "kind"})
