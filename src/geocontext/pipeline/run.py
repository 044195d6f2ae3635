"""`geocontext run`: Kaggle files + features -> trained variants -> the honest final choice -> the chosen
heads refitted on all labelled rows -> submission. What OUT holds afterwards: pipeline.run_folder."""
from __future__ import annotations

import dataclasses
import time

from ..console import say
from ..decoding.decoders import ThresholdDecoder
from ..decoding.metrics import scores
from ..training.config import VariantConfig
from ..training.inputs import FeatureSpec, with_all_blocks
from ..writing import writing
from .config import RunConfig
from .decide import decide
from .group import Job, train_group
from .members import Members, add_members, check_members, load_members, reuse, save_member
from .outputs import removed_if_refused
from .prepare import Prepared, prepare
from .results import write_results
from .run_folder import RunFolder


def train_variants(prep: Prepared, variants: list[VariantConfig], out: RunFolder, timings: dict, seed: int) -> Members:
    """Train each configured variant (or reuse it when a finished one with the same inputs is in `out`);
    variants that share a feature spec share one fused, standardised input."""
    members = Members()
    groups: dict[FeatureSpec, list[VariantConfig]] = {}
    for vc in variants:
        vc = dataclasses.replace(vc, features=with_all_blocks(vc.features, prep.train.features))  # several folders: every block
        groups.setdefault(vc.features, []).append(vc)
    for spec, group in groups.items():
        jobs = [Job(vc.name, vc.train, info={"fingerprint": prep.reuse_key, "holdout_split": prep.split_key})
                for vc in group if not reuse(out, vc, prep, members)]
        for done in train_group(prep, spec, jobs, prep.fit_rows, timings, seed) if jobs else ():
            result = done.result
            at_half = scores(prep.y_holdout, ThresholdDecoder(0.5).decode(done.holdout), prep.labels.columns)
            report = {"holdout_at_0.5": at_half, "best_epoch": result.best_epoch, "epochs_run": len(result.history),
                      "seconds": round(result.seconds, 2), "seconds_to_best": round(result.seconds_to_best, 2)}
            save_member(out, done.variant, done.holdout, done.test, report, members, done.far)
            say(f"  {done.job.name}: hold-out exact match {at_half['exact_match']:.4f} at 0.5 (best epoch"
                f" {result.best_epoch}, {result.seconds:.1f} s)")
            timings[f"train {done.job.name}"] = result.seconds
    return members


def run(data_dir, features_dir, out_dir, config: RunConfig | None = None, with_runs=(),
        accept_missing: bool = False) -> dict:
    """Train the configured variants (plus members of `with_runs`), choose how to combine and decode
    them, write the submission."""
    config = config or RunConfig()
    timings, start = {}, time.perf_counter()
    with removed_if_refused(out_dir) as folder:  # a new OUT goes again if the inputs are refused
        out = RunFolder(folder)
        extra = load_members(with_runs)  # checked before anything is trained
        with writing(out.path, "the run folder"):
            prep = prepare(data_dir, features_dir, out.path, config.holdout_fraction, config.seed, config.max_tags,
                           accept_missing)
            check_members(extra, prep)
    with writing(out.path, "the run folder"):  # each file is whole or absent; a full disk is one line
        timings["load"] = time.perf_counter() - start
        members = train_variants(prep, config.variants, out, timings, config.seed)
        add_members(prep, extra, out, members)
        outcome = decide(prep, out, members, config, timings)
        return write_results(out, prep, members, outcome, config, timings, start)
