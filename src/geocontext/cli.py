"""The command line: `python -m geocontext VERB ...`. Each verb is a thin call into one module."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import DataError, SubmissionError


def _run(args) -> int:
    from .config import RunConfig
    from .run import run

    config = RunConfig.from_file(args.config) if args.config else RunConfig()
    if args.seed is not None:
        config.seed = args.seed
    run(args.data, args.features, args.out, config, with_runs=args.with_runs)
    return 0


def _predict(args) -> int:
    from .run import predict

    predict(args.run, args.data, args.features, args.out, args.probs, args.split)
    return 0


def _evaluate(args) -> int:
    from .evaluate import evaluate

    result = evaluate(args.submission, args.solution)
    print(json.dumps(result))
    return 0


def _demo(args) -> int:
    from .demo import main as demo

    demo(args.work, args.train, args.test, args.seed)
    return 0


def _heads_import(args) -> int:
    from .config import RunConfig
    from .published import import_heads

    config = RunConfig.from_file(args.config) if args.config else RunConfig()
    if args.seed is not None:
        config.seed = args.seed
    import_heads(args.paths, args.out, args.data, args.features, config)
    return 0


def _add_heads(sub) -> None:
    """`heads import`: the published CLIP-the-Landscape heads as a run folder."""
    p = sub.add_parser("heads", help="use published CLIP-the-Landscape heads (`heads import`)")
    verbs = p.add_subparsers(dest="heads_verb", required=True, metavar="VERB")
    q = verbs.add_parser("import", help="write a run folder holding published head files, for predict and run --with",
                         description="Import published heads ({linear|mlp}-{img}-{txt}-{loc}[-mixup].pth, plain state"
                         " dicts) as the variants of a run folder. They keep the published input convention (raw"
                         " embeddings, published location normalisation). Without --data/--features the final choice"
                         " is their mean at 0.5; with both, it is chosen on the seeded hold-out as `run` does.")
    q.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="published head files (.pth)")
    q.add_argument("--out", required=True, type=Path, help="run folder to write")
    q.add_argument("--data", type=Path, help="DATA folder: with --features, score the heads on the hold-out")
    q.add_argument("--features", type=Path, help="FEATURES folder of raw (un-normalised) ViT-B-32 embeddings")
    q.add_argument("--config", type=Path, help="JSON run configuration: hold-out and decoder settings (no training)")
    q.add_argument("--seed", type=int, help="seed of the hold-out split")
    q.set_defaults(func=_heads_import)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="geocontext", description="Tag Geograph landscape photos with the"
                                     " competition's 49 context tags. `geocontext VERB --help` explains each verb.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("run", help="train the default variants, decode, write OUT/submission.csv.zip and report.json")
    p.add_argument("--data", required=True, type=Path, help="DATA folder in the competition's layout")
    p.add_argument("--features", required=True, type=Path, help="FEATURES folder (train/ and test/)")
    p.add_argument("--out", required=True, type=Path, help="run folder to write")
    p.add_argument("--config", type=Path, help="JSON run configuration (variants, hold-out, ...)")
    p.add_argument("--seed", type=int, help="seed of the hold-out split")
    p.add_argument("--with", dest="with_runs", nargs="+", type=Path, default=[], metavar="RUN",
                   help="also use the variants of these run folders (e.g. imported published heads) as ensemble members")
    p.set_defaults(func=_run)

    p = sub.add_parser("predict", help="tag another set of photos with a finished run (no retraining)")
    p.add_argument("--run", required=True, type=Path, help="OUT folder of a finished `run`")
    p.add_argument("--data", required=True, type=Path, help="DATA folder (metadata.csv for locations, test.csv for the id list)")
    p.add_argument("--features", required=True, type=Path, help="FEATURES folder")
    p.add_argument("--split", default="test", help="FEATURES split to tag (default: test)")
    p.add_argument("--out", required=True, type=Path, help="submission file to write (.csv.zip)")
    p.add_argument("--probs", type=Path, help="also save the final per-tag probabilities (.npy, rows in the features' id order)")
    p.set_defaults(func=_predict)

    p = sub.add_parser("evaluate", help="score a submission against a solution file, leaderboard-style")
    p.add_argument("--submission", required=True, type=Path, help="submission .csv.zip or .csv")
    p.add_argument("--solution", required=True, type=Path, help="solution CSV: gridimage_id, tag columns, optional Usage")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("demo", help="build a small synthetic competition, run the kit on it and score it")
    p.add_argument("--work", type=Path, default=Path("work/demo"), help="work folder (default: work/demo)")
    p.add_argument("--train", type=int, default=800, help="training photos (default: 800)")
    p.add_argument("--test", type=int, default=200, help="test photos (default: 200)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)

    _add_heads(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, SubmissionError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
