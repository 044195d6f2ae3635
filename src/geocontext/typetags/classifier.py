"""The published type classifier: CLIP image embedding ++ distance embedding -> MLP -> 7 logits.

    logits = fc(cat([clip_vec (512), dist_emb[dist_idx] (16)]))
    fc     = Linear(528, 256) -> ReLU -> Dropout(0.2) -> Linear(256, 7)

Attribute names (dist_emb, fc.0, fc.3) and the order of the concatenation (image first, distance last)
are the published ones, so state dicts load both ways. (The published checkpoints confirm the order:
their Adam second moments for fc.0's last 16 input columns are about 3x those of the first 16, as the
distance embedding's unit-scale inputs give larger gradients than the image features.)
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..training.heads import predict_proba

HIDDEN = 256  # fixed: the published loader rebuilds Linear(clip_dim + dist_embed_dim, 256)


class TypeClassifier(nn.Module):
    def __init__(self, n_classes: int = 7, n_distances: int = 24, clip_dim: int = 512, dist_embed_dim: int = 16,
                 dropout: float = 0.2):
        super().__init__()
        self.dist_emb = nn.Embedding(n_distances, dist_embed_dim)
        self.fc = nn.Sequential(nn.Linear(clip_dim + dist_embed_dim, HIDDEN), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(HIDDEN, n_classes))

    @property
    def clip_dim(self) -> int:
        return self.fc[0].in_features - self.dist_emb.embedding_dim

    def forward(self, clip_vec: torch.Tensor, dist_idx: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.cat([clip_vec, self.dist_emb(dist_idx)], dim=1))


def type_probabilities(model: TypeClassifier, embeddings, dist_idx, batch_size: int = 65_536) -> np.ndarray:
    """Sigmoid outputs (float32, N x classes) after checking the inputs' shapes and distance range."""
    x = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    d = torch.tensor(np.asarray(dist_idx), dtype=torch.int64)  # a copy: small, and may come read-only
    if x.ndim != 2 or x.shape[1] != model.clip_dim or len(d) != len(x):
        raise ValueError(f"expected an N x {model.clip_dim} embedding matrix and N distance indices,"
                         f" got {tuple(x.shape)} and {tuple(d.shape)}")
    n_rows = model.dist_emb.num_embeddings
    if len(d) and (int(d.min()) < 0 or int(d.max()) >= n_rows):
        raise ValueError(f"distance indices must be in 0..{n_rows - 1}, found {int(d.min())}..{int(d.max())}")
    return predict_proba(model, x, d, batch_size=batch_size)
