"""The Kaggle verbs: `kernels render|push`, `submit`, `dataset prepare`: their options and calls."""
from __future__ import annotations

from pathlib import Path

from ..competition import COMPETITION


def _kernels_render(args) -> int:
    from .render import render_all, username_from

    username = username_from(args.username)
    for folder in render_all(args.kernels, args.out, username, args.names or None):
        print(f"rendered {folder}")
    if username is None:
        print("note: no Kaggle user name (set KAGGLE_USERNAME or pass --username), so the kernel ids keep"
              " '{username}'; fine for running the scripts, needed before a push")
    return 0


def _kernels_push(args) -> int:
    from .command import CREDENTIALS_HELP, KaggleSetupError, cli_command, credential_source, push_kernel
    from .render import load_kernel, package_dir, render, username_from

    kernel = load_kernel(args.kernels / args.name)
    username = username_from(args.username)
    if username is None:
        raise KaggleSetupError("set KAGGLE_USERNAME to your Kaggle user name (or pass --username): it goes into the"
                               f" kernel's id, {kernel.metadata['id']!r}")
    if kernel.verb is not None and kernel.verb not in args.verbs:  # args.verbs: the command line's (cli.py)
        raise KaggleSetupError(f"kernel {kernel.name!r} drives `geocontext {kernel.verb}`, which this checkout does not"
                               f" have yet (verbs: {', '.join(args.verbs)}); it would fail on Kaggle")
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
    from .command import submit

    return submit(args.file, args.message, args.data, args.competition, args.dry_run)


def _dataset_prepare(args) -> int:
    from .dataset import prepare
    from .render import username_from

    info = prepare(args.features, args.out, username_from(args.username), args.metadata)
    print(f"prepared {info['folder']}: {', '.join(f'{s} {n} rows' for s, n in info['rows'].items())},"
          f" {info['bytes'] / 1e6:.1f} MB, encoder {' / '.join(sorted(set(map(str, info['encoder'].values()))))};"
          f" blocks {', '.join(next(iter(info['blocks'].values())))}")
    if info["needs_username"]:
        print("note: the dataset id still reads '{username}'; set KAGGLE_USERNAME (or --username) and prepare again")
    print(f"publish it:   kaggle datasets create -p {info['folder']} --dir-mode tar      (first time; private)\n"
          f"new version:  kaggle datasets version -p {info['folder']} --dir-mode tar -m \"what changed\"")
    return 0


def add_parser(sub) -> None:
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
    p.add_argument("--file", "--submission", dest="file", required=True, type=Path,
                   help="the .csv.zip to submit (--submission: the same, as `evaluate` spells it)")
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
