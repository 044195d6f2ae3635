"""How one variant is trained, as data: its feature spec and its training settings.

`VariantConfig` = name + `features` (training.inputs.FeatureSpec) + `train` (TrainConfig below). The
run-wide configuration that lists the variants is pipeline.config.RunConfig."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .heads import HEADS
from .inputs import FeatureSpec

PRECISIONS = ("auto", "bf16", "fp32")


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

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}: train.head must be one of {HEADS}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"train.precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("epochs", "batch_size", "min_steps_per_epoch", "hidden"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be a whole number >= 1, got {getattr(self, name)!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"train.dropout must be in [0, 1), got {self.dropout!r}")
        if self.lr <= 0 or self.weight_decay < 0 or self.mixup_alpha < 0 or self.patience < 0:
            raise ValueError("train.lr must be > 0 and train.weight_decay, train.mixup_alpha, train.patience >= 0"
                             f" (got lr={self.lr!r}, weight_decay={self.weight_decay!r},"
                             f" mixup_alpha={self.mixup_alpha!r}, patience={self.patience!r})")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class VariantConfig:
    name: str
    features: FeatureSpec = field(default_factory=FeatureSpec)
    train: TrainConfig = field(default_factory=TrainConfig)


def default_variants() -> list[VariantConfig]:
    """The published head family on image + title + location: linear, MLP, MLP with MixUp."""
    return [
        VariantConfig("linear-img-txt-loc", train=TrainConfig(head="linear", lr=1e-2)),
        VariantConfig("mlp-img-txt-loc", train=TrainConfig(head="mlp", lr=3e-3)),
        VariantConfig("mlp-img-txt-loc-mixup", train=TrainConfig(head="mlp", lr=3e-3, mixup_alpha=0.4)),
    ]
