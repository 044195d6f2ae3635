"""Scores of predicted 0/1 tag matrices against labels (all vectorised)."""
from __future__ import annotations

import numpy as np


def _check(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    if y_true.shape != y_pred.shape or y_true.ndim != 2:
        raise ValueError(f"labels {y_true.shape} and predictions {y_pred.shape} must be matrices of one shape")
    return y_true, y_pred


def exact_match(y_true, y_pred) -> float:
    """Share of rows whose whole tag set is right (the competition's metric)."""
    y_true, y_pred = _check(y_true, y_pred)
    return float((y_true == y_pred).all(axis=1).mean()) if len(y_true) else 0.0


def per_tag_f1(y_true, y_pred) -> np.ndarray:
    """F1 of each column; 0 where a tag is neither present nor predicted (as scikit-learn's default)."""
    y_true, y_pred = _check(y_true, y_pred)
    tp = (y_true & y_pred).sum(axis=0)
    denom = y_true.sum(axis=0) + y_pred.sum(axis=0)
    return np.divide(2 * tp, denom, out=np.zeros(y_true.shape[1]), where=denom > 0)


def macro_f1(y_true, y_pred) -> float:
    return float(per_tag_f1(y_true, y_pred).mean())


def scores(y_true, y_pred, columns=None) -> dict:
    """exact match, macro F1 and per-tag F1 (keyed by column name when given)."""
    f1 = per_tag_f1(y_true, y_pred)
    names = columns if columns is not None else [str(i) for i in range(len(f1))]
    return {"exact_match": exact_match(y_true, y_pred), "macro_f1": float(f1.mean()),
            "per_tag_f1": {name: round(float(v), 6) for name, v in zip(names, f1)}}
