"""The HTML report's figures, drawn with matplotlib (Agg) and returned as PNG bytes to inline."""
from __future__ import annotations

import io

import numpy as np


def _pyplot():
    import matplotlib  # here, not at the top: importing the pipeline must not load matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    _pyplot().close(fig)
    return buffer.getvalue()


def reliability_plot(rel: dict, title: str) -> bytes:
    """Share truly tagged against mean probability per bin (the diagonal is perfect calibration), and how
    many (photo, tag) pairs fall in each bin on a log scale below."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.2, 6.4), height_ratios=(3, 1.3), sharex=True)
    used = rel["count"] > 0
    top.plot([0, 1], [0, 1], ls="--", color="#999", lw=1, label="perfectly calibrated")
    top.plot(rel["mean_prob"][used], rel["share_true"][used], "o-", color="#2f6f9f", label="this run")
    top.set_ylabel("share of pairs truly tagged")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=9)
    top.set_title(f"{title}\nexpected calibration error {rel['ece']:.4f}", fontsize=10)
    edges = rel["edges"]
    bottom.bar(edges[:-1], np.maximum(rel["count"], 0.1), width=np.diff(edges), align="edge", color="#8fb3d1",
               edgecolor="#fff", log=True)
    bottom.set_xlabel("final probability (photo x tag pairs of the hold-out)")
    bottom.set_ylabel("pairs")
    fig.tight_layout()
    return _png(fig)


def set_size_plot(crosstab: np.ndarray) -> bytes:
    """How many photos have 0, 1, 2, ... tags: the truth against the final choice's tags."""
    plt = _pyplot()
    sizes = np.arange(crosstab.shape[0])
    true_n, pred_n = crosstab.sum(axis=1), crosstab.sum(axis=0)
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    ax.bar(sizes - 0.2, true_n, width=0.4, label="true", color="#3c9a48")
    ax.bar(sizes + 0.2, pred_n, width=0.4, label="predicted (cross-fitted)", color="#2f6f9f")
    ax.set_xticks(sizes)
    ax.set_xlabel("tags per photo")
    ax.set_ylabel("hold-out photos")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return _png(fig)


def confusion_plot(matrix: np.ndarray, names: list[str]) -> bytes:
    """Tag j missed (row) while tag k wrongly added (column), on hold-out photos."""
    plt = _pyplot()
    from matplotlib.colors import LogNorm, Normalize

    n = len(names)
    side = max(5.0, 0.19 * n + 3)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    shown = np.ma.masked_where(matrix <= 0, matrix)
    top = max(int(matrix.max()), 2)
    # a log scale once counts span orders of magnitude (a real hold-out); plain counts on a small one
    norm = LogNorm(vmin=1, vmax=top) if top > 20 else Normalize(vmin=0, vmax=top)
    image = ax.imshow(shown, cmap="magma_r", norm=norm, interpolation="nearest")
    ax.set_xticks(np.arange(n), names, rotation=90, fontsize=7)
    ax.set_yticks(np.arange(n), names, fontsize=7)
    ax.set_xlabel("wrongly added instead")
    ax.set_ylabel("missed tag")
    ax.set_facecolor("#fafafa")
    fig.colorbar(image, ax=ax, fraction=0.035, label="hold-out photos")
    fig.tight_layout()
    return _png(fig, dpi=90)
