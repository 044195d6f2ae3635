"""Deciding, once the members are trained: the honest final choice on the hold-out (pipeline.honest),
the chosen heads refitted on every labelled row (pipeline.refit), and the test photos' tags. The
neighbour-set decoder reads every labelled row (never a photo's own): on the selection rows as on the
test photos, so the hold-out sees its neighbours as densely as a test photo does. Nothing is
written here but what refit saves; pipeline.results writes the run's files from the `Outcome`."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..decoding.select import Choice
from ..training.neighbours import IdNeighbours
from .config import RunConfig
from .honest import honest_choice
from .members import Members
from .prepare import Prepared
from .refit import refit_members
from .run_folder import RunFolder


@dataclass
class Outcome:
    choice: Choice  # members, weights, decoder: what run.json keeps and `predict` applies
    candidates: dict  # every candidate's cross-fitted scores on the selection rows
    estimate: dict  # the nested estimate of the whole procedure (report.json final.exact_match)
    predicted: np.ndarray  # the selection rows' tags, each from a choice made without that row
    test_tags: np.ndarray  # uint8 (test photos, tags)
    test_probs: np.ndarray  # the final combination's probabilities on the test photos
    labelled: IdNeighbours  # the labelled rows the neighbour-set decoder reads (saved for `predict`)


def decide(prep: Prepared, out: RunFolder, members: Members, config: RunConfig, timings: dict) -> Outcome:
    """Choose the final combination and decoder honestly, refit its heads (unless config.refit is off),
    decode the test photos."""
    t = time.perf_counter()
    select = prep.select
    labelled = IdNeighbours.fit(prep.labels.ids, prep.labels.y)  # every photo's own row excluded when read
    choice, candidates, predicted, estimate = honest_choice(
        {m: p[select] for m, p in members.holdout_probs.items()}, prep.y_holdout[select],
        prep.labels.ids[prep.holdout][select], prep.labels.y[prep.fit_rows], config.decode, out.optuna_storage,
        labelled)
    timings["decode"] = time.perf_counter() - t
    if config.refit:
        t = time.perf_counter()
        refit_members(prep, config.max_tags, config.seed, out, members, choice.members, timings)
        timings["refit"] = time.perf_counter() - t
    test_probs = [members.test_probs[m] for m in choice.members]
    return Outcome(choice, candidates, estimate, predicted, choice.decode(test_probs, prep.test_ids),
                   choice.combine(test_probs), labelled)
