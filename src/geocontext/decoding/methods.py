"""The decoders a run can choose from, in one table.

A *decoder* turns a photo's 49 probabilities into its tags (`Decoder` below); a *method* is how a run
fits one on hold-out rows (`METHODS`, keyed by the names `decode.decoders` accepts in the run config).
`run` tries every configured method on every candidate combination of variants and keeps the best by
cross-fitted exact match (decoding.select); the chosen decoder is saved in run.json and rebuilt by its
kind (`SAVED`).

To add a decoder: write its class (it meets `Decoder`; decoders.py holds the threshold and label-set
decoders, neighbour_sets.py the one that also reads upload neighbours), add a row to `METHODS` saying how
it is fitted, and, if it is a new kind, one to `SAVED`. Nothing else changes.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..training.neighbours import NeighbourSource
from .decoders import LabelSetDecoder, ThresholdDecoder
from .neighbour_sets import NeighbourSetDecoder
from .thresholds import tune_thresholds


class Decoder(Protocol):
    kind: str  # names the class in a saved choice (run.json)

    def decode(self, probs: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
        """(N, T) probabilities of photos `ids` -> (N, T) 0/1 uint8 tags, every photo at least one tag
        (`ids`: for decoders that read the photos' upload neighbours)."""

    def to_dict(self) -> dict:
        """JSON-ready settings, with "kind"; `SAVED[kind](d, n_tags, neighbours)` rebuilds the decoder."""


class Settings(Protocol):
    """The decode settings a method may read (decoding.select.DecodeConfig has them)."""

    seed: int
    global_trials: int
    per_tag_trials: int
    prior_weights: tuple[float, ...]
    novel_penalties: tuple
    neighbour_sets: int


@dataclass
class Tuning:
    """What a method may fit its settings on: the combined probabilities of some hold-out rows, their
    labels, the decode settings, the training tag sets, and where Optuna keeps its studies."""

    probs: np.ndarray
    y: np.ndarray
    ids: np.ndarray  # the rows' photo ids
    config: Settings
    label_sets: LabelSetDecoder  # the most frequent training tag sets, settings not yet fitted
    storage: str | None  # an Optuna storage URL (the run's optuna.db), or None: in memory
    study: str  # names this fit's studies
    shared: dict  # between the methods fitted on the same rows: the global threshold is tuned once
    neighbours: NeighbourSource | None = None  # the labelled rows, for decoders that read upload neighbours

    def global_threshold(self) -> ThresholdDecoder:
        if "global" not in self.shared:
            self.shared["global"] = tune_thresholds(self.probs, self.y, per_tag=False, seed=self.config.seed,
                                                    storage=self.storage, study_name=self.study,
                                                    n_trials=self.config.global_trials)
        return self.shared["global"]


def _published(t: Tuning) -> Decoder:
    return ThresholdDecoder(0.5)


def _global(t: Tuning) -> Decoder:
    return t.global_threshold()


def _per_tag(t: Tuning) -> Decoder:
    return tune_thresholds(t.probs, t.y, per_tag=True, seed=t.config.seed, storage=t.storage, study_name=t.study,
                           n_trials=t.config.per_tag_trials)


def _label_set(t: Tuning) -> Decoder:
    if "label_set" not in t.shared:
        # a photo's own set is thresholded at the tuned global threshold
        own = float(t.global_threshold().thresholds)
        t.shared["label_set"] = t.label_sets.with_settings(0.0, None, own).tune(
            t.probs, t.y, t.config.prior_weights, t.config.novel_penalties)
    return t.shared["label_set"]


def _neighbour_sets(t: Tuning) -> Decoder:
    base = _label_set(t)
    if t.neighbours is None:
        return base
    return NeighbourSetDecoder.fit(base, t.probs, t.y, t.ids, t.neighbours, t.config.neighbour_sets)


METHODS: dict[str, Callable[[Tuning], Decoder]] = {
    "0.5": _published,  # the published notebooks' threshold
    "global": _global,  # one threshold for every tag, tuned by Optuna for exact match
    "per_tag": _per_tag,  # one threshold per tag (Optuna, from the global one and a coordinate ascent)
    "label_set": _label_set,  # the most probable of the frequent training tag sets (decoders.LabelSetDecoder)
    "neighbour_sets": _neighbour_sets,  # label_set, plus the upload neighbours' own sets (neighbour_sets.py)
}

SAVED: dict[str, Callable[[dict, int, NeighbourSource | None], Decoder]] = {
    ThresholdDecoder.kind: ThresholdDecoder.from_dict,
    LabelSetDecoder.kind: LabelSetDecoder.from_dict,
    NeighbourSetDecoder.kind: NeighbourSetDecoder.from_dict,
}


def decoder_from_dict(d: dict, n_tags: int, neighbours: NeighbourSource | None = None) -> Decoder:
    """Rebuild a decoder saved with `to_dict` (`neighbours`: the run's labelled rows, for those that read them)."""
    kind = d.get("kind")
    if kind not in SAVED:
        raise ValueError(f"unknown decoder kind {kind!r}; expected one of {', '.join(SAVED)}")
    return SAVED[kind](d, n_tags, neighbours)
