"""The command line: `python -m geocontext VERB ...`. Each verb is a thin call into one module."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import DataError, SubmissionError


def _features(given: list[Path]):
    """--features, repeatable: one folder as a path, several as a list (their blocks read together)."""
    return given[0] if len(given) == 1 else given


def _run(args) -> int:
    from .pipeline.config import RunConfig
    from .pipeline.run import run

    config = RunConfig.from_file(args.config) if args.config else RunConfig()
    if args.seed is not None:
        config.seed = args.seed
    run(args.data, _features(args.features), args.out, config, with_runs=args.with_runs,
        accept_missing=args.accept_missing)
    return 0


def _predict(args) -> int:
    from .pipeline.predict import predict

    predict(args.run, args.data, _features(args.features), args.out, args.probs, args.split, args.accept_missing)
    return 0


def _check(args) -> int:
    from .pipeline.check import check

    problems = check(args.data, args.features and _features(args.features), args.accept_missing)["problems"]
    if problems:
        more = f" (and {len(problems) - 1} more, above)" if len(problems) > 1 else ""
        raise DataError(f"a run would stop: {problems[0]}{more}")
    return 0


def _evaluate(args) -> int:
    from .pipeline.evaluate import evaluate

    result = evaluate(args.submission, args.solution)
    print(json.dumps(result))
    return 0


def _leaderboard(args) -> int:
    from .pipeline.leaderboard import collect, format_table

    rows = collect(args.runs)
    rows = [r for r in rows if r["final"]] if args.final else rows
    print(json.dumps(rows[: args.top], indent=2) if args.json else format_table(rows[: args.top]))
    if args.html:
        from .pipeline.compare import write_comparison

        print(f"comparison: {write_comparison(args.runs, args.html, rows[: args.top])}")
    return 0


def _report(args) -> int:
    from .pipeline.html_report import write_html_report

    write_html_report(args.run, args.data, args.photos)
    return 0


def _demo(args) -> int:
    from .synthetic.demo import main as demo

    demo(args.work, args.train, args.test, args.seed)
    return 0


def _add_embed_verb(sub) -> None:
    """`embed` (photos + titles -> FEATURES, resumable, shardable) and `embed merge` (shard outputs -> FEATURES)."""

    def embed(args) -> int:
        from .embedding.options import encoder_config
        from .embedding.pipeline import EmbedConfig, embed, parse_kinds, parse_shard, parse_splits

        if args.data is None or args.out is None:
            raise ValueError("embed needs --data DATA and --out FEATURES (or: embed merge ...)")
        config = EmbedConfig(encoder_config(args), args.batch_size, args.workers, args.chunk_size, parse_shard(args.shard),
                             args.title_encoder, parse_kinds(args.blocks), args.accept_missing)
        embed(args.data, args.out, parse_splits(args.split), config)
        return 0

    def merge(args) -> int:
        from .embedding.pipeline import merge, parse_splits

        merge(args.data, args.out, args.inputs or None, parse_splits(args.split) if args.split else None)
        return 0

    p = sub.add_parser("embed", help="embed photos and titles with open_clip into a FEATURES folder (resumable, shardable)",
                       description="Embed DATA's photos and titles with an open_clip CLIP model into FEATURES. Work is"
                       " saved in chunks: re-running the same command resumes. `embed merge` joins --shard outputs.")
    p.add_argument("--data", type=Path, help="DATA folder in the competition's layout (required)")
    p.add_argument("--out", type=Path, help="FEATURES folder to write (required)")
    p.add_argument("--split", default="all", help="train, test or all (default: all)")
    from .embedding.options import add_encoder_options

    add_encoder_options(p)
    p.add_argument("--title-encoder", help="sentence-transformers:NAME_OR_FOLDER (e.g. all-MiniLM-L6-v2, or a saved"
                   " model's folder offline) embeds the titles instead of the open_clip text tower")
    p.add_argument("--blocks", default="image,title", help="blocks to make: image, title or image,title (default);"
                   " into an existing FEATURES folder they are added beside its other blocks")
    p.add_argument("--workers", type=int, help="JPEG-decoding worker processes (default: one per spare core, at most 8)")
    p.add_argument("--shard", default="1/1", help="I/N: embed the I-th of N slices (N machines in parallel)")
    p.add_argument("--chunk-size", type=int, default=2048, help="photos per chunk file (default: 2048); all shards"
                   " of one FEATURES folder must use the same")
    p.add_argument("--accept-missing", action="store_true", help="go on when more than 1%% of a split's photos are"
                   " in neither {split}_images/ nor extra_images/ (they are embedded as missing)")
    p.set_defaults(func=embed)
    actions = p.add_subparsers(dest="embed_action", metavar="merge")
    m = actions.add_parser("merge", help="join embedding outputs (e.g. one per --shard) into one FEATURES folder",
                           description="Join the chunks of embedding outputs into FEATURES/{train,test}/, checking"
                           " that every chunk is there and the ids match DATA's lists.")
    m.add_argument("--data", type=Path, required=True, help="DATA folder the embeddings were made from")
    m.add_argument("--out", type=Path, required=True, help="FEATURES folder to write")
    m.add_argument("--split", help="train, test or all (default: every split that has chunks)")
    m.add_argument("inputs", nargs="*", type=Path, help="embedding outputs (--out of each shard); default: --out itself")
    m.set_defaults(func=merge)


def _heads_import(args) -> int:
    from .pipeline.config import RunConfig
    from .pipeline.published import import_heads

    config = RunConfig.from_file(args.config) if args.config else RunConfig()
    if args.seed is not None:
        config.seed = args.seed
    import_heads(args.paths, args.out, args.data, args.features, config, args.accept_missing)
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
    q.add_argument("--accept-missing", action="store_true", help=_ACCEPT_MISSING)
    q.set_defaults(func=_heads_import)


_ACCEPT_MISSING = ("go on when more than 1%% of a split's photos are missing (no finite image embedding); they are"
                   " treated as missing photos")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="geocontext", description="Tag Geograph landscape photos with the"
                                     " competition's 49 context tags. `geocontext VERB --help` explains each verb.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("run", help="train the default variants, decode, write OUT/submission.csv.zip and report.json")
    p.add_argument("--data", required=True, type=Path, help="DATA folder in the competition's layout")
    p.add_argument("--features", required=True, type=Path, action="append", help="FEATURES folder (train/ and"
                   " test/); repeat it to read the blocks of several folders made for the same ids (the default"
                   " variants then fuse every image and title block found)")
    p.add_argument("--out", required=True, type=Path, help="run folder to write")
    p.add_argument("--config", type=Path, help="JSON run configuration (variants, hold-out, ...)")
    p.add_argument("--seed", type=int, help="seed of the hold-out split")
    p.add_argument("--with", dest="with_runs", nargs="+", type=Path, default=[], metavar="RUN",
                   help="also use the variants of these run folders (e.g. imported published heads) as ensemble members")
    p.add_argument("--accept-missing", action="store_true", help=_ACCEPT_MISSING)
    p.set_defaults(func=_run)

    p = sub.add_parser("predict", help="tag another set of photos with a finished run (no retraining)")
    p.add_argument("--run", required=True, type=Path, help="OUT folder of a finished `run`")
    p.add_argument("--data", required=True, type=Path, help="DATA folder (metadata.csv for locations, test.csv for the id list)")
    p.add_argument("--features", required=True, type=Path, action="append",
                   help="FEATURES folder; repeat it as the run was given it (several folders' blocks together)")
    p.add_argument("--split", default="test", help="FEATURES split to tag (default: test)")
    p.add_argument("--out", required=True, type=Path, help="submission file to write (.csv.zip)")
    p.add_argument("--probs", type=Path, help="also save the final per-tag probabilities (.npy, rows in the features' id order)")
    p.add_argument("--accept-missing", action="store_true", help=_ACCEPT_MISSING)
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
    p.add_argument("--submission", required=True, type=Path, help="submission .csv.zip or .csv")
    p.add_argument("--solution", required=True, type=Path, help="solution CSV: gridimage_id, tag columns, optional Usage")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("leaderboard", help="rank the candidates of run folders by honest hold-out exact match")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders (OUT of `run`)")
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

    _add_kaggle_verbs(sub)

    p = sub.add_parser("demo", help="build a small synthetic competition, run the kit on it and score it")
    p.add_argument("--work", type=Path, default=Path("work/demo"), help="work folder (default: work/demo)")
    p.add_argument("--train", type=int, default=800, help="training photos (default: 800)")
    p.add_argument("--test", type=int, default=200, help="test photos (default: 200)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)

    from .typetags.verbs import (
        add_parser as add_types_parser,  # `types`: the Geograph type-tag classifier
    )

    add_types_parser(sub)
    from .labeller.verbs import (
        add_parser as add_label_parser,  # `label`: workers for Geograph's queue
    )

    add_label_parser(sub)
    _add_heads(sub)
    _add_embed_verb(sub)
    return parser


def verbs() -> tuple[str, ...]:
    """The verbs this build of the kit has (a kernel checks for its own before it starts)."""
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return tuple(action.choices)


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


# ---- Kaggle: render and push kernels, prepare the shared dataset, submit (kernels, kaggle_cli, kaggle_dataset) ----

def _kernels_render(args) -> int:
    from .kaggle.render import render_all, username_from

    username = username_from(args.username)
    for folder in render_all(args.kernels, args.out, username, args.names or None):
        print(f"rendered {folder}")
    if username is None:
        print("note: no Kaggle user name (set KAGGLE_USERNAME or pass --username), so the kernel ids keep"
              " '{username}'; fine for running the scripts, needed before a push")
    return 0


def _kernels_push(args) -> int:
    from .kaggle.command import (
        CREDENTIALS_HELP,
        KaggleSetupError,
        cli_command,
        credential_source,
        push_kernel,
    )
    from .kaggle.render import load_kernel, package_dir, render, username_from

    kernel = load_kernel(args.kernels / args.name)
    username = username_from(args.username)
    if username is None:
        raise KaggleSetupError("set KAGGLE_USERNAME to your Kaggle user name (or pass --username): it goes into the"
                               f" kernel's id, {kernel.metadata['id']!r}")
    if kernel.verb is not None and kernel.verb not in verbs():
        raise KaggleSetupError(f"kernel {kernel.name!r} drives `geocontext {kernel.verb}`, which this checkout does not"
                               f" have yet (verbs: {', '.join(verbs())}); it would fail on Kaggle")
    cli_command()
    if credential_source() is None:
        raise KaggleSetupError(CREDENTIALS_HELP)
    folder = render(kernel, args.out, username, package_dir())
    rc = push_kernel(folder)
    if rc == 0:
        ref = f"{username}/{kernel.slug}"
        print(f"follow it:      kaggle kernels status {ref}\n"
              f"its output:     kaggle kernels output {ref} -p work/kaggle/{kernel.name}")
    return rc


def _submit(args) -> int:
    from .kaggle.command import submit

    return submit(args.file, args.message, args.data, args.competition, args.dry_run)


def _dataset_prepare(args) -> int:
    from .kaggle.dataset import prepare
    from .kaggle.render import username_from

    info = prepare(args.features, args.out, username_from(args.username), args.metadata)
    print(f"prepared {info['folder']}: {', '.join(f'{s} {n} rows' for s, n in info['rows'].items())},"
          f" {info['bytes'] / 1e6:.1f} MB, encoder {' / '.join(sorted(set(map(str, info['encoder'].values()))))};"
          f" blocks {', '.join(next(iter(info['blocks'].values())))}")
    if info["needs_username"]:
        print("note: the dataset id still reads '{username}'; set KAGGLE_USERNAME (or --username) and prepare again")
    print(f"publish it:   kaggle datasets create -p {info['folder']} --dir-mode tar      (first time; private)\n"
          f"new version:  kaggle datasets version -p {info['folder']} --dir-mode tar -m \"what changed\"")
    return 0


def _add_kaggle_verbs(sub) -> None:
    from .competition import COMPETITION

    p = sub.add_parser("kernels", help="render Kaggle kernels (kernels/<name>/ -> build/kernels/<name>/), push one")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, helptext in (("render", "render kernels: one self-contained script + kernel-metadata.json each"),
                           ("push", "render one kernel and `kaggle kernels push` it")):
        a = actions.add_parser(name, help=helptext)
        if name == "render":
            a.add_argument("names", nargs="*", help="kernels to render (default: all)")
            a.set_defaults(func=_kernels_render)
        else:
            a.add_argument("name", help="the kernel to push (a folder name under --kernels)")
            a.set_defaults(func=_kernels_push)
        a.add_argument("--kernels", type=Path, default=Path("kernels"), help="kernel sources (default: kernels)")
        a.add_argument("--out", type=Path, default=Path("build/kernels"), help="rendered kernels (default: build/kernels)")
        a.add_argument("--username", help="Kaggle user name for the kernel ids (default: $KAGGLE_USERNAME)")

    p = sub.add_parser("submit", help="validate a submission file like the writer does, then `kaggle competitions submit` it")
    p.add_argument("--file", required=True, type=Path, help="the .csv.zip to submit")
    p.add_argument("--message", required=True, help="the submission's description on the leaderboard")
    p.add_argument("--data", type=Path, help="folder with the competition's test.csv (and train.csv for the column"
                   " order); default: data/, else ../shared/data/kaggle-competition")
    p.add_argument("--competition", default=COMPETITION, help=f"competition slug (default: {COMPETITION})")
    p.add_argument("--dry-run", action="store_true", help="validate and show the command, submit nothing")
    p.set_defaults(func=_submit)

    p = sub.add_parser("dataset", help="prepare the FEATURES folder as a Kaggle dataset (dataset-metadata.json)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("prepare", help="check FEATURES and lay it out with its metadata for `kaggle datasets`")
    a.add_argument("--features", required=True, type=Path, help="FEATURES folder to publish")
    a.add_argument("--out", type=Path, default=Path("build/dataset"), help="folder to prepare (default: build/dataset)")
    a.add_argument("--metadata", type=Path, default=Path("dataset-metadata.json"),
                   help="dataset metadata template (default: dataset-metadata.json)")
    a.add_argument("--username", help="Kaggle user name for the dataset id (default: $KAGGLE_USERNAME)")
    a.set_defaults(func=_dataset_prepare)
