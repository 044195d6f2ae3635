"""A simulated competition on the real label matrix: the default `run` against the published recipe.

    PYTHONPATH=src nice -n 10 .venv/bin/python -m geocontext.bench.competition \
        --labelled 120000 --test 30000 --seeds 3 --generators world,clusters [--orders real,shuffled,far] \
        [--config NAME=run.json ...]

For each generator family and seed (bench.competition_data): DATA + FEATURES folders from a seeded
subset of the real train.csv.zip, the test rows' labels hidden. Scored on them (exact match, all 49 tags):
- "published linear" / "published mlp" / "best published": the published recipe on the same FEATURES
  (bench.published_recipe), the best head chosen on its hold-out;
- "run default": `geocontext run` with the default RunConfig, in a fresh process (bench.measure), its
  submission scored on the hidden labels; with its wall time, peak memory and its own estimate
  (report.json final.exact_match);
- "run NAME": the same with each --config NAME=run.json.
Prints each seed and a table (mean, sd over seeds, paired gain over best published), writes JSON to --out
after every seed. The published scores are cached per competition; runs are always trained afresh.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from ..console import say
from ..errors import DataError
from ..pipeline.config import RunConfig
from ..pipeline.run_folder import RunFolder
from ..synthetic.families import FAMILIES, NOISE
from .competition_data import CACHE, ORDERS, Competition, build, score_submission
from .data import SHARED
from .measure import measure_command
from .published_recipe import score_published

PUBLISHED_VERSION = 1  # bump when the published recipe changes: cached published scores are refitted
BASELINE = "best published"


def published(comp: Competition, seed: int, epochs: int) -> dict:
    """The published recipe's scores, cached in the competition folder (they depend only on its FEATURES)."""
    path, key = comp.folder / "published.json", json.dumps({"version": PUBLISHED_VERSION, "epochs": epochs})
    cached = json.loads(path.read_text()) if path.exists() else {}
    if key not in cached:
        cached[key] = score_published(comp, seed, epochs)
        path.write_text(json.dumps(cached, indent=2))
    else:
        say(f"  published: cached in {path}")
    return cached[key]


def score_run(comp: Competition, name: str, config: RunConfig) -> dict:
    """One `run` from scratch in a fresh process: its test exact match, its own estimate, its final choice,
    wall time and peak memory."""
    out = RunFolder(comp.folder / "runs" / name)
    shutil.rmtree(out.path, ignore_errors=True)  # a run reuses finished variants: start bare for an honest time
    out.path.mkdir(parents=True)
    settings = comp.folder / "runs" / f"{name}.config.json"
    settings.write_text(json.dumps(config.to_dict()))
    measured = measure_command(["run", "--data", str(comp.data), "--features", str(comp.features), "--out",
                                str(out.path), "--config", str(settings)], comp.folder / "runs" / f"{name}.measure.json",
                               comp.folder / "runs" / f"{name}.log")
    report = out.read_report()
    test = score_submission(comp, out.submission)
    result = {"test": test, "estimate": report["final"]["exact_match"], "final": report["final"]["name"],
              "seconds": round(measured["wall_s"], 1), "peak_gb": round(measured["peak_rss_gb"], 2)}
    say(f"  run {name}: test {test:.4f}, its estimate {result['estimate']:.4f} ({result['final']},"
        f" {result['seconds']:.0f} s, {result['peak_gb']:.2f} GB)")
    return result


def one_seed(generator: str, order: str, seed: int, args, configs: dict[str, RunConfig]) -> dict:
    say(f"== {generator} ({order} ids) seed {seed}")
    comp = build(generator, seed, args.labelled, args.test, args.noise.get(generator), args.shared, args.cache, order)
    pub = published(comp, seed, args.epochs)
    rows = {f"published {h}": pub[h] for h in ("linear", "mlp")}
    rows[BASELINE] = pub["best"]
    for name, config in configs.items():
        rows[f"run {name}"] = score_run(comp, name, config)
    say(f"  {generator} seed {seed}: " + ", ".join(f"{k} {v['test']:.4f}" for k, v in rows.items()))
    return {"seed": seed, "noise": comp.settings["noise"], "rows": rows}


def summary(seeds: list[dict]) -> dict:
    """Per row: mean and sd of test exact match over seeds, and the paired gain over best published."""
    base = np.array([s["rows"][BASELINE]["test"] for s in seeds])
    out = {}
    for row in seeds[0]["rows"]:
        test = np.array([s["rows"][row]["test"] for s in seeds])
        gain = test - base
        sd = (lambda a: float(a.std(ddof=1)) if len(a) > 1 else 0.0)  # noqa: E731
        out[row] = {"mean": float(test.mean()), "sd": sd(test), "gain": float(gain.mean()), "gain_sd": sd(gain)}
        if "seconds" in seeds[0]["rows"][row]:
            out[row]["seconds"] = float(np.mean([s["rows"][row]["seconds"] for s in seeds]))
        for key in ("estimate", "peak_gb"):
            if key in seeds[0]["rows"][row]:
                out[row][key] = float(np.mean([s["rows"][row][key] for s in seeds]))
    return out


