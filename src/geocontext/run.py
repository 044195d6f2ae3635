"""`geocontext run` and `geocontext predict`: Kaggle files + features -> trained variants -> submission.

OUT/ after a run:
  run.json                  configuration, tag columns, the final choice (members, weights, decoder)
  report.json               hold-out scores per variant and for the final choice, counts, timings
  split.npz                 hold-out ids (the same for every variant of the run)
  variants/<name>/          model.pt + variant.json, holdout_probs.npy, test_probs.npy
  submission.csv.zip
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import data, grid
from .config import RunConfig
from .errors import DataError
from .features import FeatureSet, FeatureSpec, align, fuse, load_features
from .decode import ThresholdDecoder
from .heads import Standardizer, predict_proba
from .metrics import scores
from .model import Variant
from .select import Choice, choose
from .split import holdout_mask
from .submission import write_submission
from .train import fit, storage_dtype


@dataclass
class Inputs:
    """One split's photos: their ids, where their features sit, and their normalised locations."""

    ids: np.ndarray
    features: FeatureSet
    rows: np.ndarray
    location: np.ndarray  # (N, 2) normalised lat/lon, NaN where unknown
    summary: dict


def load_inputs(data_dir, features_dir, split: str, ids: np.ndarray, source: str) -> Inputs:
    features = load_features(features_dir, split)
    rows = align(features, ids, source)
    meta = data.read_metadata(data_dir, ids)
    where = grid.locate(meta.grid_reference)
    missing = features.missing_images[rows]
    summary = {"rows": len(ids), "missing_images": int(missing.sum()), "locations": where.summary(),
               "metadata": {"malformed_lines": len(meta.malformed_lines),
                            "malformed_examples": list(meta.malformed_lines[:10]),
                            "bad_ids": meta.bad_ids, "not_found": meta.not_found}}
    return Inputs(ids, features, rows, grid.normalise(where.latlon), summary)


def _say(message: str) -> None:
    print(message, flush=True)


