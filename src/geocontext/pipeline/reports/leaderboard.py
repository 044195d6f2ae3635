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


def format_table(rows: list[dict]) -> str:
    header = f"{'#':>3}  {'run':<28} {'variant':<28} {'decoder':<10} {'exact':>7} {'macro F1':>8} {'time s':>8}"
    lines = [header, "-" * len(header)]
    for i, r in enumerate(rows, 1):
        run = r["run"] if len(r["run"]) <= 28 else "..." + r["run"][-25:]
        mark = "*" if r["final"] else " "
        secs = f"{r['seconds']:.0f}" if r["seconds"] is not None else "-"
        lines.append(f"{i:>3}{mark} {run:<28} {r['variant'][:28]:<28} {r['decoder']:<10} {r['exact_match']:>7.4f}"
                     f" {r['macro_f1']:>8.4f} {secs:>8}")
    lines.append("* the run's final choice. Scores are cross-fitted hold-out exact match (tuned on one half, scored on the other).")
    return "\n".join(lines)
