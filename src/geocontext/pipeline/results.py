"""What a finished run writes into its folder (pipeline.run_folder), from the `Outcome` decided: the
submission, run.json, report.json, report.md, holdout.npz and report.html."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..console import say
from ..data.readers import read_tag_names
from ..data.submission import write_submission
from ..decoding.bands import Banded
from .config import RunConfig
from .decide import Outcome
from .members import Members
from .prepare import Prepared
from .reports.diagnostics import save_holdout
from .reports.html_report import write_html_report
from .reports.markdown import write_report
from .run_folder import RunFolder


def _folders(features_dir, resolve: bool) -> str | list[str]:
    name = (lambda f: str(Path(f).resolve())) if resolve else str
    return name(features_dir) if isinstance(features_dir, Path) else [name(f) for f in features_dir]


def where_from(prep: Prepared) -> dict:
    """run.json's DATA and FEATURES: absolute, so `report` and `predict` find them from any folder; and
    as typed, for the reader."""
    return {"data": str(Path(prep.data_dir).resolve()), "features": _folders(prep.features_dir, True),
            "data_as_given": str(prep.data_dir), "features_as_given": _folders(prep.features_dir, False)}


def build_report(prep: Prepared, members: Members, outcome: Outcome, timings: dict, submission: Path) -> dict:
    """report.json: the final choice's honest scores, every candidate and variant, the rows, inputs, timings."""
    choice, select = outcome.choice, prep.select
    main = choice.choices[choice.main] if isinstance(choice, Banded) else choice  # the main band's choice
    chosen = outcome.candidates[main.name]
    final = {"name": choice.name, **chosen, **outcome.estimate, "selection_exact_match": chosen["exact_match"],
             "estimate": "nested: each selection row scored by a choice made without it (pipeline.honest)"}
    if outcome.bands is not None:
        final |= {"members": choice.members, "main": main.name, "bands": outcome.bands,
                  "estimate": "nested, by gap band: each selection row scored by its band's choice made without it"
                              " (pipeline.bands); selection_exact_match is the main band's winner within its rows"}
    return {
        "final": final,
        "candidates": outcome.candidates,
        "variants": members.reports,
        "rows": {"train_used": int(prep.fit_rows.sum()), "dropped_many_tags": int((~prep.holdout & ~prep.fit_rows).sum()),
                 "holdout": int(prep.holdout.sum()), "holdout_choosing_epochs": int((~select).sum()),
                 "test": len(prep.test_ids)},
        "inputs": {"train": prep.train.summary, "test": prep.test.summary},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "submission": str(submission),
    }


def write_results(out: RunFolder, prep: Prepared, members: Members, outcome: Outcome, config: RunConfig,
                  timings: dict, start: float, run_info: dict | None = None, report_extra: dict | None = None) -> dict:
    """Write every file of a finished run; `run_info` / `report_extra` add keys to run.json / report.json
    (a head import says where its heads came from). Returns report.json's content."""
    choice = outcome.choice
    submission = write_submission(out.submission, prep.test_ids, outcome.test_tags, prep.labels.columns,
                                  prep.test_ids, probs=outcome.test_probs)
    timings["total"] = time.perf_counter() - start
    out.write_neighbours(outcome.labelled)
    out.write_run_info({**(run_info or {}), "config": config.to_dict(), "columns": list(prep.labels.columns),
                        "final": choice.to_dict(), **where_from(prep)})
    report = {**build_report(prep, members, outcome, timings, submission), **(report_extra or {})}
    out.write_report(report)
    select = prep.select
    y_select = prep.y_holdout[select]
    write_report(out, report, choice, y_select, outcome.predicted, list(prep.labels.columns),
                 read_tag_names(prep.data_dir))
    save_holdout(out, prep.labels.ids[prep.holdout][select], y_select, outcome.predicted, choice.name,
                 rows=np.flatnonzero(select), bands=outcome.selection_bands)
    write_html_report(out.path, prep.data_dir)
    say(f"final: {choice.name}, hold-out exact match {outcome.estimate['exact_match']:.4f} (nested estimate; "
        f"{report['final']['selection_exact_match']:.4f} within the selection)")
    for band in outcome.bands or ():
        score = ("no hold-out rows" if band["exact_match"] is None
                 else f"hold-out {band['exact_match']:.4f} on {band['selection_rows']} rows")
        say(f"  {band['describe']}: {100 * band['test_share']:.1f}% of test photos, {score};"
            f" {band['choice']} (chosen on {band['decided_on']})")
    say(f"submission: {submission}")
    return report
