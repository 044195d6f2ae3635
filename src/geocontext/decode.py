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


class LabelSetDecoder:
    """Each photo gets the most probable tag set among the sets seen in the training labels.

    Under the model's per-tag probabilities p, a set S scores sum_j log(1 - p_j) + sum_{j in S} logit(p_j);
    the first sum is the same for every S, so the scores are one matrix product logit(p) @ S^T. A prior
    term prior_weight * log(frequency of S) favours common sets. Every candidate set is non-empty, so the
    at-least-one-tag rule holds by construction."""

    kind = "label_set"

    def __init__(self, sets, log_prior, prior_weight: float = 0.0):
        self.sets = np.asarray(sets, dtype=np.uint8)
        self.log_prior = np.asarray(log_prior, dtype=np.float32)
        self.prior_weight = float(prior_weight)
        if self.sets.ndim != 2 or len(self.sets) != len(self.log_prior) or not self.sets.any(axis=1).all():
            raise ValueError("sets must be a K x T 0/1 matrix of non-empty sets with one log prior each")

    @classmethod
    def from_labels(cls, y: np.ndarray, top_k: int = 1000, prior_weight: float = 0.0) -> "LabelSetDecoder":
        """The `top_k` most frequent non-empty tag sets of `y`, most frequent first."""
        y = np.asarray(y, dtype=np.uint8)
        y = y[y.any(axis=1)]
        sets, counts = np.unique(y, axis=0, return_counts=True)
        order = np.argsort(-counts, kind="stable")[:top_k]
        return cls(sets[order], np.log(counts[order] / len(y)), prior_weight)

    def with_prior_weight(self, prior_weight: float) -> "LabelSetDecoder":
        return LabelSetDecoder(self.sets, self.log_prior, prior_weight)

    def decode(self, probs: np.ndarray, chunk: int = 16_384) -> np.ndarray:
        probs = np.asarray(probs, dtype=np.float32)
        if probs.shape[1] != self.sets.shape[1]:
            raise ValueError(f"label sets have {self.sets.shape[1]} tags, probabilities {probs.shape[1]}")
        members = self.sets.T.astype(np.float32)
        bias = self.prior_weight * self.log_prior
        best = np.empty(len(probs), dtype=np.int64)
        for start in range(0, len(probs), chunk):
            p = np.clip(probs[start:start + chunk], 1e-6, 1 - 1e-6)
            best[start:start + chunk] = (np.log(p / (1 - p)) @ members + bias).argmax(axis=1)
        return self.sets[best].copy()

    def to_dict(self) -> dict:
        return {"kind": self.kind, "sets": [np.flatnonzero(s).tolist() for s in self.sets],
                "log_prior": self.log_prior.tolist(), "prior_weight": self.prior_weight}

    @classmethod
    def from_dict_args(cls, sets, log_prior, prior_weight, n_tags: int) -> "LabelSetDecoder":
        dense = np.zeros((len(sets), n_tags), dtype=np.uint8)
        for i, members in enumerate(sets):
            dense[i, members] = 1
        return cls(dense, log_prior, prior_weight)


def decoder_from_dict(d: dict, n_tags: int):
    """Rebuild a decoder saved with `to_dict`."""
    if d.get("kind") == ThresholdDecoder.kind:
        return ThresholdDecoder(d["thresholds"])
    if d.get("kind") == LabelSetDecoder.kind:
        return LabelSetDecoder.from_dict_args(d["sets"], d["log_prior"], d["prior_weight"], n_tags)
    raise ValueError(f"unknown decoder kind {d.get('kind')!r}; expected threshold or label_set")
