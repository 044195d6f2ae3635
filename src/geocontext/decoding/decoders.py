"""Probabilities -> 0/1 tag sets. Every decoder gives each photo at least one tag. The table of decoders a
run chooses from, and how each is fitted, is decoding.methods."""
from __future__ import annotations

import numpy as np

from ..competition import ensure_one_tag


class ThresholdDecoder:
    """A tag is on when its probability reaches its threshold (one for all tags, or one per tag);
    strict=True: when it exceeds it, as the published notebooks decode (`> 0.5`)."""

    kind = "threshold"

    def __init__(self, thresholds=0.5, strict: bool = False):
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.strict = bool(strict)
        if self.thresholds.ndim > 1 or np.any((self.thresholds < 0) | (self.thresholds > 1)):
            raise ValueError("thresholds must be a number or a vector of numbers in [0, 1]")

    def decode(self, probs: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
        probs = np.asarray(probs)
        if self.thresholds.ndim == 1 and self.thresholds.shape[0] != probs.shape[1]:
            raise ValueError(f"{self.thresholds.shape[0]} thresholds for {probs.shape[1]} tags")
        on = probs > self.thresholds if self.strict else probs >= self.thresholds
        return ensure_one_tag(on.astype(np.uint8), probs)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "thresholds": self.thresholds.tolist(), **({"strict": True} if self.strict else {})}

    @classmethod
    def from_dict(cls, d: dict, n_tags: int, neighbours=None) -> "ThresholdDecoder":
        return cls(d["thresholds"], d.get("strict", False))


