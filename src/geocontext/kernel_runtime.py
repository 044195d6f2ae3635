"""What a Kaggle kernel needs around the kit: find its inputs, pick its working folder, call a verb.

Kaggle mounts what a kernel has attached (the competition, datasets, other kernels' outputs) under
/kaggle/input and keeps what it writes in /kaggle/working. The mount paths have changed over the
years (/kaggle/input/<slug>, /kaggle/input/competitions/<slug>, ...), so inputs are recognised by
what they hold, not by their names:
  DATA      a folder with train.csv[.zip] and test.csv[.zip] (the competition's layout)
  FEATURES  a folder with train/meta.json and test/meta.json (see geocontext.features)
Every path can be given instead, as an argument or an environment variable (GEOCONTEXT_INPUT,
GEOCONTEXT_WORKING, GEOCONTEXT_DATA, GEOCONTEXT_FEATURES), so the same script runs locally against
a DATA folder. Kernel entry scripts (kernels/<name>/) use this module; it is vendored with the core.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

COMPETITION = "predict-geographic-context-from-landscape-photos"
KAGGLE_INPUT = Path("/kaggle/input")
KAGGLE_WORKING = Path("/kaggle/working")
ENV = {"input": "GEOCONTEXT_INPUT", "working": "GEOCONTEXT_WORKING", "data": "GEOCONTEXT_DATA",
       "features": "GEOCONTEXT_FEATURES"}
SEARCH_DEPTH = 3  # /kaggle/input/competitions/<slug>/ is two levels down; one more for nested uploads
_PHOTO_FOLDERS = "_images"  # {split}_images/: hundreds of subfolders of photos, never searched


class KernelError(DataError):
    """A kernel cannot start: an input is missing or ambiguous, or the vendored core lacks a verb."""


def is_data(folder: Path) -> bool:
    return (any((folder / n).is_file() for n in ("train.csv", "train.csv.zip"))
            and any((folder / n).is_file() for n in ("test.csv", "test.csv.zip")))


def is_features(folder: Path) -> bool:
    return all((folder / split / "meta.json").is_file() for split in ("train", "test"))


def search(root: Path, accept, what: str, option: str, prefer: str | None = None) -> Path:
    """The one folder under `root` (itself included, SEARCH_DEPTH levels down) that `accept`s.

    Several matches are an error unless exactly one has `prefer` among its path parts: a kernel
    must not silently pick one of two attached FEATURES folders."""
    found, level = [], [root]
    for depth in range(SEARCH_DEPTH + 1):
        below = []
        for folder in level:
            if accept(folder):
                found.append(folder)  # a match is not searched further: its subfolders are its own
            elif depth < SEARCH_DEPTH:
                try:
                    below += sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.endswith(_PHOTO_FOLDERS))
                except OSError:
                    pass  # unreadable mounts are not inputs
        level = below
    if len(found) > 1 and prefer is not None:
        preferred = [f for f in found if prefer in f.parts]
        found = preferred if len(preferred) == 1 else found
    env = ENV[option]
    if not found:
        raise KernelError(f"{root}: no {what} found (searched {SEARCH_DEPTH} levels down); attach it to the"
                          f" kernel, or pass --{option} PATH (or set {env})")
    if len(found) > 1:
        raise KernelError(f"{root}: {len(found)} {what} folders found ({', '.join(map(str, found[:5]))});"
                          f" choose one with --{option} PATH (or {env})")
    return found[0]


@dataclass(frozen=True)
class KernelPaths:
    data: Path
    features: Path | None  # None for kernels that make FEATURES rather than read them
    working: Path


def argument_parser(description: str | None, features: bool) -> argparse.ArgumentParser:
    """The options every kernel shares; arguments it does not know are passed on to its verb."""
    # No abbreviations: `--work` meant for a verb must not be taken for this parser's `--working`.
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--input", type=Path, help=f"where attached inputs are searched (default: ${ENV['input']},"
                        f" else {KAGGLE_INPUT} when it exists)")
    parser.add_argument("--working", type=Path, help=f"folder the kernel writes (default: ${ENV['working']}, else"
                        f" {KAGGLE_WORKING} when it exists, else ./work/kernels/<kernel>)")
    parser.add_argument("--data", type=Path, help=f"DATA folder (default: ${ENV['data']}, else found under --input)")
    if features:
        parser.add_argument("--features", type=Path,
                            help=f"FEATURES folder (default: ${ENV['features']}, else found under --input)")
    parser.add_argument("--dry-run", action="store_true", help="print the paths and the command, run nothing")
    return parser


def _given(value: Path | None, option: str) -> Path | None:
    if value is not None:
        return value
    env = os.environ.get(ENV[option], "").strip()
    return Path(env) if env else None


def resolve(args: argparse.Namespace, kernel: str) -> KernelPaths:
    """Paths from arguments, then environment, then what Kaggle has mounted."""
    root = _given(args.input, "input") or (KAGGLE_INPUT if KAGGLE_INPUT.is_dir() else None)
    working = _given(args.working, "working") or (KAGGLE_WORKING if KAGGLE_WORKING.is_dir()
                                                   else Path("work") / "kernels" / kernel)

    def find(option: str, accept, what: str, prefer: str | None) -> Path:
        given = _given(getattr(args, option), option)
        if given is not None:
            if not accept(given):
                raise KernelError(f"{given}: not a {what} folder (given by --{option} or {ENV[option]})")
            return given
        if root is None:
            raise KernelError(f"no {what} folder: pass --{option} PATH (or set {ENV[option]}); on Kaggle, attach it"
                              f" to the kernel so it appears under {KAGGLE_INPUT}")
        return search(root, accept, what, option, prefer)

    data = find("data", is_data, "competition DATA", COMPETITION)
    features = find("features", is_features, "FEATURES", None) if hasattr(args, "features") else None
    return KernelPaths(data, features, working)


def describe(paths: KernelPaths) -> None:
    import geocontext

    print(f"geocontext {geocontext.__version__} from {Path(geocontext.__file__).parent}", flush=True)
    for name in ("data", "features", "working"):
        value = getattr(paths, name)
        if value is not None:
            print(f"  {name}: {value}", flush=True)


def check_verb(verb: str) -> None:
    """Fail at once, not after an hour of setup, when the vendored core lacks the kernel's verb."""
    from .cli import verbs

    if verb not in verbs():
        raise KernelError(f"this kernel's geocontext core has no `{verb}` verb (it has {', '.join(verbs())});"
                          f" render the kernel again (make kernels) from a checkout that has it")


def call(verb: str, argv: list[str], dry_run: bool = False) -> int:
    """`geocontext VERB ARGV...`, through the kit's command line (its stable interface)."""
    from .cli import main

    print("$ geocontext " + shlex.join([verb, *argv]), flush=True)
    check_verb(verb)
    return 0 if dry_run else main([verb, *argv])


def main_guard(main) -> int:
    """Run a kernel's main(); input errors end it with their message, not a traceback."""
    try:
        return main()
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(main) -> None:
    """A kernel's last line: a failure exits with its code; success simply returns (a runner that
    executes scripts inside IPython would show SystemExit(0) as an error)."""
    rc = main_guard(main)
    if rc:
        raise SystemExit(rc)
