"""Scores of decoded type predictions: per-class precision / recall / F1, macro F1, exact match, and
the confusion matrices as a PNG (one 2 x 2 matrix per class, and true class x predicted class)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..decoding.metrics import exact_match, per_tag_f1
from ..writing import atomic_file


def classification_report(y_true, y_pred, classes) -> dict:
    """Per-class precision, recall, F1, support and predicted count; macro averages; exact match.

    Precision (recall) is 0 for a class never predicted (never present), as scikit-learn's zero_division=0."""
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    f1 = per_tag_f1(y_true, y_pred)
    tp = (y_true & y_pred).sum(axis=0)
    support, predicted = y_true.sum(axis=0), y_pred.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(len(tp)), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(len(tp)), where=support > 0)
    per_class = {name: {"precision": round(float(p), 6), "recall": round(float(r), 6), "f1": round(float(f), 6),
                        "support": int(s), "predicted": int(k)}
                 for name, p, r, f, s, k in zip(classes, precision, recall, f1, support, predicted)}
    return {"rows": int(len(y_true)), "exact_match": exact_match(y_true, y_pred), "macro_f1": float(f1.mean()),
            "macro_precision": float(precision.mean()), "macro_recall": float(recall.mean()), "per_class": per_class}


def format_report(report: dict, title: str = "") -> str:
    """The report as a small fixed-width table."""
    lines = [title] if title else []
    lines.append(f"{'class':<12} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>8}")
    for name, s in report["per_class"].items():
        lines.append(f"{name:<12} {s['precision']:>9.3f} {s['recall']:>7.3f} {s['f1']:>6.3f} {s['support']:>8d}")
    lines.append(f"{'macro':<12} {report['macro_precision']:>9.3f} {report['macro_recall']:>7.3f} {report['macro_f1']:>6.3f}"
                 f" {report['rows']:>8d}")
    lines.append(f"exact match {report['exact_match']:.4f}")
    return "\n".join(lines)


def pair_matrix(y_true, y_pred) -> np.ndarray:
    """(C, C) counts: photos with true class i that were predicted class j (multi-label: a photo counts
    once in every (true, predicted) pair it has), so off-diagonal cells show which classes are mistaken."""
    return np.asarray(y_true, dtype=np.int64).T @ np.asarray(y_pred, dtype=np.int64)


def plot_confusion(y_true, y_pred, classes, path: str | Path, title: str = "") -> Path:
    """Write the per-class and true x predicted confusion matrices to one PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    n = len(classes)
    fig = Figure(figsize=(1.9 * n, 2.6 + 0.75 * n), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subfigures(2, 1, height_ratios=[2.6, 0.75 * n])
    for j, (name, ax) in enumerate(zip(classes, top.subplots(1, n))):
        t, p = y_true[:, j], y_pred[:, j]
        _matrix(ax, np.array([[(~t & ~p).sum(), (~t & p).sum()], [(t & ~p).sum(), (t & p).sum()]]))
        ax.set_title(name, fontsize=10)
        ax.set_xticks([0, 1], ["no", "yes"], fontsize=8)
        ax.set_yticks([0, 1], ["no", "yes"], fontsize=8)
        ax.set_xlabel("predicted", fontsize=8)
        if j == 0:
            ax.set_ylabel("true", fontsize=8)
    top.suptitle((f"{title}: " if title else "") + "each class on its own (counts; shading: share of the row)")
    middle = bottom.subfigures(1, 3, width_ratios=[1, 3, 1])[1]  # centred under the row of small matrices
    ax = middle.subplots()
    image = _matrix(ax, pair_matrix(y_true, y_pred), y_true.sum(axis=0))
    ax.set_xticks(range(n), classes, rotation=30, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("photos of each true class given each predicted class")
    middle.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_file(path, lambda h: fig.savefig(h, format="png", dpi=110), "the confusion matrices")
    return path


def _matrix(ax, counts: np.ndarray, row_totals: np.ndarray | None = None):
    """Counts written in cells shaded by their share of the row."""
    totals = counts.sum(axis=1) if row_totals is None else row_totals
    share = counts / np.maximum(np.asarray(totals)[:, None], 1)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (r, c), count in np.ndenumerate(counts):
        ax.text(c, r, str(count), ha="center", va="center", color="white" if share[r, c] > 0.6 else "black", fontsize=9)
    return image
