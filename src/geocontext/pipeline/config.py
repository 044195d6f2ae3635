"""Run configuration as data. This is the one place that lists every field `--config` accepts.

RunConfig
  variants          the variants to train; default: the three of training.config.default_variants()
    - name          the variant's folder under OUT/variants/
      features      training.inputs.FeatureSpec: modalities (image, title, location, in that order),
                    l2_normalize, unknown ("flag" or "zero"), irish_grid, zero_location, blocks,
                    priors (location priors: what training photos nearby were tagged; training.location),
                    fourier (random Fourier features of the location; training.location),
                    neighbours (the id-neighbour block: the labelled photos uploaded nearby; training.neighbours),
                    peers (the peers' columns: a first stage's scores of the photos uploaded nearby, labelled
                    or not, read leak-free; "content": what those photos look like, no label read;
                    training.peers)
      train         training.config.TrainConfig: head (linear, mlp), hidden, dropout, mixup_alpha, label_smoothing, epochs,
                    batch_size, min_steps_per_epoch, lr, weight_decay, patience, seed,
                    input_dtype (how inputs are held in memory: auto, bf16, fp32; formerly `precision`)
  holdout_fraction  share of the labelled photos held out (0..1, by a hash of each id and `seed`)
  seed              seed of the hold-out split
  max_tags          training rows with more tags are dropped (rare, noisy label sets)
  refit             retrain the final choice's heads on train + hold-out rows for the epoch count chosen
                    on the hold-out (pipeline.refit); false keeps the hold-out-stopped heads
  neighbours        false (`run --no-neighbours`): every variant without the id-neighbour block and peers (a name
                    ending in -nb loses it; a variant that becomes another's twin is dropped) and no
                    neighbour-set decoder; everything else as configured
  decode            decoding.select.DecodeConfig: decoders (the names in decoding.methods.METHODS: 0.5,
                    global, per_tag, label_set, neighbour_sets), ensemble,
                    singles, global_trials, per_tag_trials, label_sets, prior_weights, novel_penalties,
                    folds, seed

A JSON file names only what it changes; every field it leaves out keeps its default. `variants` is
either a list (the whole list, replacing the defaults) or an object keyed by variant name, which
changes the named default variants field by field:

    {"seed": 1, "variants": {"mlp256-img-txt-loc-pri-rff": {"train": {"lr": 0.001}}}}

A name that is not a default variant is an error naming the closest one (a misspelt name would
otherwise add a variant of plain defaults), unless it declares a new variant: with "from", a copy of
the named variant with the changes given; or with both "features" and "train":

    {"variants": {"mlp-lr-low": {"from": "mlp256-img-txt-loc-pri-rff", "train": {"lr": 0.0003}}}}

An unknown field is an error that names it and lists the accepted ones.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path

from ..decoding.select import DecodeConfig
from ..fields import flag, number, whole
from ..training.config import TrainConfig, VariantConfig, default_variants, renamed
from ..training.inputs import FeatureSpec


@dataclass
class RunConfig:
    variants: list[VariantConfig] = field(default_factory=default_variants)
    holdout_fraction: float = 0.2
    seed: int = 0
    max_tags: int = 5
    refit: bool = True
    neighbours: bool = True
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def __post_init__(self):
        if not self.variants:
            raise ValueError("variants: at least one variant is needed (a list of {name, features, train}"
                             " or an object keyed by variant name); leave the field out for the defaults")
        names = [v.name for v in self.variants]
        bad = [n for n in names if not isinstance(n, str) or not n or "/" in n or n.startswith(".")]
        if bad:
            raise ValueError(f"variants: name {bad[0]!r} must be a non-empty folder name (no '/', not starting with '.')")
        if len(set(names)) != len(names):
            raise ValueError(f"variants: names must differ, got {names}")
        number("holdout_fraction", self.holdout_fraction, 0, 1, low_open=True, high_open=True)
        whole("max_tags", self.max_tags, 1)
        whole("seed", self.seed, 0)
        flag("refit", self.refit)
        flag("neighbours", self.neighbours)
        if not self.neighbours:
            self.variants, self.decode = _without_neighbours(self.variants, self.decode)

    def without_neighbours(self) -> "RunConfig":
        """This configuration with nothing that reads upload order (see `neighbours`)."""
        return replace(self, neighbours=False)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = dict(_checked(d, cls, "the run configuration"))
        base = cls()
        variants = d.pop("variants", None)
        variants = base.variants if variants is None else _variants(variants, base.variants)
        decode = _merged(base.decode, d.pop("decode", {}), "decode")
        return cls(variants=variants, decode=decode, **d)

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides) -> "RunConfig":
        """The defaults, or the JSON file `path`, with the command line's overrides (those not None)."""
        config = cls.from_file(path) if path else cls()
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_file(cls, path: str | Path) -> "RunConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError, KeyError) as exc:  # JSONDecodeError is a ValueError
            raise ValueError(f"{path}: not a valid run configuration ({exc})") from exc


