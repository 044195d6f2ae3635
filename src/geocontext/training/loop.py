"""The epoch loop every head of the kit trains with, and the context heads' `fit`.

Whole tensors in memory, index-sliced mini-batches, AdamW with a cosine schedule, early stopping with
the best epoch's weights restored. No DataLoader and no per-row Python: an epoch is a few large matrix
products. The type classifier (typetags.trainer) runs the same loop with its own loss and score."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..competition import ensure_one_tag
from ..console import progress
from ..hardware import cpu_has_native_bf16
from .config import INPUT_DTYPES, TrainConfig
from .heads import build_head


class EarlyStopping:
    """Keeps the weights of the best epoch so far; `stop` turns true after `patience` epochs without a
    better score. Scores are tuples, compared in order, higher is better."""

    def __init__(self, patience: int):
        self.patience, self.best, self.best_epoch, self.state, self.since = patience, None, -1, None, 0

    def update(self, epoch: int, score: tuple, model: nn.Module) -> bool:
        """Record an epoch's score; True when it is the best so far (its weights are kept)."""
        if self.best is None or score > self.best:
            self.best, self.best_epoch, self.since = score, epoch, 0
            self.state = copy.deepcopy(model.state_dict())
            return True
        self.since += 1
        return False

    @property
    def stop(self) -> bool:
        return self.since >= self.patience

    def restore(self, model: nn.Module) -> nn.Module:
        model.load_state_dict(self.state)
        return model.eval()


@dataclass
class LoopResult:
    best_epoch: int
    best: dict  # the best epoch's history record
    history: list = field(default_factory=list)
    seconds: float = 0.0
    seconds_to_best: float = 0.0
    optimizer_state: dict = field(default_factory=dict)  # at the best epoch (checkpoints keep it)


