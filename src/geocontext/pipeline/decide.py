"""Deciding, once the members are trained: the honest final choice on the hold-out (pipeline.honest; by
gap band where anything reads upload neighbours, pipeline.bands), the chosen heads refitted on every
labelled row (pipeline.refit), and the test photos' tags. Hold-out rows read their labelled neighbours
as the test photos will (their matched radius, prep.radius): the neighbour-set decoder reads every
labelled row but a row's own and those within its radius, on the selection rows; on the test photos,
every labelled row. Nothing is written here but what refit saves; pipeline.results writes the run's
files from the `Outcome`."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..decoding.bands import Banded, band_of
from ..decoding.select import Choice
from ..training.neighbours import Excluding, IdNeighbours
from .bands import banded_choice
from .config import RunConfig
from .honest import honest_choice
from .members import Members
from .prepare import Prepared
from .refit import refit_members
from .run_folder import RunFolder


@dataclass
class Outcome:
    choice: Choice | Banded  # members, weights, decoder (per band): what run.json keeps and `predict` applies
    candidates: dict  # every candidate's cross-fitted scores on the selection rows (of the main band, if banded)
    estimate: dict  # the nested estimate of the whole procedure (report.json final.exact_match)
    predicted: np.ndarray  # the selection rows' tags, each from a choice made without that row
    test_tags: np.ndarray  # uint8 (test photos, tags)
    test_probs: np.ndarray  # the final combination's probabilities on the test photos
    labelled: IdNeighbours  # the labelled rows the neighbour-set decoder reads (saved for `predict`)
    bands: list[dict] | None = None  # per gap band: rows, test share, estimate, choice (pipeline.bands)
    selection_bands: np.ndarray | None = None  # int8 band of each selection row


def reads_ids(members: Members, config: RunConfig) -> bool:
    """Whether a member reads the id-neighbour block or a decoder reads upload neighbours: only then can
    near and far photos want different choices."""
    return bool(members.reading_ids) or "neighbour_sets" in config.decode.decoders


def decide(prep: Prepared, out: RunFolder, members: Members, config: RunConfig, timings: dict) -> Outcome:
    """Choose the final combination and decoder honestly, refit its heads (unless config.refit is off),
    decode the test photos."""
    t = time.perf_counter()
    select, held_ids = prep.select, prep.labels.ids[prep.holdout]
    view = Excluding(prep.labelled, held_ids, prep.radius[prep.holdout])  # the hold-out as far off as the test
    probs = {m: p[select] for m, p in members.holdout_probs.items()}
    y, ids, train_y = prep.y_holdout[select], held_ids[select], prep.labels.y[prep.fit_rows]
    bands = selection_bands = None
    if reads_ids(members, config):
        far = None
        if prep.far.any():
            far = ({m: members.far_probs[m] for m in probs}, prep.labels.y[prep.far], prep.labels.ids[prep.far])
        made = banded_choice(probs, y, ids, view, far, train_y, prep.test_gaps, config.decode, out.optuna_storage,
                             prep.labelled)
        choice, candidates, predicted, estimate = made.choice, made.candidates, made.predicted, made.estimate
        bands, selection_bands = made.bands, made.selection_bands
    else:
        choice, candidates, predicted, estimate = honest_choice(probs, y, ids, train_y, config.decode,
                                                                out.optuna_storage, view)
    timings["decode"] = time.perf_counter() - t
    if config.refit:
        t = time.perf_counter()
        refit_members(prep, config.max_tags, config.seed, out, members, choice.members, timings)
        timings["refit"] = time.perf_counter() - t
    test_probs = [members.test_probs[m] for m in choice.members]
    test_bands = band_of(prep.test_gaps)  # the test photos' gaps, measured once in prepare
    return Outcome(choice, candidates, estimate, predicted, choice.decode(test_probs, prep.test_ids, test_bands),
                   choice.combine(test_probs, prep.test_ids, test_bands), prep.labelled, bands, selection_bands)
