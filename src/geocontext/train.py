"""The training loop: whole tensors in memory, index-sliced mini-batches, early stopping on
hold-out exact match. No DataLoader and no per-row Python: an epoch is a few large matrix products."""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from .heads import build_head
from .progress import progress


@dataclass
class TrainConfig:
    head: str = "linear"  # linear | mlp
    hidden: int = 256
    dropout: float = 0.5
    mixup_alpha: float = 0.0  # > 0 turns MixUp on: lambda ~ Beta(a, a), lambda = max(lambda, 1 - lambda)
    epochs: int = 30
    batch_size: int = 4096
    min_steps_per_epoch: int = 20  # small data sets get smaller batches rather than one step an epoch
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 4  # epochs without a better hold-out exact match before stopping
    seed: int = 0
    precision: str = "auto"  # bf16 | fp32 | auto (bf16 where the CPU multiplies bf16 natively)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FitResult:
    head: nn.Module
    best_epoch: int
    best_exact_match: float
    history: list = field(default_factory=list)
    seconds: float = 0.0
    seconds_to_best: float = 0.0


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


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def storage_dtype(precision: str) -> torch.dtype:
    """bf16 halves memory and runs the products on the CPU's bf16 units; weights stay float32."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    use_bf16 = precision == "bf16" or (precision == "auto" and cpu_has_bf16())
    return torch.bfloat16 if use_bf16 else torch.float32


def holdout_scores(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Exact match at probability 0.5 (logit 0) with the at-least-one-tag rule, and the BCE loss."""
    tags = logits >= 0
    empty = ~tags.any(dim=1)
    tags[empty, logits[empty].argmax(dim=1)] = True
    exact = (tags == y.bool()).all(dim=1).float().mean().item()
    return exact, nn.functional.binary_cross_entropy_with_logits(logits, y.float()).item()


def _logits(head: nn.Module, x: torch.Tensor, autocast: bool, batch_size: int = 65_536) -> torch.Tensor:
    head.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = torch.cat([head(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])
    head.train()
    return out


def fit(x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
        config: TrainConfig, desc: str = "train") -> FitResult:
    """Train a head; keep the epoch with the best hold-out exact match."""
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ValueError("inputs and labels must have the same number of rows")
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    autocast = x_train.dtype == torch.bfloat16
    head = build_head(config.head, x_train.shape[1], y_train.shape[1], config.hidden, config.dropout)
    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    batch_size = max(1, min(config.batch_size, -(-len(x_train) // config.min_steps_per_epoch)))
    steps = -(-len(x_train) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps)
    loss_fn = nn.BCEWithLogitsLoss()
    y_train = y_train.float()

    result = FitResult(head, -1, -1.0)
    keeper, start = EarlyStopping(config.patience), time.perf_counter()
    bar = progress(range(config.epochs), desc=desc, unit="epoch")
    for epoch in bar:
        head.train()
        perm = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(x_train), batch_size):
            idx = perm[i:i + batch_size]
            xb, yb = x_train.index_select(0, idx), y_train.index_select(0, idx)
            if config.mixup_alpha > 0:
                lam = rng.beta(config.mixup_alpha, config.mixup_alpha)
                lam = max(lam, 1.0 - lam)
                partner = torch.randperm(len(idx), generator=gen)
                xb = lam * xb + (1.0 - lam) * xb[partner]
                yb = lam * yb + (1.0 - lam) * yb[partner]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = head(xb)
            loss = loss_fn(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        score, val_loss = holdout_scores(_logits(head, x_val, autocast), y_val)
        elapsed = time.perf_counter() - start
        result.history.append({"epoch": epoch, "train_loss": total / len(x_train), "holdout_loss": val_loss,
                               "holdout_exact_match": score, "seconds": elapsed})
        bar.set_postfix(loss=f"{total / len(x_train):.4f}", exact=f"{score:.4f}")
        # Exact match moves in coarse steps; the hold-out loss breaks ties so a plateau is not a stop.
        if keeper.update(epoch, (score, -val_loss), head):
            result.best_epoch, result.best_exact_match, result.seconds_to_best = epoch, score, elapsed
        if keeper.stop:
            break
    bar.close()
    keeper.restore(head)
    result.seconds = time.perf_counter() - start
    return result
