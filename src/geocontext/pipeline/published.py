"""The published "CLIP the Landscape" heads as a run folder: `geocontext heads import PATH... --out RUN`.

The authors published plain state dicts named {linear|mlp}-{img}-{txt}-{loc}[-mixup].pth, trained on
raw (un-normalised) CLIP ViT-B-32 embeddings (512 image + 512 title) and a 2-value location block. Their
notebooks meant it to be the grid square's centre, min-max normalised with the published bounds, but
looked each photo's square up with the 0-d tensor id a TensorDataset yields: a tensor never equals an
int dict key, the lookup raised KeyError and a bare `except` returned [0, 0]. So every published head
was trained and scored with location [0, 0] for every photo (why their location weights never moved),
and imported heads get exactly that: a zero location block (FeatureSpec.zero_location), and the
published strict threshold `> 0.5`. Each file becomes a Variant carrying that convention (a FeatureSpec and
an identity standardiser), so `predict`, `run --with RUN` and the decoders use it like a trained one.

RUN/ after an import:
  run.json       columns, the imported files, the final choice; "variants" offers every head to `run --with`
  report.json    the training logs' best scores; with --data/--features also hold-out scores, as `run` writes
  variants/<name>/   model.pt + variant.json (+ holdout_probs.npy, test_probs.npy with --data/--features)
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..competition import COLUMNS
from ..console import say
from ..decoding.decoders import ThresholdDecoder
from ..decoding.metrics import scores
from ..decoding.select import Choice
from ..errors import DataError
from ..training.heads import build_head
from ..training.inputs import FeatureSpec, Standardizer
from ..training.variant import Variant
from .config import RunConfig
from .decide import decide
from .members import Members, member_probs, save_member
from .outputs import removed_if_refused
from .predict import check_encoders
from .prepare import prepare
from .results import write_results
from .run_folder import RunFolder

EMBED_DIM = 512  # CLIP ViT-B-32, the published encoder
ENCODER = "open_clip ViT-B-32, OpenAI weights"
# What the published heads' features were, as an encoder identity (embedding.identity): QuickGELU, as
# OpenAI's weights need; features from a checkpoint file given without --quick-gelu are refused.
IDENTITY = {"model": "ViT-B-32", "weights": "tag:openai", "quick_gelu": True, "dim": EMBED_DIM}
SHORT = {"img": "image", "txt": "title", "loc": "location"}
_NAME = re.compile(r"^(linear|mlp)((?:-(?:img|txt|loc))+)(-mixup)?$")
_EPOCH = re.compile(r"Epoch\s+(\d+)\s+train_loss\s+([\d.]+)\s+val_acc\s+([\d.]+)\s+macro_f1\s+([\d.]+)")
_BEST = re.compile(r"Best epoch\s+(\d+)\s+val_acc\s+([\d.]+)\s+macro_f1\s+([\d.]+)")
SOURCE = "heads import"
CAVEAT = ("hold-out scores of published heads may be optimistic: they were trained on a split of the Geograph"
          " photos that is not published, so some of this hold-out may have been their training data")


@dataclass(frozen=True)
class HeadName:
    """What a published file's name says: head type, modalities (in fusion order), MixUp or not."""

    stem: str
    head: str
    modalities: tuple[str, ...]
    mixup: bool

    @property
    def spec(self) -> FeatureSpec:
        # zero_location: the published notebooks fed [0, 0] for every photo (see the module docstring)
        return FeatureSpec(self.modalities, l2_normalize=False, unknown="zero", irish_grid=False, zero_location=True)

    @property
    def in_dim(self) -> int:
        return self.spec.dim(EMBED_DIM)

    @property
    def article(self) -> str:
        return "an MLP" if self.head == "mlp" else "a linear"

    def describe_dim(self) -> str:
        sizes = {"image": f"{EMBED_DIM} image", "title": f"{EMBED_DIM} title", "location": "2 location"}
        return " + ".join(sizes[m] for m in self.modalities)


def parse_name(path: str | Path) -> HeadName:
    """`mlp-img-txt-loc-mixup.pth` -> HeadName('mlp', ('image', 'title', 'location'), mixup=True)."""
    stem = Path(path).name.split(".")[0]
    found = _NAME.match(stem)
    if not found:
        raise DataError(f"{path}: the name does not say which head this is; published heads are named"
                        " {linear|mlp}-{img}-{txt}-{loc}[-mixup].pth, e.g. mlp-img-txt-loc-mixup.pth")
    short = found.group(2).split("-")[1:]
    order = [s for s in SHORT if s in short]
    if short != order:
        raise DataError(f"{path}: modalities must appear once each, in the order img-txt-loc (got {'-'.join(short)})")
    return HeadName(stem, found.group(1), tuple(SHORT[s] for s in short), bool(found.group(3)))


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state dict (parameter name -> tensor), loaded with weights_only=True."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several kinds for non-torch files and refused pickles
        # PyTorch's message advises turning the weights-only guard off (running the file's code): never passed on
        raise DataError(f"{path}: refused: not a plain PyTorch state dict that loads with weights_only=True"
                        f" ({type(exc).__name__}); it may run code when unpickled") from exc
    if not isinstance(state, Mapping):
        raise DataError(f"{path}: holds a {type(state).__name__}, not a state dict (parameter name -> tensor)")
    others = {k: type(v).__name__ for k, v in state.items() if not isinstance(v, torch.Tensor)}
    if others:
        raise DataError(f"{path}: not a plain state dict: {others} are not tensors (a training checkpoint?"
                        " save the head's state_dict() alone)")
    return dict(state)


