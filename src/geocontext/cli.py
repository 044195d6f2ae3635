"""The command line: `python -m geocontext VERB ...`.

Each package owns its verbs: `<package>/verbs.py` adds their parsers and holds the handlers (each a thin
call into one module). This file only lists those modules, in the order `--help` shows them, and turns
input errors into one line and exit 2. To add a verb to a package, open its verbs.py; for a package
that has none yet, write one with `add_parser(sub)` and add it to VERBS.
"""
from __future__ import annotations

import argparse
import shlex
import sys

from . import threads
from .embedding import verbs as embedding_verbs
from .errors import DataError, SubmissionError
from .kaggle import verbs as kaggle_verbs
from .labeller import verbs as labeller_verbs
from .pipeline import verbs as pipeline_verbs
from .synthetic import verbs as synthetic_verbs
from .typetags import verbs as typetags_verbs
from .writing import full_reason

VERBS = (
    embedding_verbs,  # embed (+ embed merge)
    pipeline_verbs,  # run, predict, check, evaluate, leaderboard, report, heads import
    kaggle_verbs,  # kernels render|push, submit, dataset prepare
    typetags_verbs,  # types train|evaluate|predict
    labeller_verbs,  # label types|context
    synthetic_verbs,  # demo
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="geocontext", description="Tag Geograph landscape photos with the"
                                     " competition's 49 context tags. `geocontext VERB --help` explains each verb.")
    parser.add_argument("--threads", type=int, help=f"CPU threads for torch (default: ${threads.ENV}, else the cores"
                        " this process may use: its CPU affinity, capped by its container's CPU quota)")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for package in VERBS:
        package.add_parser(sub)
    parser.set_defaults(verbs=tuple(sub.choices))  # handlers that check another verb exists (kernels push) read it
    return parser


def verbs() -> tuple[str, ...]:
    """The verbs this build of the kit has."""
    return build_parser().get_default("verbs")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        threads.configure(args.threads)
        return args.func(args)
    except (DataError, SubmissionError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a full disk where no writer said it first (writing.writing): still one line
        reason = full_reason(exc)
        if reason is None:
            raise
        print(f"error: {getattr(exc, 'filename', None) or 'an output'}: {reason}; free some space, then run the"
              " same command again", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def check_verb(verb: str) -> None:
    """For a Kaggle kernel: fail at once, not after an hour of setup, when the vendored core lacks its verb."""
    from .kaggle.runtime import KernelError

    if verb not in verbs():
        raise KernelError(f"this kernel's geocontext core has no `{verb}` verb (it has {', '.join(verbs())});"
                          f" render the kernel again (make kernels) from a checkout that has it")


def call(verb: str, argv: list[str], dry_run: bool = False) -> int:
    """For a Kaggle kernel: `geocontext VERB ARGV...`, through the command line (the kit's stable interface)."""
    print("$ geocontext " + shlex.join([verb, *argv]), flush=True)
    check_verb(verb)
    return 0 if dry_run else main([verb, *argv])
