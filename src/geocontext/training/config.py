"""How one variant is trained, as data: its feature spec and its training settings.

`VariantConfig` = name + `features` (training.inputs.FeatureSpec) + `train` (TrainConfig below). The
run-wide configuration that lists the variants is pipeline.config.RunConfig."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..fields import number, whole
from .heads import HEADS
from .inputs import FeatureSpec

INPUT_DTYPES = ("auto", "bf16", "fp32")


@dataclass
class TrainConfig:
    head: str = "linear"  # linear | mlp
    hidden: int = 256
    dropout: float = 0.5
    mixup_alpha: float = 0.0  # > 0 turns MixUp on: lambda ~ Beta(a, a), lambda = max(lambda, 1 - lambda)
    label_smoothing: float = 0.0  # BCE targets pulled toward 0.5 by this share: y (1 - s) + s / 2
    epochs: int = 30
    batch_size: int = 4096
    min_steps_per_epoch: int = 20  # small data sets get smaller batches rather than one step an epoch
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 4  # epochs without a better hold-out exact match before stopping
    seed: int = 0
    input_dtype: str = "auto"  # how the inputs are held: fp32, or bf16 | auto (half the memory; products in bf16 only where the CPU has bf16 units)

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}: train.head must be one of {HEADS}")
        if self.input_dtype not in INPUT_DTYPES:
            raise ValueError(f"train.input_dtype must be one of {INPUT_DTYPES}, got {self.input_dtype!r}")
        for name in ("epochs", "batch_size", "min_steps_per_epoch", "hidden"):
            whole(f"train.{name}", getattr(self, name), 1)
        whole("train.patience", self.patience, 0)
        whole("train.seed", self.seed, 0)
        number("train.dropout", self.dropout, 0, 1, high_open=True)
        number("train.lr", self.lr, 0, low_open=True)
        number("train.weight_decay", self.weight_decay, 0)
        number("train.mixup_alpha", self.mixup_alpha, 0)
        number("train.label_smoothing", self.label_smoothing, 0, 1, high_open=True)

    RENAMED = {"precision": "input_dtype"}  # old spellings still read (configs, saved variant.json)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**renamed(d, cls.RENAMED))


def renamed(d: dict, names: dict[str, str]) -> dict:
    """`d` with its keys under their current names."""
    return {names.get(k, k): v for k, v in d.items()}


@dataclass
class VariantConfig:
    name: str
    features: FeatureSpec = field(default_factory=FeatureSpec)
    train: TrainConfig = field(default_factory=TrainConfig)


def default_variants() -> list[VariantConfig]:
    """The published head family (linear, MLP 512 wide) on image + title + location + the location encoders
    (priors and Fourier features) + the id-neighbour block; and a linear head and an MLP 256 wide without
    the block, so that where ids say nothing, or the photos to tag sit far from every labelled one, the
    honest choice has heads that never read them (issue 30: there the best head without the block was
    linear). Each runs 16 epochs of its cosine schedule and MixUp is left out, so that at full size on 2
    cores without bf16 units the run stays under 20 minutes (the MLP's hold-out exact match at 0.5 was
    0.4319 after 16 epochs, 0.4309 after 30; BENCHMARKS.md, sections 11 and 13). Peers (FeatureSpec.peers,
    their scores or their content), a 30-epoch linear head and MixUp on the MLP were measured against these
    and left out (section 17)."""
    spec, plain = FeatureSpec(priors=True, fourier=True, neighbours=True), FeatureSpec(priors=True, fourier=True)
    return [
        VariantConfig("linear-img-txt-loc-pri-rff-nb", spec, TrainConfig(head="linear", lr=1e-2, epochs=16)),
        VariantConfig("mlp-img-txt-loc-pri-rff-nb", spec, TrainConfig(head="mlp", hidden=512, lr=3e-3, epochs=16)),
        VariantConfig("mlp256-img-txt-loc-pri-rff", plain, TrainConfig(head="mlp", hidden=256, lr=3e-3, epochs=16)),
        VariantConfig("linear-img-txt-loc-pri-rff", plain, TrainConfig(head="linear", lr=1e-2, epochs=16)),
    ]
