"""Where a run goes wrong on its hold-out, in numbers: per-tag precision, recall and F1, which tags are
predicted instead of which, how well the probabilities are calibrated, and tag-set sizes.

`run` saves OUT/holdout.npz (hold-out ids, labels and the final choice's cross-fitted tags: each row
decoded by settings tuned on the other half); the final probabilities are recomputed from the members'
saved hold-out probabilities and run.json's weights, so `geocontext report` needs no retraining."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...decoding.metrics import per_tag_f1
from ...decoding.bands import Banded, choice_from_dict
from ...decoding.select import Choice
from ...errors import DataError
from ...writing import atomic_file
from ..run_folder import RunFolder


def save_holdout(out: RunFolder, ids: np.ndarray, y: np.ndarray, predicted: np.ndarray, choice_name: str,
                 rows: np.ndarray | None = None, bands: np.ndarray | None = None) -> Path:
    """What the report needs beyond report.json: which photos, their labels, the tags the final choice gave;
    `rows`: their positions among the hold-out rows of the members' probabilities (default: all of them);
    `bands`: each row's gap band, for a choice by band (decoding.bands)."""
    path = out.holdout_npz
    rows = np.arange(len(ids)) if rows is None else rows
    extra = {} if bands is None else {"bands": np.asarray(bands, dtype=np.int8)}
    return atomic_file(path, lambda h: np.savez_compressed(
        h, ids=np.asarray(ids, dtype=np.int64), y=np.asarray(y, dtype=np.uint8),
        predicted=np.asarray(predicted, dtype=np.uint8), choice=np.array(choice_name), rows=np.asarray(rows, dtype=np.int64),
        **extra))


@dataclass
class Holdout:
    """A finished run's hold-out: labels, cross-fitted tags and final probabilities, row for row."""

    ids: np.ndarray
    y: np.ndarray  # uint8 (N, T)
    predicted: np.ndarray  # uint8 (N, T), cross-fitted
    probs: np.ndarray  # float32 (N, T), the final choice's combination of its members
    columns: list[str]
    choice: Choice | Banded
    info: dict  # run.json


def load_tags(run_dir) -> dict[str, np.ndarray]:
    """OUT/holdout.npz: ids, y, predicted (cross-fitted) and the name of the choice that made them."""
    path = RunFolder(run_dir).holdout_npz
    if not path.exists():
        raise DataError(f"{run_dir}: no {path.name} (written by `run` since the HTML report came in, and only when the"
                        " run had a hold-out); run `geocontext run` again with the same --out: finished variants are"
                        " reused, only the decoding is redone")
    with np.load(path) as saved:
        tags = {k: saved[k] for k in ("ids", "y", "predicted", "choice")}
        tags["rows"] = saved["rows"] if "rows" in saved else np.arange(len(tags["ids"]))
        tags["bands"] = saved["bands"] if "bands" in saved else None
        return tags


def load_holdout(run_dir) -> Holdout:
    folder = RunFolder(run_dir)
    info = folder.read_run_info()
    saved = load_tags(run_dir)
    path = folder.holdout_npz
    choice = choice_from_dict(info["final"], len(info["columns"]))
    if str(saved["choice"]) != choice.name:
        raise DataError(f"{path}: made for {saved['choice']}, but run.json's final choice is {choice.name}")
    probs = []
    for m in choice.members:
        member = folder.member(m).holdout_probs
        if not member.exists():
            raise DataError(f"{member}: missing; the final choice needs member {m!r}'s hold-out probabilities")
        probs.append(np.load(member))
    rows = saved["rows"]  # the rows that chose no epoch
    bands = saved["bands"]
    if isinstance(choice, Banded) and bands is None:
        raise DataError(f"{path}: has no gap bands, but run.json's final choice is made by band; run `geocontext run`"
                        " again with the same --out (finished variants are reused)")
    combined = choice.combine([p[rows] for p in probs], bands=bands).astype(np.float32)
    y, predicted = saved["y"], saved["predicted"]
    if not combined.shape == y.shape == predicted.shape:
        raise DataError(f"{run_dir}: hold-out probabilities {combined.shape} do not match {path}'s labels {y.shape}")
    return Holdout(saved["ids"], y, predicted, combined, list(info["columns"]), choice, info)


def per_tag(y: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    """Per column: precision (NaN where never predicted), recall (NaN where never true), F1 (NaN where
    neither: nothing to score), counts."""
    y, p = np.asarray(y, dtype=bool), np.asarray(predicted, dtype=bool)
    tp = (y & p).sum(axis=0)
    support, called = y.sum(axis=0), p.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(called > 0, tp / called, np.nan)
        recall = np.where(support > 0, tp / support, np.nan)
    f1 = np.where(support + called > 0, per_tag_f1(y, p), np.nan)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support,
            "predicted": called, "true_positive": tp}


def confusion(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """C[j, k] = hold-out photos on which tag j was missed while tag k was wrongly added.

    Row j: what is predicted instead of j. Column j: the tags j steals (added where they were the truth)."""
    y, p = np.asarray(y, dtype=bool), np.asarray(predicted, dtype=bool)
    # float64 so the product runs in BLAS; counts stay exact far beyond any hold-out size (2**53)
    missed = (y & ~p).astype(np.float64)
    added = (~y & p).astype(np.float64)
    return (missed.T @ added).astype(np.int64)


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> dict:
    """Equal-width bins over every (photo, tag) probability: mean probability, share truly tagged, count;
    and the expected calibration error (count-weighted mean gap)."""
    p = np.asarray(probs, dtype=np.float64).ravel()
    t = np.asarray(y, dtype=np.float64).ravel()
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(which, weights=p, minlength=bins) / count
        share = np.bincount(which, weights=t, minlength=bins) / count
    used = count > 0
    ece = float((np.abs(mean_p - share)[used] * count[used]).sum() / max(count.sum(), 1))
    return {"edges": np.linspace(0, 1, bins + 1), "mean_prob": mean_p, "share_true": share, "count": count,
            "ece": ece}


def set_sizes(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Crosstab M[a, b] = photos with a true tags and b predicted ones (sizes 0..max)."""
    true_n = np.asarray(y, dtype=np.int64).sum(axis=1)
    pred_n = np.asarray(predicted, dtype=np.int64).sum(axis=1)
    top = int(max(true_n.max(initial=0), pred_n.max(initial=0))) + 1
    return np.bincount(true_n * top + pred_n, minlength=top * top).reshape(top, top)
