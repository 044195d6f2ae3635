"""The local leaderboard: every candidate of every run folder, ranked by honest hold-out exact match."""
from __future__ import annotations

from ..run_folder import RunFolder


def collect(runs) -> list[dict]:
    """One row per (run, candidate) from each run's report.json; the run's final choice is marked."""
    rows = []
    for run in runs:
        report = RunFolder(run).read_report()
        seconds = report.get("timings_s", {}).get("total")
        for name, cand in report.get("candidates", {}).items():
            members = cand.get("members", [name])
            rows.append({"run": str(run), "variant": members[0] if len(members) == 1 else f"ensemble of {len(members)}",
                         "decoder": cand.get("decoder", "?"), "exact_match": cand["exact_match"],
                         "macro_f1": cand["macro_f1"], "seconds": seconds,
                         "final": name == report["final"].get("main", report["final"]["name"])})
    return sorted(rows, key=lambda r: -r["exact_match"])


HEADER = ("run", "variant", "decoder", "exact", "macro F1", "time s")
LEFT = 3  # run, variant and decoder are text (left-aligned); the figures after them align right


def format_table(rows: list[dict]) -> str:
    """The ranked rows as text, each column as wide as its longest cell: no name is cut."""
    cells = [[r["run"], r["variant"], r["decoder"], f"{r['exact_match']:.4f}", f"{r['macro_f1']:.4f}",
              f"{r['seconds']:.0f}" if r["seconds"] is not None else "-"] for r in rows]
    widths = [max([len(h), *(len(c[j]) for c in cells)]) for j, h in enumerate(HEADER)]
    rank = len(str(len(rows))) if rows else 1

    def line(lead: str, values) -> str:
        return lead + " ".join(f"{v:<{w}}" if j < LEFT else f"{v:>{w}}" for j, (v, w) in enumerate(zip(values, widths)))

    header = line(f"{'#':>{rank}}  ", HEADER)
    lines = [header, "-" * len(header)]
    lines += [line(f"{i:>{rank}}{'*' if r['final'] else ' '} ", c) for i, (r, c) in enumerate(zip(rows, cells), 1)]
    lines.append("* the run's final choice. Scores are cross-fitted hold-out exact match (tuned on one half, scored on the other).")
    return "\n".join(lines)
