"""`geocontext leaderboard RUN... --html FILE`: runs side by side on one page: each run's final choice and
scores, per-tag F1 of each final choice, every candidate ranked, and links to each run's report.html."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...competition import BY_COLUMN
from ...data.readers import read_tag_names
from ...errors import DataError
from ...hashing import content_digest
from ..run_folder import RunFolder
from .diagnostics import load_tags, per_tag
from .html_page import esc, page, table, write_page


def _run_facts(run: Path) -> dict:
    folder = RunFolder(run)
    report = folder.read_report()
    if "candidates" not in report:
        raise DataError(f"{run}: report.json has no hold-out scores (a head import made without --data/--features)")
    info = folder.read_run_info() if folder.run_json.exists() else {}
    facts = {"run": run, "report": report, "columns": info.get("columns"), "data": folder.recorded_data(info)[0],
             "f1": None, "holdout": None}
    try:
        tags = load_tags(run)
    except DataError:
        return facts  # a run from before holdout.npz: scores only, no per-tag figures
    facts["f1"] = per_tag(tags["y"], tags["predicted"])["f1"]
    facts["holdout"] = content_digest(np.sort(tags["ids"]))
    return facts


def _side_by_side(facts: list[dict], out_dir: Path) -> str:
    def link(f):
        page_path = RunFolder(f["run"]).report_html
        if not page_path.exists():
            return "–"
        return f'<a href="{esc(Path(os.path.relpath(page_path.resolve(), out_dir)).as_posix())}">report.html</a>'

    first = facts[0]["holdout"]
    rows = [
        ["final choice"] + [esc(f["report"]["final"]["name"]) for f in facts],
        ["exact match (cross-fitted)"] + [f"<b>{f['report']['final']['exact_match']:.4f}</b>" for f in facts],
        ["macro F1"] + [f"{f['report']['final']['macro_f1']:.4f}" for f in facts],
        ["hold-out photos"] + [str(f["report"].get("rows", {}).get("holdout", "–")) for f in facts],
        ["same hold-out as the first run"] + ["–" if f["holdout"] is None or first is None
                                              else "yes" if f["holdout"] == first else "<b>no</b>" for f in facts],
        ["candidates"] + [str(len(f["report"]["candidates"])) for f in facts],
        ["total time (s)"] + [str(f["report"].get("timings_s", {}).get("total", "–")) for f in facts],
        ["report"] + [link(f) for f in facts],
    ]
    header = [""] + [esc(f["run"].name or str(f["run"])) for f in facts]
    return ('<p class="note">Scores on different hold-outs (another seed or training set) are not directly'
            " comparable.</p>" + table(header, rows, raw=True))


def _per_tag_f1(facts: list[dict]) -> str:
    usable = [f for f in facts if f["f1"] is not None and f["columns"]]
    if not usable:
        return '<p class="note">No run has holdout.npz (runs made before the HTML report): no per-tag figures.</p>'
    columns = usable[0]["columns"]
    usable = [f for f in usable if f["columns"] == columns]
    data = usable[0]["data"]
    names = read_tag_names(data) if data else {c: t.name for c, t in BY_COLUMN.items()}
    f1 = np.stack([f["f1"] for f in usable])  # (runs, tags)
    best = np.where(np.isnan(f1), -1, f1).max(axis=0)
    rows = []
    for j in np.argsort(np.nan_to_num(f1[0], nan=2.0), kind="stable"):
        differ = np.nanmin(f1[:, j], initial=2.0) < best[j]  # bold only a best that is better than another
        cells = ["–" if np.isnan(v) else f"<b>{v:.3f}</b>" if v == best[j] and differ else f"{v:.3f}"
                 for v in f1[:, j]]
        rows.append([esc(names.get(columns[j], columns[j]))] + cells)
    header = ["tag"] + [esc(f["run"].name) for f in usable]
    return ('<p class="note">F1 of each run\'s final choice on its cross-fitted hold-out tags; the best per tag in'
            " bold; sorted by the first run's F1.</p>" + table(header, rows, set(range(1, len(usable) + 1)), raw=True))


def _candidates(rows: list[dict]) -> str:
    body = [[i, r["run"], r["variant"], r["decoder"], f"{r['exact_match']:.4f}", f"{r['macro_f1']:.4f}",
             "–" if r["seconds"] is None else f"{r['seconds']:.0f}"] for i, r in enumerate(rows, 1)]
    return ('<p class="note">Highlighted: each run\'s final choice. Cross-fitted hold-out scores.</p>'
            + table(["#", "run", "variant", "decoder", "exact match", "macro F1", "time s"], body, {0, 4, 5, 6},
                    row_class=lambda i: "final" if rows[i]["final"] else ""))


def write_comparison(runs, path, rows: list[dict]) -> Path:
    """The comparison page of `runs` (rows: the leaderboard's ranked candidates) at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    facts = [_run_facts(Path(r)) for r in runs]
    sections = [("runs", "Runs side by side", _side_by_side(facts, path.parent.resolve())),
                ("per-tag", "Per-tag F1", _per_tag_f1(facts)),
                ("candidates", "All candidates", _candidates(rows))]
    return write_page(path, page(f"Comparison of {len(facts)} runs", [esc(", ".join(str(r) for r in runs))],
                                 sections))