def table(results: dict) -> str:
    lines = [f"{'world':18s} {'row':22s} {'test mean':>9s} {'sd':>7s}  {'gain vs best published':>22s}"
             f" {'estimate':>8s} {'wall s':>7s} {'peak GB':>7s}"]
    for world, r in results.items():
        for row, s in r["summary"].items():
            est = f"{s['estimate']:8.4f}" if "estimate" in s else " " * 8
            wall = f"{s['seconds']:7.0f}" if "seconds" in s else " " * 7
            peak = f"{s['peak_gb']:7.2f}" if "peak_gb" in s else " " * 7
            lines.append(f"{world:18s} {row:22s} {s['mean']:9.4f} {s['sd']:7.4f}  {s['gain']:+11.4f} ± {s['gain_sd']:.4f}"
                         f"      {est} {wall} {peak}")
    return "\n".join(lines)


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"{flag} {v!r}: expected NAME=VALUE")
        if name in out:
            raise ValueError(f"{flag}: {name!r} given twice")
        out[name] = value
    return out


def parse(argv) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m geocontext.bench.competition", description=__doc__.split("\n")[0])
    ap.add_argument("--labelled", type=int, default=120_000)
    ap.add_argument("--test", type=int, default=30_000)
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    ap.add_argument("--generators", default="world,clusters", help=f"comma-separated: {', '.join(FAMILIES)}")
    ap.add_argument("--orders", default="real", help=f"comma-separated id orders: {', '.join(ORDERS)} (shuffled: ids"
                    " dealt out at random, so they say nothing; far: test ids moved 10,000,000 up, away from every labelled id)")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=PATH",
                    help="an extra row: `run` with this RunConfig JSON (repeatable)")
    ap.add_argument("--no-default-run", action="store_true", help="skip the default run (e.g. to calibrate noise)")
    ap.add_argument("--without-block", "--no-neighbours", dest="without_block", action="store_true",
                    help="also the default run with `run --no-neighbours` (row 'run no-neighbours')")
    ap.add_argument("--noise", action="append", default=[], metavar="GENERATOR=LEVEL",
                    help=f"override a family's calibrated noise (defaults {NOISE})")
    ap.add_argument("--epochs", type=int, default=30, help="the published recipe's maximum epochs")
    ap.add_argument("--shared", type=Path, default=SHARED, help="folder with the real train.csv.zip and tags-top.csv")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--out", type=Path, default=Path("bench-cache/competition.json"))
    args = ap.parse_args(argv)
    args.generators = args.generators.split(",")
    args.orders = args.orders.split(",")
    if set(args.orders) - set(ORDERS):
        raise ValueError(f"--orders: expected some of {', '.join(ORDERS)}, got {args.orders}")
    unknown = [g for g in args.generators if g not in FAMILIES]
    if unknown:
        raise ValueError(f"--generators: unknown {unknown[0]!r}; expected some of {', '.join(FAMILIES)}")
    if args.seeds < 1 or args.epochs < 1:
        raise ValueError("--seeds and --epochs must be at least 1")
    try:
        args.noise = {g: float(v) for g, v in _pairs(args.noise, "--noise").items()}
    except ValueError as exc:
        raise ValueError(f"--noise: {exc}") from None
    if set(args.noise) - set(FAMILIES):
        raise ValueError(f"--noise: unknown generator {sorted(set(args.noise) - set(FAMILIES))[0]!r}")
    return args


def run_configs(args) -> dict[str, RunConfig]:
    """Checked before anything is built or trained: a bad file fails at once."""
    configs = {} if args.no_default_run else {"default": RunConfig()}
    if args.without_block:
        configs["no-neighbours"] = RunConfig().without_neighbours()
    for name, path in _pairs(args.config, "--config").items():
        if name in configs or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"--config {name}=...: the name must be letters, digits, '.', '_' or '-', not 'default'")
        configs[name] = RunConfig.from_file(path)
    return configs


def main(argv=None) -> int:
    try:
        args = parse(argv)
        configs = run_configs(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    results: dict = {}
    try:
        for generator in args.generators:
            for order in args.orders:
                world = generator if order == "real" else f"{generator}/{order}"
                seeds = results.setdefault(world, {"seeds": []})["seeds"]
                for seed in range(args.seeds):
                    seeds.append(one_seed(generator, order, seed, args, configs))
                    results[world]["summary"] = summary(seeds)
                    _write(args, results)
    except (DataError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    say(table(results))
    say(f"wrote {args.out}")
    return 0


def _write(args, results: dict) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args.out.write_text(json.dumps({"args": settings, "results": results}, indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