def check_shapes(path: str | Path, name: HeadName, state: dict[str, torch.Tensor]) -> int:
    """Check keys and shapes against the name; returns the MLP's hidden width (0 for linear)."""
    n_tags, d = len(COLUMNS), name.in_dim
    hidden = 0
    if name.head == "mlp":  # the name does not give the width: read it (published: 256)
        first = state.get("0.weight")
        hidden = int(first.shape[0]) if first is not None and first.ndim == 2 else 256
    expected = ({"weight": (n_tags, d), "bias": (n_tags,)} if name.head == "linear" else
                {"0.weight": (hidden, d), "0.bias": (hidden,), "3.weight": (n_tags, hidden), "3.bias": (n_tags,)})
    if set(state) != set(expected):
        raise DataError(f"{path}: {name.article} head has parameters {sorted(expected)}, this file has {sorted(state)}")
    for key, shape in expected.items():
        found = tuple(state[key].shape)
        if found != shape:
            raise DataError(f"{path}: {key} has shape {found}, but the name says {name.article} head on"
                            f" {name.spec.name} ({name.describe_dim()} = {d} inputs) for {n_tags} tags:"
                            f" expected {shape}")
    for key, tensor in state.items():
        if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
            raise DataError(f"{path}: {key} is not a finite floating-point tensor")
    return hidden


def read_log(path: str | Path) -> dict | None:
    """The training log beside a head (NAME.log.txt): epochs run and the best validation scores.

    The log's own closing "Best epoch" line names the last epoch run (early stopping's end), with the
    best scores; the epoch that reached them is taken from the per-epoch lines."""
    path = Path(path)
    if not path.is_file():
        return None
    text = path.read_text(errors="replace")
    epochs = [(int(e), float(loss), float(acc), float(f1)) for e, loss, acc, f1 in _EPOCH.findall(text)]
    if not epochs:
        return {"file": str(path), "error": "no per-epoch lines (Epoch N train_loss .. val_acc .. macro_f1 ..)"}
    best = max(epochs, key=lambda e: e[2])  # first epoch reaching the top val exact match
    out = {"file": str(path), "epochs_run": len(epochs), "best_epoch": best[0],
           "best_val_exact_match": best[2], "best_val_macro_f1": best[3]}
    stated = _BEST.search(text)
    if stated:
        out["stated_best"] = {"epoch": int(stated.group(1)), "val_exact_match": float(stated.group(2)),
                              "val_macro_f1": float(stated.group(3))}
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_published(path: str | Path) -> Variant:
    """One published head file as a Variant with the published input convention."""
    path = Path(path)
    name = parse_name(path)
    state = read_state_dict(path)
    hidden = check_shapes(path, name, state)
    head = build_head(name.head, name.in_dim, len(COLUMNS), hidden or 256, dropout=0.5)
    head.load_state_dict({k: v.float() for k, v in state.items()})
    head.eval()
    # Weights on the location inputs that never left PyTorch's initial range U(-1/sqrt(fan_in), +) mean
    # the head learnt nothing from location (the published files show this; see the README).
    first = state["weight" if name.head == "linear" else "0.weight"]
    learnt_location = bool(first[:, -2:].abs().max() > 1 / np.sqrt(first.shape[1])) \
        if "location" in name.modalities else None
    info = {"embeddings": "raw", "encoder": ENCODER, "encoders": {n: IDENTITY for n in name.spec.block_names()},
            "published": {"file": str(path.resolve()), "sha256": _sha256(path), "mixup": name.mixup,
                          "learnt_from_location": learnt_location,
                          "log": read_log(path.with_name(name.stem + ".log.txt"))}}
    return Variant(name.stem, name.spec, name.head, head, Standardizer.identity(name.in_dim), COLUMNS,
                   hidden or 256, 0.5, info)


def _check_out(out: RunFolder) -> None:
    if out.run_json.exists():
        try:
            source = json.loads(out.run_json.read_text()).get("source")
        except (OSError, json.JSONDecodeError):
            source = None
        if source != SOURCE:
            raise DataError(f"{out}: already holds a run that `heads import` did not write; import into a new folder")


