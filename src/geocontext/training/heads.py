"""Tagging heads: a linear layer or the published MLP, and their probabilities."""
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


@torch.inference_mode()
def predict_proba(model: nn.Module, *inputs, batch_size: int = 65_536) -> np.ndarray:
    """Sigmoid outputs in float32 of `model` on row-aligned `inputs` (a standardised input matrix, or the
    type classifier's embeddings and distance indices), batch by batch, in eval mode."""
    model.eval()
    tensors = [torch.as_tensor(x) for x in inputs]
    out = np.empty((len(tensors[0]), _n_out(model)), dtype=np.float32)
    for start in range(0, len(out), batch_size):
        batch = [t[start:start + batch_size] for t in tensors]
        out[start:start + batch_size] = torch.sigmoid(model(*(b.float() if b.is_floating_point() else b
                                                              for b in batch))).numpy()
    return out


def _n_out(model: nn.Module) -> int:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1].out_features
