"""Choose how the trained variants become the final tags: which members, their weights, the decoder.

Every candidate is scored honestly: whatever it tunes (weights, thresholds) is fitted on one part of
the hold-out and scored on the other (2-fold cross-fitting), so no reported score was measured on the
rows that chose its settings. The winner is then refitted on the whole hold-out for the test set."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .decode import ThresholdDecoder, decoder_from_dict
from .metrics import exact_match, macro_f1
from .split import folds


@dataclass
class Choice:
    name: str
    members: list[str]
    weights: np.ndarray
    decoder: object = field(default_factory=ThresholdDecoder)

    def combine(self, probs: list[np.ndarray]) -> np.ndarray:
        if len(probs) != len(self.members):
            raise ValueError(f"{self.name} combines {len(self.members)} variants, got {len(probs)} probability arrays")
        out = np.zeros_like(probs[0], dtype=np.float32)
        for w, p in zip(self.weights, probs):
            out += np.float32(w) * p
        return out

    def decode(self, probs: list[np.ndarray]) -> np.ndarray:
        return self.decoder.decode(self.combine(probs))

    def to_dict(self) -> dict:
        return {"name": self.name, "members": list(self.members), "weights": [float(w) for w in self.weights],
                "decoder": self.decoder.to_dict()}

    @classmethod
    def from_dict(cls, d: dict, run_dir: Path | None = None) -> "Choice":
        return cls(d["name"], list(d["members"]), np.asarray(d["weights"]), decoder_from_dict(d["decoder"]))


@dataclass
class Candidate:
    """A way to combine and decode: `fit` tunes it on hold-out rows and returns the Choice."""

    name: str
    members: list[str]

    def fit(self, probs: list[np.ndarray], y: np.ndarray, rows: np.ndarray, workdir: Path) -> Choice:
        weights = np.full(len(self.members), 1.0 / len(self.members))
        return Choice(self.name, self.members, weights, ThresholdDecoder(0.5))


def candidates(names: list[str]) -> list[Candidate]:
    found = [Candidate(f"{n} @0.5", [n]) for n in names]
    if len(names) > 1:
        found.append(Candidate("mean of all @0.5", list(names)))
    return found


def choose(holdout_probs: dict[str, np.ndarray], y: np.ndarray, ids: np.ndarray, workdir: Path,
           config, n_folds: int = 2) -> tuple[Choice, dict]:
    """The candidate with the best cross-fitted hold-out exact match, refitted on the whole hold-out."""
    fold = folds(ids, n_folds, config.seed)
    report = {}
    best = None
    for cand in candidates(list(holdout_probs)):
        probs = [holdout_probs[m] for m in cand.members]
        predicted = np.zeros_like(y)
        for k in range(n_folds):
            tune, score = fold != k, fold == k
            choice = cand.fit([p[tune] for p in probs], y[tune], np.flatnonzero(tune), workdir)
            predicted[score] = choice.decode([p[score] for p in probs])
        report[cand.name] = {"exact_match": exact_match(y, predicted), "macro_f1": macro_f1(y, predicted),
                             "fold_exact_match": [exact_match(y[fold == k], predicted[fold == k]) for k in range(n_folds)]}
        if best is None or report[cand.name]["exact_match"] > report[best.name]["exact_match"]:
            best = cand
    final = best.fit([holdout_probs[m] for m in best.members], y, np.arange(len(y)), workdir)
    return final, report
