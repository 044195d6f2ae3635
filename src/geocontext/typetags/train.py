"""Weighted-BCE training of the type classifier: whole tensors in memory, index-sliced mini-batches,
early stopping on the validation rows' weighted loss. An epoch is a few large matrix products.

Against the published training (Adam, fixed learning rate, batches of about 1,000 from a DataLoader):
AdamW with a cosine schedule, the best validation epoch kept, and distance dropout decided per photo id.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..progress import progress
from ..train import EarlyStopping, holdout_scores
from .dropout import DistanceDropout
from .labels import WeightRules
from .model import TypeClassifier


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
    gen = torch.Generator().manual_seed(config.seed)
    model = TypeClassifier(train.y.shape[1], n_distances, train.x.shape[1], dropout=config.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    batch_size = max(1, min(config.batch_size, -(-len(train) // config.min_steps_per_epoch)))
    steps = -(-len(train) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps)

    result = TypesFit(model, -1, float("inf"), {})
    keeper, start = EarlyStopping(config.patience), time.perf_counter()
    bar = progress(range(config.epochs), desc=desc, unit="epoch")
    for epoch in bar:
        model.train()
        perm = torch.randperm(len(train), generator=gen)
        total, weight_seen = 0.0, 0.0
        for i in range(0, len(train), batch_size):
            idx = perm[i:i + batch_size]
            xb, db, yb, wb = (t.index_select(0, idx) for t in (train.x, train.dist, train.y, train.w))
            loss = weighted_bce(model(xb, db), yb, wb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * wb.sum().item()
            weight_seen += wb.sum().item()
        val_loss, val_exact = _evaluate(model, val)
        elapsed = time.perf_counter() - start
        result.history.append({"epoch": epoch, "train_loss": total / max(weight_seen, 1e-12), "val_loss": val_loss,
                               "val_exact_match": val_exact, "seconds": elapsed})
        bar.set_postfix(loss=f"{val_loss:.4f}", exact=f"{val_exact:.4f}")
        if keeper.update(epoch, (-val_loss,), model):
            result.best_epoch, result.best_loss = epoch, val_loss
            result.optimizer_state = copy.deepcopy(opt.state_dict())
        if keeper.stop:
            break
    bar.close()
    keeper.restore(model)
    result.seconds = time.perf_counter() - start
    return result