def _codes(sets: np.ndarray) -> np.ndarray:
    """Each 0/1 row as one integer (up to 64 tags), so set membership is a vectorised lookup."""
    if sets.shape[1] > 64:
        raise ValueError("label-set decoding handles at most 64 tags")
    return (sets.astype(np.uint64) << np.arange(sets.shape[1], dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


class LabelSetDecoder:
    """Each photo gets the most probable tag set among the sets seen in the training labels.

    Under the model's per-tag probabilities p, a set S scores sum_j log(1 - p_j) + sum_{j in S} logit(p_j);
    the first sum is the same for every S, so the scores are one matrix product logit(p) @ S^T. Each
    member also pays logit(own_threshold) (a prior on the set's size), and a term
    prior_weight * log(frequency of S) favours common sets. With a finite `novel_penalty`, the
    photo's own set (every tag with p >= own_threshold) competes too when it is not a known set, scored
    with the prior of a set seen once, minus the penalty: penalty 0 and prior weight 0 give back plain
    thresholding at own_threshold, no penalty (None) pure label-set decoding. Every set is non-empty."""

    kind = "label_set"

    def __init__(self, sets, log_prior, prior_weight: float = 0.0, novel_penalty: float | None = None,
                 unseen_log_prior: float | None = None, own_threshold: float = 0.5):
        self.sets = np.asarray(sets, dtype=np.uint8)
        self.log_prior = np.asarray(log_prior, dtype=np.float32)
        self.prior_weight = float(prior_weight)
        self.novel_penalty = None if novel_penalty is None or np.isinf(novel_penalty) else float(novel_penalty)
        self.unseen_log_prior = float(self.log_prior.min() if unseen_log_prior is None else unseen_log_prior)
        self.own_threshold = float(own_threshold)
        if self.sets.ndim != 2 or len(self.sets) != len(self.log_prior) or not self.sets.any(axis=1).all():
            raise ValueError("sets must be a K x T 0/1 matrix of non-empty sets with one log prior each")
        self._codes = np.sort(_codes(self.sets))

    @classmethod
    def from_labels(cls, y: np.ndarray, top_k: int = 1000, prior_weight: float = 0.0,
                    novel_penalty: float | None = None) -> "LabelSetDecoder":
        """The `top_k` most frequent non-empty tag sets of `y`, most frequent first."""
        y = np.asarray(y, dtype=np.uint8)
        y = y[y.any(axis=1)]
        sets, counts = np.unique(y, axis=0, return_counts=True)
        order = np.argsort(-counts, kind="stable")[:top_k]
        return cls(sets[order], np.log(counts[order] / len(y)), prior_weight, novel_penalty, np.log(1 / len(y)))

    def with_settings(self, prior_weight: float, novel_penalty: float | None,
                      own_threshold: float | None = None) -> "LabelSetDecoder":
        return LabelSetDecoder(self.sets, self.log_prior, prior_weight, novel_penalty, self.unseen_log_prior,
                               self.own_threshold if own_threshold is None else own_threshold)

    def _known(self, logits: np.ndarray, prior_weight: float, chunk: int = 16_384) -> tuple[np.ndarray, np.ndarray]:
        """Index and score of each row's best known set."""
        members = self.sets.T.astype(np.float32)
        bias = np.float32(prior_weight) * self.log_prior
        index = np.empty(len(logits), dtype=np.int64)
        score = np.empty(len(logits), dtype=np.float32)
        for start in range(0, len(logits), chunk):
            s = logits[start:start + chunk] @ members + bias
            index[start:start + chunk] = s.argmax(axis=1)
            score[start:start + chunk] = s[np.arange(len(s)), index[start:start + chunk]]
        return index, score

    def _own(self, logits: np.ndarray, prior_weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's own most probable set, its score (before the penalty) and whether it is unknown."""
        own = ensure_one_tag(logits >= 0, logits)
        score = (logits * own).sum(axis=1) + prior_weight * self.unseen_log_prior
        return own.astype(np.uint8), score, ~np.isin(_codes(own), self._codes)

    def logits(self, probs: np.ndarray) -> np.ndarray:
        """log-odds against own_threshold: each tag in a set costs logit(own_threshold), so at prior
        weight 0 the best set over all sets is exactly thresholding at own_threshold."""
        p = np.clip(np.asarray(probs, dtype=np.float32), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p)) - np.float32(np.log(self.own_threshold / (1 - self.own_threshold)))

    def decode(self, probs: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
        if probs.shape[1] != self.sets.shape[1]:
            raise ValueError(f"label sets have {self.sets.shape[1]} tags, probabilities {probs.shape[1]}")
        logits = self.logits(probs)
        index, score = self._known(logits, self.prior_weight)
        out = self.sets[index].copy()
        if self.novel_penalty is not None:
            own, own_score, unknown = self._own(logits, self.prior_weight)
            use = unknown & (own_score - self.novel_penalty > score)
            out[use] = own[use]
        return out

    def tune(self, probs: np.ndarray, y: np.ndarray, prior_weights, novel_penalties) -> "LabelSetDecoder":
        """The prior weight and penalty with the best exact match on (probs, y), keeping own_threshold;
        one matrix product per prior weight."""
        logits = self.logits(probs)
        y = np.asarray(y, dtype=np.uint8)
        best, best_score = None, -1.0
        for w in prior_weights:
            index, score = self._known(logits, w)
            known_right = (self.sets[index] == y).all(axis=1)
            own, own_score, unknown = self._own(logits, w)
            own_right = (own == y).all(axis=1)
            for penalty in novel_penalties:
                use = unknown & (own_score - penalty > score) if penalty is not None and np.isfinite(penalty) \
                    else np.zeros(len(y), dtype=bool)
                exact = np.where(use, own_right, known_right).mean()
                if exact > best_score:
                    best, best_score = (w, penalty), exact
        return self.with_settings(*best)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "sets": [np.flatnonzero(s).tolist() for s in self.sets],
                "log_prior": self.log_prior.tolist(), "prior_weight": self.prior_weight,
                "novel_penalty": self.novel_penalty, "unseen_log_prior": self.unseen_log_prior,
                "own_threshold": self.own_threshold}

    @classmethod
    def from_dict(cls, d: dict, n_tags: int, neighbours=None) -> "LabelSetDecoder":
        dense = np.zeros((len(d["sets"]), n_tags), dtype=np.uint8)
        for i, members in enumerate(d["sets"]):
            dense[i, members] = 1
        return cls(dense, d["log_prior"], d["prior_weight"], d.get("novel_penalty"), d.get("unseen_log_prior"),
                   d.get("own_threshold", 0.5))
