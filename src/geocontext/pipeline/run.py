"""`geocontext run`: Kaggle files + features -> trained variants -> the honest final choice -> submission.

OUT/ after a run:
  run.json                  configuration, tag columns, the final choice (members, weights, decoder)
  report.json               hold-out scores per variant and for the final choice, counts, timings
  report.md, per_tag_f1.png the final choice's per-tag figures and decoder
  split.npz                 hold-out ids (the same for every variant of the run)
  optuna.db                 the final decoder's Optuna studies
  variants/<name>/          model.pt + variant.json, holdout_probs.npy, test_probs.npy (pipeline.members)
  submission.csv.zip
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..console import say
from ..data.readers import read_tag_names
from ..data.submission import write_submission
from ..decoding.decoders import ThresholdDecoder
from ..decoding.metrics import scores
from ..decoding.select import choose
from ..training.config import VariantConfig
from ..training.heads import predict_proba
from ..training.inputs import (
    FeatureSpec,
    Standardizer,
    fuse_chunks,
    standardised_tensors,
    with_all_blocks,
)
from ..training.loop import fit, storage_dtype
from ..training.variant import Variant
from .config import RunConfig
from .members import Members, add_members, reuse, save_member
from .prepare import Prepared, prepare
from .report import write_report


def train_variants(prep: Prepared, config: RunConfig, out: Path, timings: dict) -> Members:
    """Train each configured variant (or reuse it when a finished one with the same inputs is in `out`);
    variants that share a feature spec share one fused, standardised input."""
    members = Members()
    groups: dict[FeatureSpec, list[VariantConfig]] = {}
    for vc in config.variants:
        vc = replace(vc, features=with_all_blocks(vc.features, prep.train.features))  # several folders: every block
        groups.setdefault(vc.features, []).append(vc)
    for spec, group in groups.items():
        todo = [vc for vc in group if not reuse(out / "variants" / vc.name, vc, prep, members)]
        if todo:
            _train_group(prep, spec, todo, out, timings, members)
    return members


def _group_inputs(prep: Prepared, spec: FeatureSpec, dtypes: list[torch.dtype]):
    """The scaler fitted on the training rows, the fit and hold-out tensors in each dtype, and float32
    hold-out and test tensors (probabilities always come from float32 inputs, as `predict` computes them,
    so a rerun of predict gives the very same tags)."""
    train, test = prep.train, prep.test

    def train_chunks():
        return fuse_chunks(spec, train.features, train.rows, train.location, train.irish)

    dim = spec.width(train.features)
    scaler = Standardizer.fit_blocks(block[prep.fit_rows[s:s + len(block)]] for s, block in train_chunks())
    selections = [(rows, dt) for dt in dtypes for rows in (prep.fit_rows, prep.holdout)]
    built = standardised_tensors(train_chunks(), scaler, selections + [(prep.holdout, torch.float32)], dim)
    by_dtype = {dt: (built[2 * i], built[2 * i + 1]) for i, dt in enumerate(dtypes)}
    (x_test,) = standardised_tensors(fuse_chunks(spec, test.features, test.rows, test.location, test.irish), scaler,
                                     [(np.ones(len(test.ids), dtype=bool), torch.float32)], dim)
    return scaler, by_dtype, built[-1], x_test


def _train_group(prep: Prepared, spec: FeatureSpec, todo: list[VariantConfig], out: Path, timings: dict,
                 members: Members) -> None:
    t = time.perf_counter()
    dtypes = sorted({storage_dtype(vc.train.precision) for vc in todo}, key=str)
    scaler, by_dtype, x_holdout, x_test = _group_inputs(prep, spec, dtypes)
    timings[f"features {spec.name}"] = time.perf_counter() - t
    y_fit, y_holdout = torch.from_numpy(prep.labels.y[prep.fit_rows]), prep.y_holdout
    for vc in todo:
        x_fit, x_val = by_dtype[storage_dtype(vc.train.precision)]
        say(f"training {vc.name}: {len(x_fit)} rows x {x_fit.shape[1]} inputs ({x_fit.dtype})")
        result = fit(x_fit, y_fit, x_val, torch.from_numpy(y_holdout), vc.train, desc=vc.name)
        variant = Variant(vc.name, spec, vc.train.head, result.head, scaler, prep.labels.columns,
                          vc.train.hidden, vc.train.dropout,
                          info={"train": vc.train.to_dict(), "best_epoch": result.best_epoch,
                                "history": result.history, "fingerprint": prep.reuse_key,
                                "holdout_split": prep.split_key})
        holdout = predict_proba(variant.head, x_holdout)
        at_half = scores(y_holdout, ThresholdDecoder(0.5).decode(holdout), prep.labels.columns)
        report = {"holdout_at_0.5": at_half, "best_epoch": result.best_epoch, "epochs_run": len(result.history),
                  "seconds": round(result.seconds, 2), "seconds_to_best": round(result.seconds_to_best, 2)}
        save_member(out, variant, holdout, predict_proba(variant.head, x_test), report, members)
        say(f"  {vc.name}: hold-out exact match {at_half['exact_match']:.4f} at 0.5 (best epoch"
            f" {result.best_epoch}, {result.seconds:.1f} s)")
        timings[f"train {vc.name}"] = result.seconds


def finish(prep: Prepared, out: Path, members: Members, config: RunConfig, timings: dict, start: float) -> dict:
    """Choose the final combination and decoder honestly, write submission, run.json and report.json."""
    t = time.perf_counter()
    choice, candidates, predicted = choose(members.holdout_probs, prep.y_holdout, prep.labels.ids[prep.holdout],
                                           prep.labels.y[prep.fit_rows], config.decode, out)
    final_tags = choice.decode([members.test_probs[m] for m in choice.members])
    submission = write_submission(out / "submission.csv.zip", prep.test_ids, final_tags, prep.labels.columns,
                                  prep.test_ids)
    timings["decode"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start
    run_info = {"config": config.to_dict(), "columns": list(prep.labels.columns), "final": choice.to_dict(),
                "data": str(prep.data_dir), "features": _folders(prep.features_dir)}
    (out / "run.json").write_text(json.dumps(run_info, indent=2))
    report = {
        "final": {"name": choice.name, **candidates[choice.name]},
        "candidates": candidates,
        "variants": members.reports,
        "rows": {"train_used": int(prep.fit_rows.sum()), "dropped_many_tags": int((~prep.holdout & ~prep.fit_rows).sum()),
                 "holdout": int(prep.holdout.sum()), "test": len(prep.test_ids)},
        "inputs": {"train": prep.train.summary, "test": prep.test.summary},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "submission": str(submission),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    write_report(out, report, choice, prep.y_holdout, predicted, list(prep.labels.columns),
                 read_tag_names(prep.data_dir))
    say(f"final: {choice.name}, hold-out exact match {candidates[choice.name]['exact_match']:.4f} (cross-fitted)")
    say(f"submission: {submission}")
    return report


def _folders(features_dir) -> str | list[str]:
    return str(features_dir) if isinstance(features_dir, Path) else [str(f) for f in features_dir]


def run(data_dir, features_dir, out_dir, config: RunConfig | None = None, with_runs=()) -> dict:
    """Train the configured variants (plus members of `with_runs`), choose how to combine and decode
    them, write the submission."""
    config = config or RunConfig()
    out = Path(out_dir)
    timings, start = {}, time.perf_counter()
    prep = prepare(data_dir, features_dir, out, config.holdout_fraction, config.seed, config.max_tags)
    timings["load"] = time.perf_counter() - start
    members = train_variants(prep, config, out, timings)
    add_members(prep, with_runs, out, members)
    return finish(prep, out, members, config, timings, start)