def run(data_dir, features_dir, out_dir, config: RunConfig | None = None) -> dict:
    """Train the configured variants, choose how to combine and decode them, write the submission."""
    config = config or RunConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings, start = {}, time.perf_counter()

    labels = data.read_train_labels(data_dir)
    test_ids = data.read_test_ids(data_dir)
    train = load_inputs(data_dir, features_dir, "train", labels.ids, "train.csv")
    test = load_inputs(data_dir, features_dir, "test", test_ids, "test.csv")
    if train.features.image.shape[1] != test.features.image.shape[1]:
        raise DataError(f"{features_dir}: train features have dim {train.features.image.shape[1]}, test features"
                        f" {test.features.image.shape[1]}; both splits must come from one encoder")
    for name, part in (("train", train), ("test", test)):
        s = part.summary
        _say(f"{name}: {s['rows']} photos, {s['missing_images']} missing images, "
             f"{s['locations']['rows'] - s['locations']['known']} unknown locations "
             f"({s['locations']['empty']} empty, {s['locations']['malformed']} malformed grid references), "
             f"{s['metadata']['malformed_lines']} malformed metadata lines")

    holdout = holdout_mask(labels.ids, config.holdout_fraction, config.seed)
    many = labels.y.sum(axis=1) > config.max_tags
    fit_rows = ~holdout & ~many
    np.savez(out / "split.npz", holdout_ids=labels.ids[holdout], seed=config.seed, fraction=config.holdout_fraction)
    y_fit = torch.from_numpy(labels.y[fit_rows])
    y_holdout = labels.y[holdout]
    timings["load"] = time.perf_counter() - start

    holdout_probs, test_probs, variant_reports = {}, {}, {}
    for spec, members in _group_by_features(config).items():
        t = time.perf_counter()
        x_train = fuse(spec, train.features, train.rows, train.location)
        scaler = Standardizer.fit(x_train, np.flatnonzero(fit_rows))
        x_train = scaler.transform_(x_train)
        dtypes = {storage_dtype(v.train.precision) for v in members}
        tensors = {dt: (torch.from_numpy(x_train[fit_rows]).to(dt), torch.from_numpy(x_train[holdout]).to(dt))
                   for dt in dtypes}
        x_holdout32 = x_train[holdout]
        del x_train
        x_test = scaler.transform_(fuse(spec, test.features, test.rows, test.location))
        timings[f"features {spec.name}"] = time.perf_counter() - t
        for vc in members:
            x_fit, x_val = tensors[storage_dtype(vc.train.precision)]
            _say(f"training {vc.name}: {len(x_fit)} rows x {x_fit.shape[1]} inputs ({x_fit.dtype})")
            result = fit(x_fit, y_fit, x_val, torch.from_numpy(y_holdout), vc.train, desc=vc.name)
            variant = Variant(vc.name, spec, vc.train.head, result.head, scaler, labels.columns,
                              vc.train.hidden, vc.train.dropout,
                              info={"train": vc.train.to_dict(), "best_epoch": result.best_epoch,
                                    "history": result.history})
            folder = variant.save(out / "variants" / vc.name)
            holdout_probs[vc.name] = predict_proba(variant.head, x_holdout32)
            test_probs[vc.name] = predict_proba(variant.head, x_test)
            np.save(folder / "holdout_probs.npy", holdout_probs[vc.name])
            np.save(folder / "test_probs.npy", test_probs[vc.name])
            at_half = scores(y_holdout, ThresholdDecoder(0.5).decode(holdout_probs[vc.name]), labels.columns)
            variant_reports[vc.name] = {"holdout_at_0.5": at_half, "best_epoch": result.best_epoch,
                                        "epochs_run": len(result.history), "seconds": round(result.seconds, 2),
                                        "seconds_to_best": round(result.seconds_to_best, 2)}
            _say(f"  {vc.name}: hold-out exact match {at_half['exact_match']:.4f} (epoch {result.best_epoch},"
                 f" {result.seconds:.1f} s)")
            timings[f"train {vc.name}"] = result.seconds
        del tensors, x_holdout32, x_test

    t = time.perf_counter()
    choice, candidates = choose(holdout_probs, y_holdout, labels.ids[holdout], labels.y[fit_rows], config.decode, out)
    final_tags = choice.decode([test_probs[m] for m in choice.members])
    submission = write_submission(out / "submission.csv.zip", test_ids, final_tags, labels.columns, test_ids)
    timings["decode"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start

    run_info = {"config": config.to_dict(), "columns": list(labels.columns), "final": choice.to_dict(),
                "data": str(data_dir), "features": str(features_dir)}
    (out / "run.json").write_text(json.dumps(run_info, indent=2))
    report = {
        "final": {"name": choice.name, **candidates[choice.name]},
        "candidates": candidates,
        "variants": variant_reports,
        "rows": {"train_used": int(fit_rows.sum()), "dropped_many_tags": int((~holdout & many).sum()),
                 "holdout": int(holdout.sum()), "test": len(test_ids)},
        "inputs": {"train": train.summary, "test": test.summary},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "submission": str(submission),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    _say(f"final: {choice.name}, hold-out exact match {candidates[choice.name]['exact_match']:.4f}")
    _say(f"submission: {submission}")
    return report


def _group_by_features(config: RunConfig) -> dict[FeatureSpec, list]:
    """Variants that share a feature spec share one fused matrix."""
    groups: dict[FeatureSpec, list] = {}
    for vc in config.variants:
        groups.setdefault(vc.features, []).append(vc)
    return groups


def load_run(run_dir) -> tuple[dict, dict[str, Variant], Choice]:
    run_dir = Path(run_dir)
    path = run_dir / "run.json"
    if not path.exists():
        raise DataError(f"{run_dir}: no run.json; is this the OUT folder of a finished `geocontext run`?")
    info = json.loads(path.read_text())
    choice = Choice.from_dict(info["final"], len(info["columns"]))
    variants = {name: Variant.load(run_dir / "variants" / name) for name in choice.members}
    return info, variants, choice


def predict(run_dir, data_dir, features_dir, out_file, probs_file=None, split: str = "test") -> dict:
    """Tag the photos of a FEATURES split with a finished run (no retraining)."""
    info, variants, choice = load_run(run_dir)
    features = load_features(features_dir, split)
    ids = features.ids
    inputs = load_inputs(data_dir, features_dir, split, ids, f"{features.path / 'ids.npy'}")
    probs = [variants[m].predict_proba(inputs.features, inputs.rows, inputs.location) for m in choice.members]
    tags = choice.decode(probs)
    if probs_file is not None:
        np.save(probs_file, choice.combine(probs))
    wanted = data.read_test_ids(data_dir) if data.find(data_dir, "test.csv", "test.csv.zip") else ids
    pos = align(features, wanted, "test.csv")
    columns = tuple(info["columns"])
    path = write_submission(out_file, wanted, tags[pos], columns, wanted)
    _say(f"submission: {path} ({len(wanted)} photos, decoded with {choice.name})")
    return {"submission": str(path), "rows": len(wanted), **inputs.summary}
