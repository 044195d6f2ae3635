"""The verbs of a run: `run`, `predict`, `check`, `evaluate`, `leaderboard`, `report`, `heads import`:
their options and the one call each makes."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError

ACCEPT_MISSING = ("go on when more than 1%% of a split's photos are missing (no finite image embedding); they are"
                  " treated as missing photos")


def _features(given: list[Path]):
    """--features, repeatable: one folder as a path, several as a list (their blocks read together)."""
    return given[0] if len(given) == 1 else given


def _run(args) -> int:
    from .config import RunConfig
    from .run import run

    config = RunConfig.load(args.config, seed=args.seed, neighbours=False if args.no_neighbours else None)
    run(args.data, _features(args.features), args.out, config, with_runs=args.with_runs,
        accept_missing=args.accept_missing)
    return 0


def _predict(args) -> int:
    from .predict import predict

    predict(args.run, args.data, _features(args.features), args.out, args.probs, args.split, args.accept_missing)
    return 0


def _check(args) -> int:
    from .check import check

    problems = check(args.data, args.features and _features(args.features), args.accept_missing)["problems"]
    if problems:
        more = f" (and {len(problems) - 1} more, above)" if len(problems) > 1 else ""
        raise DataError(f"a run would stop: {problems[0]}{more}")
    return 0


def _evaluate(args) -> int:
    from .evaluate import evaluate

    print(json.dumps(evaluate(args.submission, args.solution)))
    return 0


def _leaderboard(args) -> int:
    from .reports.leaderboard import collect, format_table

    args.runs = [*args.runs, *args.run_options]
    if not args.runs:
        raise ValueError("leaderboard needs at least one run folder: leaderboard RUN [RUN ...] (or --run RUN)")
    rows = collect(args.runs)
    rows = [r for r in rows if r["final"]] if args.final else rows
    print(json.dumps(rows[: args.top], indent=2) if args.json else format_table(rows[: args.top]))
    if args.html:
        from .reports.compare import write_comparison

        print(f"comparison: {write_comparison(args.runs, args.html, rows[: args.top])}")
    return 0


def _report(args) -> int:
    from .reports.html_report import write_html_report

    write_html_report(args.run, args.data, args.photos)
    return 0


def _heads_import(args) -> int:
    from .config import RunConfig
    from .published import import_heads

    import_heads(args.paths, args.out, args.data, args.features, RunConfig.load(args.config, seed=args.seed),
                 args.accept_missing)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="train the default variants, decode, write OUT/submission.csv.zip and report.json")
    p.add_argument("--data", required=True, type=Path, help="DATA folder in the competition's layout")
    p.add_argument("--features", required=True, type=Path, action="append", help="FEATURES folder (train/ and"
                   " test/); repeat it to read the blocks of several folders made for the same ids (the default"
                   " variants then fuse every image and title block found)")
    p.add_argument("--out", required=True, type=Path, help="run folder to write")
    p.add_argument("--config", type=Path, help="JSON run configuration (variants, hold-out, ...)")
    p.add_argument("--seed", type=int, help="seed of the hold-out split")
    p.add_argument("--no-neighbours", action="store_true", help="leave out everything that reads upload order: the"
                   " id-neighbour block of every variant and the neighbour-set decoder (config: \"neighbours\": false)")
    p.add_argument("--with", dest="with_runs", nargs="+", type=Path, default=[], metavar="RUN",
                   help="also use the variants of these run folders (e.g. imported published heads) as ensemble members")
    p.add_argument("--accept-missing", action="store_true", help=ACCEPT_MISSING)
    p.set_defaults(func=_run)

    p = sub.add_parser("predict", help="tag another set of photos with a finished run (no retraining)")
    p.add_argument("--run", required=True, type=Path, help="OUT folder of a finished `run`")
    p.add_argument("--data", required=True, type=Path, help="DATA folder (metadata.csv for locations, test.csv for the id list)")
    p.add_argument("--features", required=True, type=Path, action="append",
                   help="FEATURES folder; repeat it as the run was given it (several folders' blocks together)")
    p.add_argument("--split", default="test", help="FEATURES split to tag (default: test)")
    p.add_argument("--out", required=True, type=Path, help="submission file to write (.csv.zip)")
    p.add_argument("--probs", type=Path, help="also save the final per-tag probabilities (.npy, rows in the features' id order)")
    p.add_argument("--accept-missing", action="store_true", help=ACCEPT_MISSING)
    p.set_defaults(func=_predict)

    p = sub.add_parser("check", help="read and check DATA (and FEATURES) as a run would, train nothing, print one summary",
                       description="Run every reader and validator a run uses, without training: rows per split,"
                       " missing photos, non-finite feature rows, unknown and malformed grid references, malformed"
                       " metadata lines, tag columns. Exits 2 when a run would stop.")
    p.add_argument("--data", required=True, type=Path, help="DATA folder in the competition's layout")
    p.add_argument("--features", type=Path, action="append", help="FEATURES folder (train/ and test/) to check too;"
                   " repeat it as `run` is given it")
    p.add_argument("--accept-missing", action="store_true", help="judge as a run with --accept-missing would")
    p.set_defaults(func=_check)

    p = sub.add_parser("evaluate", help="score a submission against a solution file, leaderboard-style")
    p.add_argument("--submission", "--file", dest="submission", required=True, type=Path,
                   help="submission .csv.zip or .csv (--file: the same, as `submit` spells it)")
    p.add_argument("--solution", required=True, type=Path, help="solution CSV: gridimage_id, tag columns, optional Usage")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("leaderboard", help="rank the candidates of run folders by honest hold-out exact match")
    p.add_argument("runs", nargs="*", type=Path, metavar="RUN", help="run folders (OUT of `run`)")
    p.add_argument("--run", dest="run_options", action="append", type=Path, default=[], metavar="RUN",
                   help="a run folder, as the other verbs name it (repeatable; the same as RUN)")
    p.add_argument("--top", type=int, default=30, help="rows to show (default: 30)")
    p.add_argument("--final", action="store_true", help="only each run's final choice")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--html", type=Path, metavar="FILE", help="also write FILE, an HTML page comparing the runs side"
                   " by side (scores, per-tag F1, links to each run's report.html)")
    p.set_defaults(func=_leaderboard)

    p = sub.add_parser("report", help="rebuild OUT/report.html (where a finished run fails, with photos); no retraining",
                       description="Rebuild a finished run's report.html from what `run` saved (report.json,"
                       " holdout.npz, the members' hold-out probabilities): scores, per-tag precision/recall/F1,"
                       " tag confusion, calibration, set sizes and, when DATA holds the photos, a gallery per tag.")
    p.add_argument("--run", required=True, type=Path, help="OUT folder of a finished `run`")
    p.add_argument("--data", type=Path, help="DATA folder with train_images/ and metadata.csv (default: the run's own)")
    p.add_argument("--photos", type=int, default=8, help="photos per tag for each of right, missed, wrongly added"
                   " (default: 8)")
    p.set_defaults(func=_report)

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
    q.add_argument("--accept-missing", action="store_true", help=ACCEPT_MISSING)
    q.set_defaults(func=_heads_import)
