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
from .features import FeatureSet, FeatureSpec, align, fuse_chunks, load_features
from .decode import ThresholdDecoder
from .heads import Standardizer, predict_proba
from .metrics import scores
from .model import Variant
from .report import write_report
from .select import Choice, choose
from .split import holdout_mask
from .tune import fingerprint
from .submission import write_submission
from .train import fit, storage_dtype


@dataclass
class Inputs:
    """One split's photos: their ids, where their features sit, and their normalised locations."""

    ids: np.ndarray
    features: FeatureSet
    rows: np.ndarray
    location: np.ndarray  # (N, 2) normalised lat/lon, NaN where unknown
    irish: np.ndarray  # (N,) bool: square on the Irish Grid (some feature specs leave these unknown)
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
    return Inputs(ids, features, rows, grid.normalise(where.latlon), where.irish, summary)


def _say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Prepared:
    """Everything a run decides before training: inputs, the hold-out split, the rows to fit on."""

    data_dir: Path
    features_dir: Path
    labels: data.Labels
    test_ids: np.ndarray
    train: Inputs
    test: Inputs
    holdout: np.ndarray  # bool over labels.ids
    fit_rows: np.ndarray  # bool: not hold-out, not too many tags
    fingerprint: str  # of labels, split and features: a saved variant is reused only when it matches

    @property
    def split_key(self) -> str:
        """Names the hold-out split; a variant trained with another split may have seen hold-out photos."""
        return fingerprint(np.sort(self.labels.ids[self.holdout]))

    @property
    def y_holdout(self) -> np.ndarray:
        return self.labels.y[self.holdout]


def prepare(data_dir, features_dir, out: Path, holdout_fraction: float = 0.2, seed: int = 0,
            max_tags: int = 5) -> Prepared:
    """Read and check the inputs, locate the photos, and fix (and save) the hold-out split."""
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
    holdout = holdout_mask(labels.ids, holdout_fraction, seed)
    fit_rows = ~holdout & (labels.y.sum(axis=1) <= max_tags)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "split.npz", holdout_ids=labels.ids[holdout], seed=seed, fraction=holdout_fraction)
    key = fingerprint(labels.ids, labels.y, holdout, fit_rows, test_ids,
                      np.array([len(train.features), len(test.features), train.features.image.shape[1]]))
    key += str(train.features.meta.get("encoder")) + str(test.features.meta.get("encoder"))
    return Prepared(Path(data_dir), Path(features_dir), labels, test_ids, train, test, holdout, fit_rows, key)


def standardised(chunks, scaler: Standardizer, wanted: list[tuple[np.ndarray, torch.dtype]], dim: int) -> list[torch.Tensor]:
    """For each (row mask, dtype) wanted, those rows standardised, filled chunk by chunk in one pass.

    No full float32 copy of the input ever exists: at the real scale that keeps a run under 8 GB."""
    outs = [torch.empty((int(mask.sum()), dim), dtype=dtype) for mask, dtype in wanted]
    filled = [0] * len(wanted)
    for start, block in chunks:
        block = torch.from_numpy(scaler.transform_(block))
        for i, (mask, dtype) in enumerate(wanted):
            part = torch.from_numpy(mask[start:start + len(block)])
            n = int(part.sum())
            outs[i][filled[i]:filled[i] + n] = block[part].to(dtype)
            filled[i] += n
    return outs


