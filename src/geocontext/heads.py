"""Tagging heads: a linear layer or the published MLP, behind a fixed per-column standardisation."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

HEADS = ("linear", "mlp")


def build_head(kind: str, in_dim: int, n_tags: int, hidden: int = 256, dropout: float = 0.5) -> nn.Module:
    """`linear`: nn.Linear(in_dim, n_tags). `mlp`: Linear-ReLU-Dropout-Linear, the published layout
    (its state dict keys 0.* and 3.* match the published heads)."""
    if kind == "linear":
        return nn.Linear(in_dim, n_tags)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_tags))
    raise ValueError(f"unknown head {kind!r}; expected one of {HEADS}")


class Standardizer:
    """Per-column mean and standard deviation of training rows; applied in place, chunk by chunk."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    @classmethod
    def identity(cls, dim: int) -> "Standardizer":
        return cls(np.zeros(dim), np.ones(dim))

    @classmethod
    def fit(cls, x: np.ndarray, rows: np.ndarray | None = None, chunk: int = 65_536) -> "Standardizer":
        rows = np.arange(len(x)) if rows is None else rows
        return cls.fit_blocks(x[rows[start:start + chunk]] for start in range(0, len(rows), chunk))

    @classmethod
    def fit_blocks(cls, blocks) -> "Standardizer":
        """From the training rows given block by block (the whole matrix never needs to exist)."""
        n, total, total_sq = 0, 0.0, 0.0
        for block in blocks:
            block = np.asarray(block, dtype=np.float64)
            n += len(block)
            total = total + block.sum(axis=0)
            total_sq = total_sq + np.square(block).sum(axis=0)
        if n == 0:
            raise ValueError("cannot standardise: no training rows")
        mean = total / n
        std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
        return cls(mean, np.where(std > 1e-6, std, 1.0))  # constant columns (e.g. an all-zero flag) pass through

    def transform_(self, x: np.ndarray, chunk: int = 65_536) -> np.ndarray:
        """Standardise `x` in place."""
        return self.transform(x, out=x, chunk=chunk)

    def transform(self, x: np.ndarray, out: np.ndarray, chunk: int = 65_536) -> np.ndarray:
        """Standardised `x` written into `out` (which may be `x`), chunk by chunk to bound temporaries."""
        for start in range(0, len(x), chunk):
            part = out[start:start + chunk]
            np.subtract(x[start:start + chunk], self.mean, out=part)
            part /= self.std
        return out

    def state(self) -> dict:
        return {"mean": torch.from_numpy(self.mean.copy()), "std": torch.from_numpy(self.std.copy())}

    @classmethod
    def from_state(cls, state: dict) -> "Standardizer":
        return cls(state["mean"].numpy(), state["std"].numpy())


@torch.inference_mode()
def predict_proba(head: nn.Module, x, batch_size: int = 65_536) -> np.ndarray:
    """Sigmoid outputs in float32 for a (standardised) input matrix, batch by batch, in eval mode."""
    head.eval()
    x = torch.as_tensor(x)
    out = np.empty((len(x), _n_out(head)), dtype=np.float32)
    for start in range(0, len(x), batch_size):
        out[start:start + batch_size] = torch.sigmoid(head(x[start:start + batch_size].float())).numpy()
    return out


def _n_out(head: nn.Module) -> int:
    return [m for m in head.modules() if isinstance(m, nn.Linear)][-1].out_features
