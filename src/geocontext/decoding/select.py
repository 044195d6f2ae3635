"""Choose how the trained variants become the final tags: which members, their weights, the decoder.

Candidates are (members x decoder): each variant alone and the ensemble of all, decoded by each method
of decoding.methods (the published 0.5 threshold, a tuned global threshold, tuned per-tag thresholds,
the label-set decoder).
Every candidate is scored honestly: what it tunes (weights, thresholds, prior weight) is fitted on one
fold of the hold-out and scored on the other (2-fold cross-fitting), so no reported score was measured
on the rows that chose its settings. The winner is then refitted on the whole hold-out for the test set."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..console import progress
from ..data.split import folds
from ..fields import flag, name_list, number, whole
from ..training.neighbours import NeighbourSource
from .decoders import LabelSetDecoder, ThresholdDecoder
from .ensemble import combine, fit_weights
from .methods import METHODS, Decoder, Tuning, decoder_from_dict
from .metrics import exact_match, macro_f1


@dataclass
class DecodeConfig:
    decoders: tuple[str, ...] = tuple(METHODS)
    ensemble: bool = True  # also try the weighted mean of all variants
    singles: bool = True  # also try each variant alone
    global_trials: int = 40
    per_tag_trials: int = 50  # in all, the first two enqueued starts (see thresholds.tune_thresholds)
    label_sets: int = 1000  # candidate sets for the label-set decoder: the most frequent in training
    prior_weights: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    # How much a photo's own set (tags at or above the tuned global threshold), when it is no known
    # set, is handicapped against the known sets; None = never allowed (pure label-set decoding);
    # 0 with prior weight 0 is the global threshold itself.
    novel_penalties: tuple = (0.0, 0.5, 1.0, 2.0, 4.0, None)
    # the neighbour-set decoder's candidates: the sets of each photo's k nearest labelled ids (8: the true set
    # is among them for 36% of the test photos at full size, 30% among 4; BENCHMARKS.md section 17)
    neighbour_sets: int = 8
    folds: int = 2
    seed: int = 0

    def __post_init__(self):
        for name in ("decoders", "prior_weights", "novel_penalties"):
            if not isinstance(getattr(self, name), (list, tuple)):
                raise ValueError(f"decode.{name} must be a list, got {getattr(self, name)!r}")
        self.decoders = name_list("decode.decoders", self.decoders, METHODS)
        self.prior_weights = tuple(self.prior_weights)
        self.novel_penalties = tuple(self.novel_penalties)
        unknown = set(self.decoders) - set(METHODS)
        if unknown or not self.decoders:
            raise ValueError(f"decode.decoders must be among {tuple(METHODS)} (a non-empty list), got {self.decoders}")
        flag("decode.ensemble", self.ensemble)
        flag("decode.singles", self.singles)
        for name in ("global_trials", "per_tag_trials", "label_sets", "neighbour_sets"):
            whole(f"decode.{name}", getattr(self, name), 1)
        whole("decode.folds", self.folds, 2)  # cross-fitting needs at least 2
        whole("decode.seed", self.seed, 0)
        if not self.prior_weights:
            raise ValueError("decode.prior_weights must list at least one number >= 0")
        for w in self.prior_weights:
            number("decode.prior_weights[]", w, 0)
        for p in self.novel_penalties:
            if p is not None:
                number("decode.novel_penalties[] (or null)", p, 0)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Choice:
    """A fitted way to turn variant probabilities into tags."""

    name: str
    members: list[str]
    weights: np.ndarray
    decoder: Decoder = field(default_factory=ThresholdDecoder)

    def combine(self, probs: list[np.ndarray], ids: np.ndarray | None = None, bands=None) -> np.ndarray:
        """The members' weighted mean (`ids`, `bands`: for the same call as a choice by gap band takes)."""
        if len(probs) != len(self.members):
            raise ValueError(f"{self.name} combines {len(self.members)} variants, got {len(probs)} probability arrays")
        return combine(probs, self.weights)

    def decode(self, probs: list[np.ndarray], ids: np.ndarray | None = None, bands=None) -> np.ndarray:
        """Tags of photos `ids` from their members' probabilities (the ids: for decoders reading neighbours)."""
        return self.decoder.decode(self.combine(probs), ids)

    def to_dict(self) -> dict:
        return {"name": self.name, "members": list(self.members), "weights": [float(w) for w in self.weights],
                "decoder": self.decoder.to_dict()}

    @classmethod
    def from_dict(cls, d: dict, n_tags: int, neighbours: NeighbourSource | None = None) -> "Choice":
        return cls(d["name"], list(d["members"]), np.asarray(d["weights"]),
                   decoder_from_dict(d["decoder"], n_tags, neighbours))