def train_variants(prep: Prepared, config: RunConfig, out: Path, timings: dict):
    """Train each configured variant (or reuse it when a finished one with the same inputs is in `out`).

    Returns hold-out and test probabilities per variant, and a report per variant."""
    holdout_probs, test_probs, reports = {}, {}, {}
    y_holdout = prep.y_holdout
    train, test = prep.train, prep.test
    for spec, members in _group_by_features(config).items():
        todo = [vc for vc in members if not _reuse(out / "variants" / vc.name, vc, prep, holdout_probs, test_probs, reports)]
        if not todo:
            continue
        t = time.perf_counter()

        def train_chunks():
            return fuse_chunks(spec, train.features, train.rows, train.location, train.irish)

        dim = spec.dim(train.features.image.shape[1])
        scaler = Standardizer.fit_blocks(block[prep.fit_rows[s:s + len(block)]] for s, block in train_chunks())
        # Training inputs in each precision the variants ask for; probabilities always from float32
        # inputs, as `predict` computes them, so a rerun of predict gives the very same tags.
        dtypes = sorted({storage_dtype(vc.train.precision) for vc in todo}, key=str)
        wanted = [(rows, dt) for dt in dtypes for rows in (prep.fit_rows, prep.holdout)] + [(prep.holdout, torch.float32)]
        built = standardised(train_chunks(), scaler, wanted, dim)
        tensors = {dt: (built[2 * i], built[2 * i + 1]) for i, dt in enumerate(dtypes)}
        x_holdout = built[-1]
        (x_test,) = standardised(fuse_chunks(spec, test.features, test.rows, test.location, test.irish), scaler,
                                 [(np.ones(len(test.ids), dtype=bool), torch.float32)], dim)
        timings[f"features {spec.name}"] = time.perf_counter() - t
        y_fit = torch.from_numpy(prep.labels.y[prep.fit_rows])
        for vc in todo:
            x_fit, x_val = tensors[storage_dtype(vc.train.precision)]
            _say(f"training {vc.name}: {len(x_fit)} rows x {x_fit.shape[1]} inputs ({x_fit.dtype})")
            result = fit(x_fit, y_fit, x_val, torch.from_numpy(y_holdout), vc.train, desc=vc.name)
            variant = Variant(vc.name, spec, vc.train.head, result.head, scaler, prep.labels.columns,
                              vc.train.hidden, vc.train.dropout,
                              info={"train": vc.train.to_dict(), "best_epoch": result.best_epoch,
                                    "history": result.history, "fingerprint": prep.fingerprint,
                                    "holdout_split": prep.split_key})
            holdout = predict_proba(variant.head, x_holdout)
            at_half = scores(y_holdout, ThresholdDecoder(0.5).decode(holdout), prep.labels.columns)
            report = {"holdout_at_0.5": at_half, "best_epoch": result.best_epoch, "epochs_run": len(result.history),
                      "seconds": round(result.seconds, 2), "seconds_to_best": round(result.seconds_to_best, 2)}
            save_member(out, variant, holdout, predict_proba(variant.head, x_test), report, holdout_probs, test_probs,
                        reports)
            _say(f"  {vc.name}: hold-out exact match {at_half['exact_match']:.4f} at 0.5 (best epoch"
                 f" {result.best_epoch}, {result.seconds:.1f} s)")
            timings[f"train {vc.name}"] = result.seconds
        del tensors, built, x_holdout, x_test
    return holdout_probs, test_probs, reports


def save_member(out: Path, variant: Variant, holdout: np.ndarray, test: np.ndarray, report: dict,
                holdout_probs: dict, test_probs: dict, reports: dict) -> None:
    """Write a variant with its probabilities into the run, and record them for the decoding step."""
    folder = variant.save(out / "variants" / variant.name)
    np.save(folder / "holdout_probs.npy", holdout)
    np.save(folder / "test_probs.npy", test)
    (folder / "report.json").write_text(json.dumps(report, indent=2))
    holdout_probs[variant.name], test_probs[variant.name], reports[variant.name] = holdout, test, report


def _reuse(folder: Path, vc, prep: Prepared, holdout_probs: dict, test_probs: dict, reports: dict) -> bool:
    """A variant already trained in this folder on the same inputs with the same settings is kept."""
    try:
        spec = json.loads((folder / "variant.json").read_text())
        wanted = json.loads(json.dumps({"train": vc.train.to_dict(), "features": vc.features.to_dict()}))
        same = (spec.get("fingerprint") == prep.fingerprint and spec.get("train") == wanted["train"]
                and spec.get("features") == wanted["features"])
        if not same:
            return False
        holdout_probs[vc.name] = np.load(folder / "holdout_probs.npy")
        test_probs[vc.name] = np.load(folder / "test_probs.npy")
        reports[vc.name] = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return False
    _say(f"reusing {vc.name}: already trained in {folder} on the same inputs")
    return True


def member_probs(prep: Prepared, variant: Variant) -> tuple[np.ndarray, np.ndarray]:
    """A finished variant's probabilities on this run's hold-out and test photos."""
    held = prep.holdout
    holdout = variant.predict_proba(prep.train.features, prep.train.rows[held], prep.train.location[held],
                                    prep.train.irish[held])
    test = variant.predict_proba(prep.test.features, prep.test.rows, prep.test.location, prep.test.irish)
    return holdout, test


def add_members(prep: Prepared, runs, out: Path, holdout_probs: dict, test_probs: dict, reports: dict) -> None:
    """Bring the variants of other run folders (e.g. imported published heads) into this run as ensemble
    members: copied into OUT/variants/ so the run stays self-contained, scored on this run's hold-out.
    Every variant of each run is brought, not only its final choice's members."""
    for run_dir in runs:
        _run_json(run_dir)  # a finished run, not any folder
        for folder in sorted(p for p in (Path(run_dir) / "variants").iterdir() if (p / "variant.json").exists()):
            variant = Variant.load(folder)
            name = variant.name
            if tuple(variant.columns) != tuple(prep.labels.columns):
                raise DataError(f"{run_dir}: variant {name!r} predicts other tag columns than train.csv")
            variant.name = name if name not in holdout_probs else f"{Path(run_dir).name}-{name}"
            same_split = variant.info.get("holdout_split") == prep.split_key
            if not same_split:
                _say(f"warning: {variant.name} was not trained with this run's hold-out split; it may have seen"
                     " hold-out photos, so its hold-out scores (and ensemble weight) can be optimistic")
            holdout, test = member_probs(prep, variant)
            at_half = scores(prep.y_holdout, ThresholdDecoder(0.5).decode(holdout), prep.labels.columns)
            save_member(out, variant, holdout, test,
                        {"holdout_at_0.5": at_half, "from": str(run_dir), "same_holdout_split": same_split},
                        holdout_probs, test_probs, reports)
            _say(f"  {variant.name} (from {run_dir}): hold-out exact match {at_half['exact_match']:.4f} at 0.5")


