"""`python -m geocontext.bench [--smoke] [--out BENCHMARKS.md]`: run every benchmark, write the figures."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ..console import say
from .report import hand_sections, markdown
from .suite import (
    BenchConfig,
    build_data,
    decoder_spread,
    embedding,
    encoders,
    end_to_end,
    generated,
    machine,
    predicting,
    training,
    tuning,
    types_reading,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geocontext.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that every section runs")
    parser.add_argument("--cache", type=Path, default=Path("bench-cache"), help="ignored work folder (default: bench-cache)")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"), help="markdown file to write")
    parser.add_argument("--baseline-epochs", type=int, default=30, help="epochs the notebook-style loop gets at most")
    parser.add_argument("--skip", nargs="*", default=[], choices=["training", "embedding", "generated", "archive", "labeller"],
                        help="leave sections out (their rows say so)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GEOCONTEXT_PROGRESS", "0")
    cfg = BenchConfig(cache=args.cache, smoke=args.smoke, baseline_epochs=args.baseline_epochs)
    cfg.cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = {"machine": machine(), "command": "make bench" if not args.smoke else "python -m geocontext.bench --smoke"}
    data_dir, features_dir, settings = build_data(cfg)
    results["data"] = settings
    if "training" not in args.skip:
        results["training"] = training(cfg, data_dir, features_dir)
    results["run"] = end_to_end(cfg, data_dir, features_dir)
    run_dir = Path(results["run"]["out"])
    results["tuning"] = tuning(cfg, run_dir, results["run"]["report"])
    results["predict"] = predicting(cfg, run_dir, data_dir, features_dir)
    if "embedding" not in args.skip:
        results["embedding"] = embedding(cfg)
        results["encoders"] = encoders(cfg)
    results["decoders_real"] = decoder_spread(cfg, run_dir, results["run"]["report"])
    if "generated" not in args.skip:
        results["decoders_generated"] = generated(cfg)
    results["types_read"] = types_reading(cfg)
    if "archive" not in args.skip:  # predict at 1M and 2M photos (generated, ~12 GB in the cache)
        from .archive import archive

        results["archive"] = archive(cfg.cache, (3000, 6000) if cfg.smoke else (1_000_000, 2_000_000),
                                     n_train=2000 if cfg.smoke else 20_000)
    if "labeller" not in args.skip:
        from .label_worker import measure

        results["labeller"] = measure(cfg.cache, *((4, 2) if cfg.smoke else (500, 250)),
                                      n_train=2000 if cfg.smoke else 20_000)
    results["bench_minutes"] = (time.perf_counter() - start) / 60
    (cfg.cache / "results.json").write_text(json.dumps(results, indent=2, default=str))
    args.out.write_text(markdown(results) + hand_sections(args.out))
    say(f"wrote {args.out} ({results['bench_minutes']:.1f} min); raw figures in {cfg.cache / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
