"""Checkpoints in the published schema, so the published inference code reads ours and we read theirs.

A checkpoint is a dict saved with torch.save and loadable with weights_only=True:
  model_state_dict   dist_emb.weight (len(dist_map) x 16), fc.0.*, fc.3.*
  classes            the class names, in output order
  dist_map           stored distance string -> index (the published loader sizes the table by its length)
  clip_dim, dist_embed_dim, epoch, optimizer_state_dict, loss
  geocontext         our additions, ignored by the published loader: tuned per-class thresholds,
                     the training configuration, the format version
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import DataError
from ..writing import atomic_file
from .classifier import TypeClassifier
from .distance import DIST_MAP
from .labels import CLASSES

REQUIRED = ("model_state_dict", "classes", "dist_map", "clip_dim", "dist_embed_dim", "epoch")
FORMAT = 1


def save_checkpoint(path: str | Path, model: TypeClassifier, classes=CLASSES, dist_map=None, epoch: int | None = None,
                    optimizer_state: dict | None = None, loss: float | None = None, thresholds=None,
                    config: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dist_map = dict(DIST_MAP if dist_map is None else dist_map)
    if len(dist_map) != model.dist_emb.num_embeddings:
        raise ValueError(f"the published loader makes {len(dist_map)} distance rows (one per dist_map key);"
                         f" the model has {model.dist_emb.num_embeddings}")
    extra = {"format": FORMAT, "thresholds": None if thresholds is None else [float(t) for t in thresholds],
             "config": config or {}}
    state = {"model_state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "classes": list(classes), "dist_map": dist_map, "clip_dim": model.clip_dim,
             "dist_embed_dim": model.dist_emb.embedding_dim, "epoch": epoch,
             "optimizer_state_dict": optimizer_state, "loss": None if loss is None else float(loss), "geocontext": extra}
    return atomic_file(path, lambda h: torch.save(state, h), "the checkpoint")


def load_checkpoint(path: str | Path) -> tuple[TypeClassifier, dict]:
    """(model in eval mode, the checkpoint dict) for ours or a published one; DataError naming the file."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        raise DataError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED):
        found = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise DataError(f"{path}: not a type-classifier checkpoint (expected keys {list(REQUIRED)}, found {found})")
    state, classes, dist_map = ckpt["model_state_dict"], list(ckpt["classes"]), dict(ckpt["dist_map"])
    unexpected, missing = [c for c in classes if c not in CLASSES], [c for c in CLASSES if c not in classes]
    if unexpected or missing or len(classes) != len(CLASSES):  # an unknown class would be posted as a type tag
        raise DataError(f"{path}: classes {classes} are not Geograph's {len(CLASSES)} type classes {list(CLASSES)}"
                        f" (unexpected {unexpected}, missing {missing}); use a checkpoint trained on them")
    model = TypeClassifier(len(classes), len(dist_map), int(ckpt["clip_dim"]), int(ckpt["dist_embed_dim"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DataError(f"{path}: weights do not fit {len(classes)} classes, {len(dist_map)} distance rows,"
                        f" clip_dim {ckpt['clip_dim']} ({exc})") from exc
    if max(dist_map.values()) >= len(dist_map):
        raise DataError(f"{path}: dist_map has index {max(dist_map.values())} but the table has {len(dist_map)} rows")
    model.eval()
    return model, ckpt


def thresholds_of(ckpt: dict):
    """The per-class thresholds tuned when the checkpoint was trained, or None (published checkpoints)."""
    return (ckpt.get("geocontext") or {}).get("thresholds")
