"""The final choice by gap band (decoding.bands), made and estimated honestly (issue 30).

Each hold-out row reads its upload neighbours as a test photo would (pipeline.honest.matched_radius: the
hold-out is given the test photos' gaps), so its gap puts it in a band: near, mid or far. Each band's
choice (members, weights, decoder) and its nested estimate are made on the selection rows in that band
(pipeline.honest.honest_choice), and the run's estimate is the exact match of every selection row under
its own band's nested choice: rows in each band as the test has them.

A band with fewer than MIN_ROWS selection rows is decided with the next farther band (at the end, with
the nearer one). The far band is
where Geograph's untagged archive mostly sits, so when the test leaves it thin it is decided on the *far
view*: selection rows (at most FAR_ROWS, hashed) that read no labelled neighbour at all, as an archive
photo reads none; the rows of nearer bands still pending join it. A run too small for either keeps one
choice for every band, made on all its selection rows.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..console import say
from ..decoding.bands import NAMES, Banded, band_of, describe
from ..decoding.metrics import exact_match, macro_f1
from ..decoding.select import Choice, DecodeConfig
from ..hashing import splitmix64, unit_interval
from ..training.neighbours import GAP_CAP, Excluding, IdNeighbours
from .honest import honest_choice

MIN_ROWS = 5000  # selection rows a band needs to be decided on its own (fewer: noisy thresholds and weights)
FAR_ROWS = 10_000  # the most rows of the far view
_FAR_SALT = 0x510E527FADE682D1


def _merged(band: np.ndarray) -> tuple[list[list[int]], list[int]]:
    """Bands grouped near to far until each group has MIN_ROWS selection rows; the far end left over."""
    made, pending = [], []
    for b in range(len(NAMES)):
        pending.append(b)
        if np.isin(band, pending).sum() >= MIN_ROWS:
            made.append(pending)
            pending = []
    return made, pending


def far_view(labelled: IdNeighbours, ids: np.ndarray, select: np.ndarray, radius: np.ndarray,
             seed: int) -> np.ndarray:
    """Bool over the labelled rows: the far view's rows, or none when the test's own gaps give the far
    end of the bands MIN_ROWS selection rows (or the selection has fewer than MIN_ROWS in all). Every
    selection row of the bands it decides is in it, so each has a nested far-view prediction; then
    others, hashed, up to FAR_ROWS."""
    rows = np.flatnonzero(select)
    band = band_of(labelled.gaps(ids[rows], radius[rows]))
    _, pending = _merged(band)
    out = np.zeros(len(ids), dtype=bool)
    if not pending or len(rows) < MIN_ROWS:
        return out
    with np.errstate(over="ignore"):
        u = unit_interval(splitmix64(ids[rows].astype(np.uint64) ^ np.uint64(_FAR_SALT + seed)))
    out[rows[np.isin(band, pending) | (u < FAR_ROWS / len(rows))]] = True
    return out


@dataclass
class Group:
    bands: list[int]  # the bands this choice serves
    rows: np.ndarray  # bool over the selection rows it is made on (matched view), or over the far view's
    far_view: bool = False


def groups(band: np.ndarray, far_rows: int) -> list[Group]:
    """Which bands share a choice, and on which rows each is made (see the module)."""
    made, pending = _merged(band)
    out = [Group(g, np.isin(band, g)) for g in made]
    if pending and far_rows >= MIN_ROWS:
        out.append(Group(pending, np.ones(far_rows, dtype=bool), far_view=True))
    elif pending and out:
        out[-1] = Group(out[-1].bands + pending, np.isin(band, out[-1].bands + pending))
    elif pending:
        out.append(Group(pending, np.ones(len(band), dtype=bool)))
    return out


@dataclass
class BandedOutcome:
    choice: Choice | Banded
    candidates: dict  # the main group's candidates (the band most selection rows fall in)
    predicted: np.ndarray  # each selection row's tags from its band's nested choice
    estimate: dict
    bands: list[dict]  # per band: rows, test share, nested estimate, the choice and where it was made
    selection_bands: np.ndarray  # int8 band of each selection row


def banded_choice(probs: dict[str, np.ndarray], y: np.ndarray, ids: np.ndarray, view: Excluding,
                  far: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray] | None, train_y: np.ndarray,
                  test_gaps: np.ndarray, config: DecodeConfig, storage: str | None,
                  labelled: IdNeighbours) -> BandedOutcome:
    """One choice per band (a plain `Choice` when one serves all) on the selection rows (`probs`, `y`, photos `ids`, reading their neighbours
    through the matched `view`) and, where the far band needs it, on the far view (`far`: its members'
    probabilities, labels and ids)."""
    band = band_of(view.gaps(ids))
    far_n = 0 if far is None else len(far[2])
    made = groups(band, far_n)
    choices: list[Choice | None] = [None] * len(NAMES)
    predicted, rows_report = np.zeros_like(y), {}
    main = max(made, key=lambda g: int(g.rows.sum()) if not g.far_view else -1)
    main_candidates: dict = {}
    for g in made:
        label = "+".join(NAMES[b] for b in g.bands)
        settings = config
        if g.far_view:
            p, yy, ii = far
            source = Excluding(labelled, ii, np.full(len(ii), GAP_CAP, np.int64))
            where = f"the far view: {len(ii)} selection rows reading no labelled neighbour"
            if len(config.decoders) > 1:  # no neighbour to offer a set there: not worth its search
                settings = replace(config, decoders=tuple(d for d in config.decoders if d != "neighbour_sets"))
        else:
            p, yy, ii = {m: v[g.rows] for m, v in probs.items()}, y[g.rows], ids[g.rows]
            source = view
            where = f"its {int(g.rows.sum())} selection rows" if len(g.bands) == 1 else \
                f"the {int(g.rows.sum())} selection rows of bands {label}"
        say(f"  band {label}: choosing on {where}")
        choice, candidates, nested, estimate = honest_choice(p, yy, ii, train_y, settings, storage, source,
                                                             study=f"final-{label}")
        choice.decoder = _rebind(choice.decoder, labelled)
        for b in g.bands:
            choices[b] = choice
        if g is main:
            main_candidates = candidates
        if g.far_view:  # the bands' matched rows: their far-view nested tags (far_view keeps them all)
            mine = np.isin(band, g.bands)
            order = np.argsort(ii, kind="stable")
            predicted[mine] = nested[order[np.searchsorted(ii[order], ids[mine])]]
        else:
            predicted[g.rows] = nested
        for b in g.bands:
            rows_report[b] = {"choice": choice.name, "decided_on": where, "group_estimate": estimate["exact_match"],
                              "group_rows": int(len(ii)), "fold_choices": estimate["fold_choices"]}
        last_estimate = estimate
    test_band = band_of(test_gaps)
    report = []
    for b in range(len(NAMES)):
        mine = band == b
        report.append({"band": NAMES[b], "describe": describe(b), "selection_rows": int(mine.sum()),
                       "test_share": float((test_band == b).mean()) if len(test_band) else 0.0,
                       "exact_match": exact_match(y[mine], predicted[mine]) if mine.any() else None,
                       **rows_report[b]})
    main_band = main.bands[int(np.argmax([(band == b).sum() for b in main.bands]))]
    one = all(c is choices[0] for c in choices)  # one choice serves every band: saved as a plain one
    banded = choices[0] if one else Banded(choices, labelled, main=main_band)
    by_band = {r["band"]: r["exact_match"] for r in report}
    if len(made) == 1 and not made[0].far_view:  # one choice made on every selection row: its own estimate
        estimate = {**last_estimate, "by_band": by_band}
    else:
        estimate = {"exact_match": exact_match(y, predicted), "macro_f1": macro_f1(y, predicted), "rows": int(len(y)),
                    "by_band": by_band}
    return BandedOutcome(banded, main_candidates, predicted, estimate, report, band)


def _rebind(decoder, labelled: IdNeighbours):
    """A decoder fitted on a hold-out view reads the labelled rows themselves afterwards (test photos)."""
    if getattr(decoder, "neighbours", None) is not None:
        decoder.neighbours = labelled
    return decoder