@dataclass
class Candidate:
    name: str
    members: list[str]
    decoder: str

    def tune(self, probs: list[np.ndarray], y: np.ndarray, ids: np.ndarray, label_sets: LabelSetDecoder,
             config: DecodeConfig, storage: str | None, study: str, shared: dict | None = None,
             neighbours: NeighbourSource | None = None) -> Choice:
        """Fit weights and decoder on (probs, y) of photos `ids`: rows of the hold-out this candidate may
        tune on (`neighbours`: the labelled rows, for decoders that read upload neighbours).

        `shared` (a dict) carries the ensemble weights and the tuned global threshold between the
        candidates with the same members fitted on the same rows, so each is computed once."""
        shared = {} if shared is None else shared
        if "weights" not in shared:
            shared["weights"] = fit_weights(probs, y)
        weights = shared["weights"]
        tuning = Tuning(combine(probs, weights), y, ids, config, label_sets, storage, study, shared, neighbours)
        return Choice(self.name, self.members, weights, METHODS[self.decoder](tuning))


def candidates(names: list[str], config: DecodeConfig) -> list[Candidate]:
    """Simplest first: on equal scores the earlier (simpler) candidate is kept."""
    groups = [[n] for n in names] if config.singles or len(names) == 1 else []
    if config.ensemble and len(names) > 1:
        groups.append(list(names))
    found = []
    for decoder in config.decoders:
        for members in groups:
            label = members[0] if len(members) == 1 else f"ensemble({len(members)})"
            found.append(Candidate(f"{label} / {decoder}", members, decoder))
    return found


def choose(holdout_probs: dict[str, np.ndarray], y: np.ndarray, ids: np.ndarray, train_y: np.ndarray,
           config: DecodeConfig, storage: str | None = None,
           neighbours: NeighbourSource | None = None, study: str = "final") -> tuple[Choice, dict, np.ndarray]:
    """The candidate with the best cross-fitted hold-out exact match, refitted on the whole hold-out.
    `neighbours` (the labelled rows; each photo's own row never counts) lets neighbour-set decoding compete.

    Also returns the winner's cross-fitted hold-out tags (each row decoded by settings tuned on the
    other fold), for honest per-tag figures. The studies that tune the final decoder (named `study`/...)
    go to the Optuna `storage` URL (a run's optuna.db: resumable, inspectable); the many cross-fitting studies, which only
    score candidates, run in memory because Optuna's RDB storage costs ~10x per trial."""
    label_sets = LabelSetDecoder.from_labels(train_y, config.label_sets)
    fold = folds(ids, config.folds, config.seed)
    report, best, best_predicted, shared = {}, None, None, {}
    for cand in progress(candidates(list(holdout_probs), config), desc="decoders", unit="candidate"):
        probs = [holdout_probs[m] for m in cand.members]
        predicted = np.zeros_like(y)
        for k in range(config.folds):
            tune, score = fold != k, fold == k
            choice = cand.tune([p[tune] for p in probs], y[tune], ids[tune], label_sets, config, None,
                               f"fold{k}/{cand.name}", shared=shared.setdefault((tuple(cand.members), k), {}),
                               neighbours=neighbours)
            predicted[score] = choice.decode([p[score] for p in probs], ids[score])
        report[cand.name] = {
            "members": cand.members, "decoder": cand.decoder,
            "exact_match": exact_match(y, predicted), "macro_f1": macro_f1(y, predicted),
            "fold_exact_match": [exact_match(y[fold == k], predicted[fold == k]) for k in range(config.folds)],
        }
        if best is None or report[cand.name]["exact_match"] > report[best.name]["exact_match"]:
            best, best_predicted = cand, predicted
    final = best.tune([holdout_probs[m] for m in best.members], y, ids, label_sets, config, storage,
                      f"{study}/{best.name}", neighbours=neighbours)
    return final, report, best_predicted
