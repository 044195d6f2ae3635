"""The same `run` alone and beside one busy process (`python -c 'while True: pass'`), with the kit's
thread settings and with libgomp's default spin-waiting (what the kit did before issue 25): medians over
repeats, and the slowdown each suffers beside the busy process.

    python -m geocontext.bench.contention [--cache bench-cache] [--repeats 3] [--train 800] [--no-spin] [--config run.json]

Each run is a fresh `python -m geocontext run` (default variants and decoding) on a small generated
competition (bench.data, no photos), timed from the outside; the linear head's own training seconds come
from its report.json. The machine's load average is printed before and after: another job running
meanwhile makes every figure slower, and the comparison unfair."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ..console import say
from .data import build

SETTINGS = {  # environment changes from the caller's: the kit's own, and libgomp's default wait
    "kit": {"drop": ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS"), "set": {}},
    "spin": {"drop": ("OMP_WAIT_POLICY", "OMP_NUM_THREADS"), "set": {"GOMP_SPINCOUNT": "300000"}},  # libgomp's default
}
SLOWDOWN_TARGET = 2.5


def _env(setting: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS[setting]["drop"]}
    return {**env, **SETTINGS[setting]["set"], "GEOCONTEXT_PROGRESS": "0"}


def one_run(data: Path, features: Path, out: Path, setting: str, busy: bool, config: Path | None = None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "geocontext", "run", "--data", str(data), "--features",
                               str(features), "--out", str(out), *(["--config", str(config)] if config else [])],
                              env=_env(setting), capture_output=True, text=True)
        wall = time.perf_counter() - start
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    if done.returncode != 0:
        raise RuntimeError(f"run failed ({setting}, busy={busy}): {done.stderr[-2000:]}")
    timings = json.loads((out / "report.json").read_text())["timings_s"]
    linear = next((v for k, v in timings.items() if k.startswith("train linear")), None)
    return {"wall_s": wall, "linear_s": linear, "train_s": sum(v for k, v in timings.items() if k.startswith("train "))}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def measure(cache: Path, repeats: int = 3, n_train: int = 800, settings=("kit", "spin"), config: Path | None = None) -> dict:
    data, features, _ = build(cache / "contention", shared=None, n_train=n_train, n_test=n_train // 4, log=say)
    results = {"load_before": load(), "cores": len(os.sched_getaffinity(0)), "repeats": repeats, "train": n_train}
    say(f"load average before: {results['load_before']}; {results['cores']} cores")
    for setting in settings:
        for busy in (False, True):
            rows = []
            for r in range(repeats):  # alternating would mix the two; each cell's repeats back to back
                rows.append(one_run(data, features, cache / "contention" / "out", setting, busy, config))
                say(f"{setting:5s} {'beside a busy process' if busy else 'alone':22s} #{r + 1}: {rows[-1]['wall_s']:.1f} s"
                    f" (linear head {rows[-1]['linear_s']:.2f} s)")
            results[f"{setting} {'busy' if busy else 'alone'}"] = {
                k: statistics.median(row[k] for row in rows) for k in ("wall_s", "linear_s", "train_s")}
    results["load_after"] = load()
    for setting in settings:
        alone, busy = results[f"{setting} alone"], results[f"{setting} busy"]
        results[f"{setting} slowdown"] = {k: busy[k] / alone[k] for k in ("wall_s", "linear_s", "train_s")}
    return results


def table(results: dict, settings=("kit", "spin")) -> str:
    lines = ["| threads wait | alone: run s | beside busy: run s | slowdown | alone: linear head s | beside busy:"
             " linear head s | slowdown |", "|---|---:|---:|---:|---:|---:|---:|"]
    names = {"kit": "the kit's (passive)", "spin": "libgomp default (spin)"}
    for s in settings:
        a, b, x = results[f"{s} alone"], results[f"{s} busy"], results[f"{s} slowdown"]
        lines.append(f"| {names[s]} | {a['wall_s']:.1f} | {b['wall_s']:.1f} | {x['wall_s']:.2f}x | {a['linear_s']:.2f}"
                     f" | {b['linear_s']:.2f} | {x['linear_s']:.2f}x |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geocontext.bench.contention", description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("bench-cache"), help="ignored work folder (default: bench-cache)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; medians are reported (default: 3)")
    parser.add_argument("--train", type=int, default=800, help="labelled photos (default: 800, the demo's size)")
    parser.add_argument("--no-spin", action="store_true", help="only the kit's settings, not libgomp's default")
    parser.add_argument("--config", type=Path, help="run configuration (default: the default run)")
    args = parser.parse_args(argv)
    settings = ("kit",) if args.no_spin else ("kit", "spin")
    results = measure(args.cache, args.repeats, args.train, settings, args.config)
    (args.cache / "contention.json").write_text(json.dumps(results, indent=2))
    say(table(results, settings))
    slowdown = results["kit slowdown"]["wall_s"]
    say(f"kit: the run is {slowdown:.2f}x slower beside one busy process (target < {SLOWDOWN_TARGET}x:"
        f" {'met' if slowdown < SLOWDOWN_TARGET else 'NOT met'}); load average after: {results['load_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
