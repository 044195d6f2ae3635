"""Run configuration as data: which variants to train and how. Loadable from a JSON file."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .features import FeatureSpec
from .select import DecodeConfig
from .train import TrainConfig


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


@dataclass
class RunConfig:
    variants: list[VariantConfig] = field(default_factory=default_variants)
    holdout_fraction: float = 0.2
    seed: int = 0
    max_tags: int = 5  # training rows with more tags are dropped (rare, noisy label sets)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = dict(d)
        variants = [VariantConfig(v["name"], FeatureSpec(**v.get("features", {})), TrainConfig(**v.get("train", {})))
                    for v in d.pop("variants", [asdict(v) for v in default_variants()])]
        decode = DecodeConfig(**d.pop("decode", {}))
        return cls(variants=variants, decode=decode, **d)

    @classmethod
    def from_file(cls, path: str | Path) -> "RunConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError, KeyError) as exc:  # JSONDecodeError is a ValueError
            raise ValueError(f"{path}: not a valid run configuration ({exc})") from exc