def train_epochs(model: nn.Module, n_rows: int, config, batch_loss, evaluate, desc: str = "train",
                 stop_after: int | None = None) -> LoopResult:
    """Train `model` for up to `config.epochs` epochs over `n_rows` rows; keep the best epoch.
    `stop_after` ends training after that many epochs of the same (cosine) schedule.

    `config` gives epochs, batch_size, min_steps_per_epoch, lr, weight_decay, patience and seed.
    `batch_loss(idx, gen)` returns the loss of the rows `idx` and their weight in the epoch's mean loss;
    `evaluate()` returns (score tuple, higher is better; dict of figures for the history)."""
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    batch_size = max(1, min(config.batch_size, -(-n_rows // config.min_steps_per_epoch)))
    steps = -(-n_rows // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps)
    result = LoopResult(-1, {})
    keeper, start = EarlyStopping(config.patience), time.perf_counter()
    bar = progress(range(min(config.epochs, stop_after or config.epochs)), desc=desc, unit="epoch")
    for epoch in bar:
        model.train()
        perm = torch.randperm(n_rows, generator=gen)
        total, seen = 0.0, 0.0
        for i in range(0, n_rows, batch_size):
            loss, weight = batch_loss(perm[i:i + batch_size], gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * weight
            seen += weight
        score, figures = evaluate()
        elapsed = time.perf_counter() - start
        record = {"epoch": epoch, "train_loss": total / max(seen, 1e-12), **figures, "seconds": elapsed}
        result.history.append(record)
        bar.set_postfix({k: f"{v:.4f}" for k, v in figures.items()})
        if keeper.update(epoch, score, model):
            result.best_epoch, result.best, result.seconds_to_best = epoch, record, elapsed
            result.optimizer_state = copy.deepcopy(opt.state_dict())
        if keeper.stop:
            break
    bar.close()
    keeper.restore(model)
    result.seconds = time.perf_counter() - start
    return result


def storage_dtype(input_dtype: str) -> torch.dtype:
    """How training inputs are held: bf16 ("auto", "bf16") halves memory, which keeps a full-size run
    under 8 GB; weights stay float32. The products run in bf16 only on CPUs with native bf16 units
    (`bf16_products`); elsewhere each batch is widened to float32 first, as emulated bf16 is slow."""
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(f"input_dtype must be one of {INPUT_DTYPES}, got {input_dtype!r}")
    return torch.float32 if input_dtype == "fp32" else torch.bfloat16


def bf16_products(x: torch.Tensor) -> bool:
    return x.dtype == torch.bfloat16 and cpu_has_native_bf16()


def _widened(x: torch.Tensor, autocast: bool) -> torch.Tensor:
    """bf16 inputs as float32 where the CPU has no bf16 units (autocast off)."""
    return x if autocast or x.dtype == torch.float32 else x.float()


def holdout_scores(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Exact match at probability 0.5 (logit 0) with the at-least-one-tag rule, and the BCE loss."""
    scores = logits.float().numpy()
    tags = ensure_one_tag(scores >= 0, scores)
    exact = float((tags == y.bool().numpy()).all(axis=1).mean())
    return exact, nn.functional.binary_cross_entropy_with_logits(logits.float(), y.float()).item()


def _logits(head: nn.Module, x: torch.Tensor, autocast: bool, batch_size: int = 65_536) -> torch.Tensor:
    head.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = torch.cat([head(_widened(x[i:i + batch_size], autocast)).float() for i in range(0, len(x), batch_size)])
    head.train()
    return out


@dataclass
class FitResult:
    head: nn.Module
    best_epoch: int
    best_exact_match: float
    history: list = field(default_factory=list)
    seconds: float = 0.0
    seconds_to_best: float = 0.0


def fit(x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor | None, y_val: torch.Tensor | None,
        config: TrainConfig, desc: str = "train", epochs: int | None = None) -> FitResult:
    """Train a context head with BCE (and MixUp when `mixup_alpha` > 0); keep the epoch with the best
    hold-out exact match, the hold-out loss breaking ties (exact match moves in coarse steps).

    Without hold-out rows (x_val None) it trains exactly `epochs` epochs of the same schedule and keeps
    the last: how the final heads are refitted on all labelled rows with an epoch count chosen before."""
    if (x_val is None) != (epochs is not None):
        raise ValueError("fit: give either hold-out rows (early stopping) or a fixed number of epochs")
    if x_val is None:
        x_val, y_val = x_train[:0], y_train[:0]
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ValueError("inputs and labels must have the same number of rows")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    autocast = bf16_products(x_train)
    head = build_head(config.head, x_train.shape[1], y_train.shape[1], config.hidden, config.dropout)
    loss_fn = nn.BCEWithLogitsLoss()
    y_train = y_train.float()

    def batch_loss(idx: torch.Tensor, gen: torch.Generator):
        xb, yb = _widened(x_train.index_select(0, idx), autocast), y_train.index_select(0, idx)
        if config.mixup_alpha > 0:
            lam = rng.beta(config.mixup_alpha, config.mixup_alpha)
            lam = max(lam, 1.0 - lam)
            partner = torch.randperm(len(idx), generator=gen)
            xb = lam * xb + (1.0 - lam) * xb[partner]
            yb = lam * yb + (1.0 - lam) * yb[partner]
        if config.label_smoothing:
            yb = yb * (1.0 - config.label_smoothing) + 0.5 * config.label_smoothing
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = head(xb)
        return loss_fn(logits.float(), yb), len(idx)

    def evaluate():
        if epochs is not None:  # nothing to score on: each epoch beats the one before
            evaluate.epoch += 1
            return (evaluate.epoch,), {}
        exact, loss = holdout_scores(_logits(head, x_val, autocast), y_val)
        return (exact, -loss), {"holdout_loss": loss, "holdout_exact_match": exact}

    evaluate.epoch = 0
    loop = train_epochs(head, len(x_train), config, batch_loss, evaluate, desc, stop_after=epochs)
    return FitResult(head, loop.best_epoch, loop.best.get("holdout_exact_match", -1.0), loop.history, loop.seconds,
                     loop.seconds_to_best)