def finish(prep: Prepared, out: Path, holdout_probs: dict, test_probs: dict, variant_reports: dict,
           config: RunConfig, timings: dict, start: float) -> dict:
    """Choose the final combination and decoder honestly, write submission, run.json and report.json."""
    t = time.perf_counter()
    choice, candidates, predicted = choose(holdout_probs, prep.y_holdout, prep.labels.ids[prep.holdout],
                                           prep.labels.y[prep.fit_rows], config.decode, out)
    final_tags = choice.decode([test_probs[m] for m in choice.members])
    submission = write_submission(out / "submission.csv.zip", prep.test_ids, final_tags, prep.labels.columns,
                                  prep.test_ids)
    timings["decode"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start
    run_info = {"config": config.to_dict(), "columns": list(prep.labels.columns), "final": choice.to_dict(),
                "data": str(prep.data_dir), "features": str(prep.features_dir)}
    (out / "run.json").write_text(json.dumps(run_info, indent=2))
    report = {
        "final": {"name": choice.name, **candidates[choice.name]},
        "candidates": candidates,
        "variants": variant_reports,
        "rows": {"train_used": int(prep.fit_rows.sum()), "dropped_many_tags": int((~prep.holdout & ~prep.fit_rows).sum()),
                 "holdout": int(prep.holdout.sum()), "test": len(prep.test_ids)},
        "inputs": {"train": prep.train.summary, "test": prep.test.summary},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "submission": str(submission),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    write_report(out, report, choice, prep.y_holdout, predicted, list(prep.labels.columns),
                 data.read_tag_names(prep.data_dir))
    _say(f"final: {choice.name}, hold-out exact match {candidates[choice.name]['exact_match']:.4f} (cross-fitted)")
    _say(f"submission: {submission}")
    return report


def run(data_dir, features_dir, out_dir, config: RunConfig | None = None, with_runs=()) -> dict:
    """Train the configured variants (plus members of `with_runs`), choose how to combine and decode
    them, write the submission."""
    config = config or RunConfig()
    out = Path(out_dir)
    timings, start = {}, time.perf_counter()
    prep = prepare(data_dir, features_dir, out, config.holdout_fraction, config.seed, config.max_tags)
    timings["load"] = time.perf_counter() - start
    holdout_probs, test_probs, reports = train_variants(prep, config, out, timings)
    add_members(prep, with_runs, out, holdout_probs, test_probs, reports)
    return finish(prep, out, holdout_probs, test_probs, reports, config, timings, start)


def _group_by_features(config: RunConfig) -> dict[FeatureSpec, list]:
    """Variants that share a feature spec share one fused matrix."""
    groups: dict[FeatureSpec, list] = {}
    for vc in config.variants:
        groups.setdefault(vc.features, []).append(vc)
    return groups


def _run_json(run_dir) -> Path:
    path = Path(run_dir) / "run.json"
    if not path.exists():
        raise DataError(f"{run_dir}: no run.json; is this the OUT folder of a finished `geocontext run`?")
    return path


def load_run(run_dir) -> tuple[dict, dict[str, Variant], Choice]:
    run_dir = Path(run_dir)
    info = json.loads(_run_json(run_dir).read_text())
    choice = Choice.from_dict(info["final"], len(info["columns"]))
    variants = {name: Variant.load(run_dir / "variants" / name) for name in choice.members}
    return info, variants, choice


def predict(run_dir, data_dir, features_dir, out_file, probs_file=None, split: str = "test") -> dict:
    """Tag the photos of a FEATURES split with a finished run (no retraining)."""
    info, variants, choice = load_run(run_dir)
    features = load_features(features_dir, split)
    ids = features.ids
    inputs = load_inputs(data_dir, features_dir, split, ids, f"{features.path / 'ids.npy'}")
    fused = {}
    probs = [variants[m].predict_proba(inputs.features, inputs.rows, inputs.location, inputs.irish, fused)
             for m in choice.members]
    del fused
    tags = choice.decode(probs)
    if probs_file is not None:
        np.save(probs_file, choice.combine(probs))
    wanted = data.read_test_ids(data_dir) if data.find(data_dir, "test.csv", "test.csv.zip") else ids
    pos = align(features, wanted, "test.csv")
    columns = tuple(info["columns"])
    path = write_submission(out_file, wanted, tags[pos], columns, wanted)
    _say(f"submission: {path} ({len(wanted)} photos, decoded with {choice.name})")
    return {"submission": str(path), "rows": len(wanted), **inputs.summary}