def _without_neighbours(variants: list[VariantConfig], decode: DecodeConfig) -> tuple[list[VariantConfig], DecodeConfig]:
    """The variants without the id-neighbour block and the decoders without the neighbour-set one."""
    kept: dict[str, VariantConfig] = {}
    for v in variants:
        if v.features.reads_ids:
            name = v.name[:-3] if v.name.endswith("-nb") else f"{v.name}-without-nb"
            v = replace(v, name=name, features=replace(v.features, neighbours=False, peers=False))
        twin = kept.get(v.name)
        if twin is not None and twin != v:
            raise ValueError(f"neighbours false: variant {v.name!r} without its block would differ from the variant"
                             " of that name; rename one of them")
        kept.setdefault(v.name, v)
    decoders = tuple(d for d in decode.decoders if d != "neighbour_sets")
    return list(kept.values()), replace(decode, decoders=decoders)


def _checked(d, cls, where: str) -> dict:
    """`d` when it is an object whose keys are all fields of `cls`; else a ValueError naming the stranger."""
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(d).__name__}")
    accepted = [f.name for f in fields(cls)]
    unknown = [k for k in d if k not in accepted]
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} in {where}; accepted: {', '.join(accepted)}")
    return d


def _merged(base, changes: dict, where: str):
    """A copy of the dataclass `base` with `changes` applied, nested dataclasses field by field."""
    if isinstance(changes, dict):
        changes = renamed(changes, getattr(type(base), "RENAMED", {}))
    _checked(changes, type(base), where)
    values = {f.name: getattr(base, f.name) for f in fields(base)}
    for key, value in changes.items():
        current = values[key]
        values[key] = _merged(current, value, f"{where}.{key}") if is_dataclass(current) else value
    try:
        return type(base)(**values)
    except ValueError as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where}: {exc}") from None


def _variants(given, defaults: list[VariantConfig]) -> list[VariantConfig]:
    fresh = VariantConfig("", FeatureSpec(), TrainConfig())
    if isinstance(given, list):
        out = []
        for i, v in enumerate(given):
            if not isinstance(v, dict) or "name" not in v:
                raise ValueError(f"variants[{i}]: each variant needs its 'name'")
            out.append(_merged(fresh, v, f"variants[{i}]"))
        return out
    if not isinstance(given, dict):
        raise ValueError(f"variants must be a list of variants or an object keyed by variant name, got {given!r}")
    by_name = {v.name: v for v in defaults}
    for name, changes in given.items():
        if isinstance(changes, dict) and changes.get("name", name) != name:
            raise ValueError(f"variants.{name}: its name is the key; drop 'name' or make it {name!r}")
        start, changes = _start(name, changes, by_name)
        by_name[name] = _merged(start, changes, f"variants.{name}")
    return list(by_name.values())


def _start(name: str, changes, known: dict[str, VariantConfig]) -> tuple[VariantConfig, dict]:
    """The variant `changes` applies to: the one of that name, or, for a new name, the one its "from"
    names (or plain defaults when it gives both features and train). A new name declared neither way
    is most often a misspelt one, which would otherwise add a variant nobody asked for."""
    if not isinstance(changes, dict):
        return known.get(name, VariantConfig(name)), changes
    changes = dict(changes)
    declared = "from" in changes
    source = changes.pop("from", None)
    if declared and not isinstance(source, str):  # 3, a list, null: no name to look up
        raise ValueError(f"variants.{name}.from: expected a variant name, got {source!r} (variants: {', '.join(known)})")
    if not declared and name in known:
        return known[name], changes
    if declared:
        if name in known:
            raise ValueError(f"variants.{name}: 'from' declares a new variant, but {name!r} already is one;"
                             " drop 'from' to change it, or give the new variant another name")
        if source not in known:
            raise ValueError(f"variants.{name}: from {source!r}: no such variant{_did_you_mean(source, known)}")
        return replace(known[source], name=name), changes
    if {"features", "train"} <= set(changes):
        return VariantConfig(name), changes
    raise ValueError(f"variants.{name}: no variant of that name{_did_you_mean(name, known)}; to add a new"
                     f" variant, give \"from\": \"<one of {', '.join(known)}>\" (its settings, then yours),"
                     " or both \"features\" and \"train\"")


def _did_you_mean(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (variants: {', '.join(known)})"
