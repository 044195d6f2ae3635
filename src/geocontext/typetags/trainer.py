"""Weighted-BCE training of the type classifier: whole tensors in memory, index-sliced mini-batches,
early stopping on the validation rows' weighted loss. An epoch is a few large matrix products.

Against the published training (Adam, fixed learning rate, batches of about 1,000 from a DataLoader):
AdamW with a cosine schedule, the best validation epoch kept, and distance dropout decided per photo id.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..training.loop import holdout_scores, train_epochs
from .classifier import TypeClassifier
from .dropout import DistanceDropout
from .labels import WeightRules


@dataclass
class TypesTrainConfig:
    epochs: int = 40
    batch_size: int = 1024
    min_steps_per_epoch: int = 20  # small data sets get smaller batches rather than one step an epoch
    lr: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.2
    patience: int = 5  # epochs without a lower validation loss before stopping
    seed: int = 0
    distance_dropout: DistanceDropout = field(default_factory=DistanceDropout)
    weights: WeightRules = field(default_factory=WeightRules)
    tune_trials: int = 200  # Optuna trials for the thresholds on the validation rows; 0 keeps 0.5
    per_class_thresholds: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TypesTrainConfig":
        d = dict(d)
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown types training option(s) {unknown}; expected some of {sorted(cls.__dataclass_fields__)}")
        return cls(distance_dropout=DistanceDropout(**d.pop("distance_dropout", {})),
                   weights=WeightRules(**d.pop("weights", {})), **d)

    @classmethod
    def from_file(cls, path: str | Path) -> "TypesTrainConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            raise ValueError(f"{path}: not a valid types training configuration ({exc})") from exc


@dataclass
class Tensors:
    """One split's inputs: embeddings, distance indices, 0/1 targets, loss weights."""

    x: torch.Tensor  # float32 (N, D)
    dist: torch.Tensor  # int64 (N,)
    y: torch.Tensor  # float32 (N, C)
    w: torch.Tensor  # float32 (N,)

    @classmethod
    def of(cls, x, dist, y, w) -> "Tensors":
        return cls(torch.as_tensor(np.asarray(x, dtype=np.float32)), torch.as_tensor(np.asarray(dist, dtype=np.int64)),
                   torch.as_tensor(np.asarray(y, dtype=np.float32)), torch.as_tensor(np.asarray(w, dtype=np.float32)))

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class TypesFit:
    model: TypeClassifier
    best_epoch: int
    best_loss: float
    optimizer_state: dict
    history: list = field(default_factory=list)
    seconds: float = 0.0


def weighted_bce(logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Per-photo mean BCE over classes, averaged with the photos' weights (sum w * loss / sum w)."""
    per_photo = nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(dim=1)
    return (per_photo * w).sum() / w.sum().clamp_min(1e-12)


@torch.inference_mode()
def _evaluate(model: TypeClassifier, data: Tensors, batch_size: int = 65_536) -> tuple[float, float]:
    """(weighted BCE, exact match at 0.5 with the at-least-one-class rule) on `data`."""
    model.eval()
    logits = torch.cat([model(data.x[i:i + batch_size], data.dist[i:i + batch_size])
                        for i in range(0, len(data), batch_size)])
    exact, _ = holdout_scores(logits, data.y)
    return weighted_bce(logits, data.y, data.w).item(), exact


def fit(train: Tensors, val: Tensors, config: TypesTrainConfig, n_distances: int = 24, desc: str = "types") -> TypesFit:
    """Train on `train` (distance dropout already applied), keep the epoch with the lowest validation loss."""
    if not len(train) or not len(val):
        raise ValueError(f"training needs rows in both splits (train {len(train)}, validation {len(val)})")
    torch.manual_seed(config.seed)
    model = TypeClassifier(train.y.shape[1], n_distances, train.x.shape[1], dropout=config.dropout)

    def batch_loss(idx: torch.Tensor, gen: torch.Generator):
        xb, db, yb, wb = (t.index_select(0, idx) for t in (train.x, train.dist, train.y, train.w))
        return weighted_bce(model(xb, db), yb, wb), wb.sum().item()

    def evaluate():
        val_loss, val_exact = _evaluate(model, val)
        return (-val_loss,), {"val_loss": val_loss, "val_exact_match": val_exact}

    loop = train_epochs(model, len(train), config, batch_loss, evaluate, desc)
    return TypesFit(model, loop.best_epoch, loop.best.get("val_loss", float("inf")), loop.optimizer_state,
                    loop.history, loop.seconds)
