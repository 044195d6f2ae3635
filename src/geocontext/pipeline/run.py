"""`geocontext run`: Kaggle files + features -> trained variants -> the honest final choice -> the chosen
heads refitted on all labelled rows -> submission.

OUT/ after a run:
  run.json                  configuration, tag columns, the final choice (members, weights, decoder)
  report.json               hold-out scores per variant and for the final choice, counts, timings
  report.md, per_tag_f1.png the final choice's per-tag figures and decoder
  report.html, holdout.npz  where it fails, with photos (pipeline.html_report; `geocontext report` rebuilds it)
  thumbs/                   the report's cached photo thumbnails
  split.npz                 hold-out ids (the same for every variant of the run)
  optuna.db                 the final decoder's Optuna studies
  variants/<name>/          model.pt + variant.json, holdout_probs.npy, test_probs.npy (pipeline.members);
                            the final choice's members refitted on all labelled rows (pipeline.refit)
  submission.csv.zip
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..console import say
from ..data.readers import read_tag_names
from ..data.submission import write_submission
from ..decoding.decoders import ThresholdDecoder
from ..decoding.metrics import scores
from ..training.config import VariantConfig
from ..training.heads import predict_proba
from ..training.inputs import FeatureSpec, with_all_blocks
from ..training.loop import fit, storage_dtype
from ..training.variant import Variant
from .config import RunConfig
from .diagnostics import save_holdout
from .honest import honest_choice, stop_key, stop_rows
from .html_report import write_html_report
from .members import (
    Members,
    add_members,
    check_member_columns,
    load_members,
    reuse,
    save_member,
)
from .outputs import writable_folder
from .prepare import Prepared, prepare
from .refit import refit_members
from .tensors import spec_inputs
from .report import write_report


def train_variants(prep: Prepared, config: RunConfig, out: Path, timings: dict) -> Members:
    """Train each configured variant (or reuse it when a finished one with the same inputs is in `out`);
    variants that share a feature spec share one fused, standardised input."""
    members = Members()
    stop = stop_rows(prep.labels.ids, prep.holdout, config.seed)
    groups: dict[FeatureSpec, list[VariantConfig]] = {}
    for vc in config.variants:
        vc = dataclasses.replace(vc, features=with_all_blocks(vc.features, prep.train.features))  # several folders: every block
        groups.setdefault(vc.features, []).append(vc)
    for spec, group in groups.items():
        todo = [vc for vc in group if not reuse(out / "variants" / vc.name, vc, prep, members)]
        if todo:
            _train_group(prep, spec, todo, out, timings, members, stop, config.seed)
    return members


def _train_group(prep: Prepared, spec: FeatureSpec, todo: list[VariantConfig], out: Path, timings: dict,
                 members: Members, stop: np.ndarray, seed: int) -> None:
    """Train the variants sharing `spec` on the fit rows, each stopped on the `stop` rows."""
    t = time.perf_counter()
    dtypes = sorted({storage_dtype(vc.train.precision) for vc in todo}, key=str)
    selections = [(rows, dt) for dt in dtypes for rows in (prep.fit_rows, stop)] + [(prep.holdout, torch.float32)]
    inputs = spec_inputs(prep, spec, prep.fit_rows, selections, seed)
    built, x_test = inputs.train, inputs.test
    by_dtype = {dt: (built[2 * i], built[2 * i + 1]) for i, dt in enumerate(dtypes)}
    x_holdout = built[-1]
    timings[f"features {spec.name}"] = time.perf_counter() - t
    y_fit, y_holdout = torch.from_numpy(prep.labels.y[prep.fit_rows]), prep.y_holdout
    for vc in todo:
        x_fit, x_val = by_dtype[storage_dtype(vc.train.precision)]
        say(f"training {vc.name}: {len(x_fit)} rows x {x_fit.shape[1]} inputs ({x_fit.dtype})")
        result = fit(x_fit, y_fit, x_val, torch.from_numpy(prep.labels.y[stop]), vc.train, desc=vc.name)
        variant = Variant(vc.name, spec, vc.train.head, result.head, inputs.scaler, prep.labels.columns,
                          vc.train.hidden, vc.train.dropout,
                          info={"train": vc.train.to_dict(), "best_epoch": result.best_epoch,
                                "history": result.history, "fingerprint": prep.reuse_key,
                                "holdout_split": prep.split_key}, priors=inputs.priors)
        holdout = predict_proba(variant.head, x_holdout)
        at_half = scores(y_holdout, ThresholdDecoder(0.5).decode(holdout), prep.labels.columns)
        report = {"holdout_at_0.5": at_half, "best_epoch": result.best_epoch, "epochs_run": len(result.history),
                  "seconds": round(result.seconds, 2), "seconds_to_best": round(result.seconds_to_best, 2)}
        save_member(out, variant, holdout, predict_proba(variant.head, x_test), report, members)
        say(f"  {vc.name}: hold-out exact match {at_half['exact_match']:.4f} at 0.5 (best epoch"
            f" {result.best_epoch}, {result.seconds:.1f} s)")
        timings[f"train {vc.name}"] = result.seconds


def finish(prep: Prepared, out: Path, members: Members, config: RunConfig, timings: dict, start: float) -> dict:
    """Choose the final combination and decoder honestly (pipeline.honest), write submission, run.json
    and report.json."""
    t = time.perf_counter()
    select = ~stop_rows(prep.labels.ids, prep.holdout, config.seed)[prep.holdout]  # over hold-out rows
    y_select = prep.y_holdout[select]
    choice, candidates, predicted, estimate = honest_choice(
        {m: p[select] for m, p in members.holdout_probs.items()}, y_select, prep.labels.ids[prep.holdout][select],
        prep.labels.y[prep.fit_rows], config.decode, out)
    timings["decode"] = time.perf_counter() - t
    if config.refit:
        t = time.perf_counter()
        refit_members(prep, config.max_tags, config.seed, out, members, choice.members, timings)
        timings["refit"] = time.perf_counter() - t
    test_probs = [members.test_probs[m] for m in choice.members]
    final_tags = choice.decode(test_probs)
    submission = write_submission(out / "submission.csv.zip", prep.test_ids, final_tags, prep.labels.columns,
                                  prep.test_ids, probs=choice.combine(test_probs))
    timings["total"] = time.perf_counter() - start
    run_info = {"config": config.to_dict(), "columns": list(prep.labels.columns), "final": choice.to_dict(),
                "data": str(prep.data_dir), "features": _folders(prep.features_dir)}
    (out / "run.json").write_text(json.dumps(run_info, indent=2))
    report = {
        "final": {"name": choice.name, **candidates[choice.name], **estimate,
                  "selection_exact_match": candidates[choice.name]["exact_match"],
                  "estimate": "nested: each selection row scored by a choice made without it (pipeline.honest)"},
        "candidates": candidates,
        "variants": members.reports,
        "rows": {"train_used": int(prep.fit_rows.sum()), "dropped_many_tags": int((~prep.holdout & ~prep.fit_rows).sum()),
                 "holdout": int(prep.holdout.sum()), "holdout_choosing_epochs": int((~select).sum()),
                 "test": len(prep.test_ids)},
        "inputs": {"train": prep.train.summary, "test": prep.test.summary},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "submission": str(submission),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    write_report(out, report, choice, y_select, predicted, list(prep.labels.columns),
                 read_tag_names(prep.data_dir))
    save_holdout(out, prep.labels.ids[prep.holdout][select], y_select, predicted, choice.name,
                 rows=np.flatnonzero(select))
    write_html_report(out, prep.data_dir)
    say(f"final: {choice.name}, hold-out exact match {estimate['exact_match']:.4f} (nested estimate; "
        f"{candidates[choice.name]['exact_match']:.4f} within the selection)")
    say(f"submission: {submission}")
    return report


def _folders(features_dir) -> str | list[str]:
    return str(features_dir) if isinstance(features_dir, Path) else [str(f) for f in features_dir]


def run(data_dir, features_dir, out_dir, config: RunConfig | None = None, with_runs=(),
        accept_missing: bool = False) -> dict:
    """Train the configured variants (plus members of `with_runs`), choose how to combine and decode
    them, write the submission."""
    config = config or RunConfig()
    out = writable_folder(out_dir)
    timings, start = {}, time.perf_counter()
    extra = load_members(with_runs)  # checked before anything is trained
    prep = prepare(data_dir, features_dir, out, config.holdout_fraction, config.seed, config.max_tags, accept_missing)
    prep = dataclasses.replace(prep, reuse_key=prep.reuse_key + stop_key(
        prep.labels.ids, stop_rows(prep.labels.ids, prep.holdout, config.seed)))
    check_member_columns(extra, prep.labels.columns)
    timings["load"] = time.perf_counter() - start
    members = train_variants(prep, config, out, timings)
    add_members(prep, extra, out, members)
    return finish(prep, out, members, config, timings, start)
