"""`geocontext types train` and `types evaluate`: a types dataset -> checkpoint, thresholds, scores, plots.

RUN/ after training:
  model.pth        the checkpoint, published schema (+ tuned thresholds and the configuration)
  report.json      read and label reports, the configuration, training history, thresholds, test scores
  confusion.png    confusion matrices on the test rows
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..console import say
from ..decoding.decoders import ThresholdDecoder
from ..decoding.thresholds import tune_thresholds
from ..errors import DataError
from ..writing import atomic_file
from .checkpoint import load_checkpoint, save_checkpoint, thresholds_of
from .classifier import TypeClassifier
from .classifier import type_probabilities as predict_proba
from .distance import DIST_MAP, UNKNOWN_INDEX, distance_index
from .labels import CLASSES, label_matrix, sample_weights
from .reader import read_types
from .scoring import classification_report, format_report, plot_confusion
from .trainer import Tensors, TypesTrainConfig, fit

SPLITS = ("tra", "val", "tes")


@dataclass
class Labelled:
    """The usable photos of a dataset with their targets, weights and distance indices."""

    ids: np.ndarray
    x: np.ndarray
    dist: np.ndarray
    y: np.ndarray
    w: np.ndarray
    split: np.ndarray
    summary: dict

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, mask) -> "Labelled":
        return Labelled(self.ids[mask], self.x[mask], self.dist[mask], self.y[mask], self.w[mask], self.split[mask],
                        self.summary)


def load_labelled(path, config: TypesTrainConfig | None = None, classes=CLASSES, dist_map=None,
                  dim: int = 512) -> Labelled:
    """Read, label and weight a types dataset; photos left with no class are counted and set aside."""
    config = config or TypesTrainConfig()
    rows, read = read_types(path, dim=dim)
    say(read.summary())
    if not (rows.types != "").any():
        raise DataError(f"{path}: none of its {len(rows)} photos has `types` (an unlabelled file, like the published"
                        " unknown set?): `geocontext types predict` tags it; train and evaluate need labelled photos")
    y, labels = label_matrix(rows.types, rows.distance, tuple(classes))
    say(labels.summary())
    w = sample_weights(rows.types, rows.distance, rows.weight, config.weights)
    keep = y.any(axis=1)
    splits = {s: int(((rows.split == s) & keep).sum()) for s in np.unique(rows.split.astype(str))}
    summary = {"read": read.to_dict(), "labels": {"rows": labels.rows, "no_class": labels.no_class,
                                                   "unknown_names": labels.unknown_names}, "splits": splits}
    data = Labelled(rows.ids, rows.embeddings, distance_index(rows.distance, dist_map), y, w,
                    rows.split.astype(str), summary)
    return data.take(keep)


def score(model: TypeClassifier, data: Labelled, decoder: ThresholdDecoder, classes) -> tuple[dict, np.ndarray]:
    """Scores as given, and with every distance withheld (what the archive's photos without one get)."""
    probs = predict_proba(model, data.x, data.dist)
    pred = decoder.decode(probs)
    report = classification_report(data.y, pred, classes)
    blind = decoder.decode(predict_proba(model, data.x, np.full(len(data.x), UNKNOWN_INDEX)))
    report["distance_withheld"] = classification_report(data.y, blind, classes)
    return report, pred


def train_run(data_path, out_dir, config: TypesTrainConfig | None = None) -> dict:
    """Train on `tra`, stop early on `val`, tune thresholds on `val`, report on `tes`; write RUN/."""
    config = config or TypesTrainConfig()
    out = Path(out_dir)
    start = time.perf_counter()
    data = load_labelled(data_path, config)
    out.mkdir(parents=True, exist_ok=True)  # after the read: bad data leaves no empty run folder behind
    parts = {s: data.take(data.split == s) for s in SPLITS}
    for s in ("tra", "val"):
        if not len(parts[s]):
            raise DataError(f"{data_path}: no labelled photo with split {s!r} (found {data.summary['splits']});"
                            " training needs 'tra' and 'val' rows")
    train = parts["tra"]
    dist_train = config.distance_dropout.apply(train.ids, train.dist, train.y[:, CLASSES.index("Cross Far")])
    say(f"distance dropout: {int((dist_train != train.dist).sum())} of {len(train.ids)} training distances changed")
    result = fit(Tensors.of(train.x, dist_train, train.y, train.w),
                 Tensors.of(parts["val"].x, parts["val"].dist, parts["val"].y, parts["val"].w), config,
                 n_distances=len(DIST_MAP))
    say(f"trained {len(result.history)} epochs in {result.seconds:.1f} s; best epoch {result.best_epoch}"
         f" (validation loss {result.best_loss:.4f})")

    decoder = ThresholdDecoder(0.5)
    if config.tune_trials > 0:
        val_probs = predict_proba(result.model, parts["val"].x, parts["val"].dist)
        decoder = tune_thresholds(val_probs, parts["val"].y, per_tag=config.per_class_thresholds,
                                  n_trials=config.tune_trials, seed=config.seed, study_name="types-thresholds")
        say("thresholds (tuned on val): " + ", ".join(
            f"{c} {t:.2f}" for c, t in zip(CLASSES, np.broadcast_to(decoder.thresholds, (len(CLASSES),)))))
    thresholds = np.broadcast_to(decoder.thresholds, (len(CLASSES),)).tolist()

    report = {"data": str(data_path), "config": config.to_dict(), **data.summary, "best_epoch": result.best_epoch,
              "val_loss": result.best_loss, "history": result.history, "train_seconds": result.seconds,
              "thresholds": dict(zip(CLASSES, thresholds))}
    report["val"], _ = score(result.model, parts["val"], ThresholdDecoder(thresholds), CLASSES)  # tuned here: optimistic
    if len(parts["tes"]):
        report["tes"], pred = score(result.model, parts["tes"], ThresholdDecoder(thresholds), CLASSES)
        half = classification_report(parts["tes"].y, ThresholdDecoder(0.5).decode(
            predict_proba(result.model, parts["tes"].x, parts["tes"].dist)), CLASSES)
        report["tes"]["at_0.5"] = {"exact_match": half["exact_match"], "macro_f1": half["macro_f1"]}
        plot_confusion(parts["tes"].y, pred, CLASSES, out / "confusion.png", f"test rows ({len(pred)} photos)")
        say(format_report(report["tes"], f"test rows ({data_path}):"))
        say(f"with every distance withheld: exact match {report['tes']['distance_withheld']['exact_match']:.4f},"
             f" macro F1 {report['tes']['distance_withheld']['macro_f1']:.4f}; with every threshold 0.5:"
             f" exact match {half['exact_match']:.4f}, macro F1 {half['macro_f1']:.4f}")
    else:
        say(f"{data_path}: no 'tes' rows; nothing to report on held-out photos")
    save_checkpoint(out / "model.pth", result.model, CLASSES, DIST_MAP, result.best_epoch, result.optimizer_state,
                    result.best_loss, thresholds, config.to_dict())
    report["seconds"] = time.perf_counter() - start
    atomic_file(out / "report.json", lambda h: h.write(json.dumps(report, indent=2).encode()))
    say(f"checkpoint: {out / 'model.pth'}; report: {out / 'report.json'}")
    return report


def evaluate_file(model_path, data_path, split: str = "tes", out_dir=None, threshold: float | None = None) -> dict:
    """Score a checkpoint (ours or a published one) on the labelled photos of one split ('all': every row).

    threshold=None uses the checkpoint's tuned per-class thresholds, or 0.5 when it has none."""
    model, ckpt = load_checkpoint(model_path)
    classes = tuple(ckpt["classes"])
    data = load_labelled(data_path, classes=classes, dist_map=dict(ckpt["dist_map"]), dim=model.clip_dim)
    if split != "all":
        data = data.take(data.split == split)
        if not len(data):
            raise DataError(f"{data_path}: no labelled photo with split {split!r}"
                            f" (found {data.summary['splits']}); use --split all for every row")
    tuned = thresholds_of(ckpt)
    thresholds = threshold if threshold is not None else tuned if tuned is not None else 0.5
    report, pred = score(model, data, ThresholdDecoder(thresholds), classes)
    report.update({"model": str(model_path), "data": str(data_path), "split": split,
                   "thresholds": np.broadcast_to(np.asarray(thresholds, dtype=float), (len(classes),)).tolist()})
    stem = Path(Path(data_path).name.removesuffix(".gz")).stem  # types.jsonl.gz -> types
    out = Path(out_dir) if out_dir is not None else Path(model_path).parent / f"evaluation-{stem}-{split}"
    report["confusion_png"] = str(plot_confusion(data.y, pred, classes, out / "confusion.png",
                                                 f"{Path(model_path).name} on {split} ({len(pred)} photos)"))
    atomic_file(out / "report.json", lambda h: h.write(json.dumps(report, indent=2).encode()))
    say(format_report(report, f"{model_path} on {data_path} ({split}):"))
    return report