def import_heads(paths, out_dir, data_dir=None, features_dir=None, config: RunConfig | None = None,
                 accept_missing: bool = False) -> dict:
    """Write a run folder holding the published heads in `paths`.

    Without data the final choice is their mean at the published 0.5 threshold. With `data_dir` and
    `features_dir` each head is scored on the seeded hold-out and the final combination and decoder are
    chosen by cross-fitting exactly as `run` does (`config` gives the hold-out and decoder settings; its
    variants are not trained)."""
    if (data_dir is None) != (features_dir is None):
        raise ValueError("give both --data and --features (to score the heads on the hold-out), or neither")
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no head files given")
    out = RunFolder(out_dir)
    _check_out(out)
    variants = [load_published(p) for p in paths]  # every file is checked before anything is written
    seen: dict[str, Path] = {}
    for v, p in zip(variants, paths):
        if v.name in seen:
            raise DataError(f"{p}: a head named {v.name!r} is already imported from {seen[v.name]}")
        seen[v.name] = p
    names = [v.name for v in variants]
    imported = [{"name": v.name, "file": v.info["published"]["file"], "sha256": v.info["published"]["sha256"]}
                for v in variants]
    published = {v.name: {"published": v.info["published"]} for v in variants}
    run_info = {"source": SOURCE, "imported": imported, "variants": names}
    with removed_if_refused(out.path):  # a new OUT goes again if DATA or FEATURES are refused
        _say_heads(variants)
        if data_dir is None:
            return _write_unscored(out, variants, run_info, published)
        return _score_on_holdout(out, variants, run_info, published, data_dir, features_dir, config or RunConfig(),
                                 accept_missing)


def _say_heads(variants: list[Variant]) -> None:
    for v in variants:
        log = v.info["published"]["log"] or {}
        score = f", published val exact match {log['best_val_exact_match']:.4f}" if "best_val_exact_match" in log else ""
        say(f"{v.name}: {v.head_kind} head, {v.in_dim} inputs ({v.features.name}){score}")
        if v.info["published"]["learnt_from_location"] is False:
            say("  note: its location weights are still within their random initial range: it learnt nothing"
                " from location")


def _write_unscored(out: RunFolder, variants: list[Variant], run_info: dict, published: dict) -> dict:
    """Without data: the heads' mean at the published 0.5 threshold, no hold-out scores."""
    names = [v.name for v in variants]
    for v in variants:
        v.save(out.member(v.name).path)
    label = names[0] if len(names) == 1 else f"mean({len(names)})"
    choice = Choice(f"{label} / 0.5", names, np.full(len(names), 1 / len(names)), ThresholdDecoder(0.5, strict=True))
    report = {"final": {"name": choice.name, "members": names, "decoder": "0.5"}, "variants": published,
              "holdout": None, "note": "imported without --data/--features: no hold-out scores; the final"
              " choice is the heads' mean at the published 0.5 threshold, not chosen on data"}
    out.write_run_info({**run_info, "columns": list(COLUMNS), "final": choice.to_dict()})
    out.write_report(report)
    say(f"imported {len(names)} head(s) into {out}: final {choice.name} (no hold-out scores without --data/--features)")
    return report


def _score_on_holdout(out: RunFolder, variants: list[Variant], run_info: dict, published: dict, data_dir,
                      features_dir, config: RunConfig, accept_missing: bool) -> dict:
    """Each head scored on the seeded hold-out; the final choice made by cross-fitting as `run` does."""
    timings, start = {}, time.perf_counter()
    prep = prepare(data_dir, features_dir, out.path, config.holdout_fraction, config.seed, config.max_tags,
                   accept_missing)
    if tuple(prep.labels.columns) != COLUMNS:
        raise DataError(f"{data_dir}: train.csv's tag columns differ from the 49 the published heads predict")
    check_encoders(variants, prep.train.features, "the published heads")
    timings["load"] = time.perf_counter() - start
    members = Members()
    say(f"warning: {CAVEAT}")
    for v in variants:
        t = time.perf_counter()
        holdout, test, far = member_probs(prep, v)
        at_half = scores(prep.y_holdout, ThresholdDecoder(0.5, strict=True).decode(holdout), prep.labels.columns)
        save_member(out, v, holdout, test, {"holdout_at_0.5": at_half, **published[v.name]}, members, far)
        timings[f"predict {v.name}"] = time.perf_counter() - t
        say(f"  {v.name}: hold-out exact match {at_half['exact_match']:.4f} at 0.5")
    config.variants = []  # nothing was trained: the imported heads are the candidates
    outcome = decide(prep, out, members, config, timings)
    return write_results(out, prep, members, outcome, config, timings, start, run_info, {"warnings": [CAVEAT]})
