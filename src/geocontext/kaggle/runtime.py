"""What a Kaggle kernel needs around the kit: find its inputs, pick its working folder, call a verb.

Kaggle mounts what a kernel has attached (the competition, datasets, other kernels' outputs) under
/kaggle/input and keeps what it writes in /kaggle/working. The mount paths have changed over the
years (/kaggle/input/<slug>, /kaggle/input/competitions/<slug>, ...), so inputs are recognised by
what they hold, not by their names:
  DATA      a folder with train.csv[.zip] and test.csv[.zip] (the competition's layout)
  FEATURES  a folder with train/meta.json and test/meta.json (the FEATURES contract, geocontext.embedding.features)
  TYPES     a .jsonl or .jsonl.gz file whose first lines are JSON objects with gridimage_id and embeddings
            (a types dataset, see geocontext.typetags.reader; gzip is recognised by its first bytes, so a
            compressed file named .jsonl or a plain one named .jsonl.gz is read as what it is)
Every path can be given instead, as an argument or an environment variable (GEOCONTEXT_INPUT,
GEOCONTEXT_WORKING, GEOCONTEXT_DATA, GEOCONTEXT_FEATURES, GEOCONTEXT_TYPES), so the same script runs
locally against a DATA folder or a types file. Kernel entry scripts (kernels/<name>/) use this
module, and `geocontext.cli.call` to run their verb; both are vendored with the core.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..competition import COMPETITION
from ..compressed import STREAM_ERRORS, LineSource
from ..errors import DataError

KAGGLE_INPUT = Path("/kaggle/input")
KAGGLE_WORKING = Path("/kaggle/working")
ENV = {"input": "GEOCONTEXT_INPUT", "working": "GEOCONTEXT_WORKING", "data": "GEOCONTEXT_DATA",
       "features": "GEOCONTEXT_FEATURES", "types": "GEOCONTEXT_TYPES"}
SEARCH_DEPTH = 3  # /kaggle/input/competitions/<slug>/ is two levels down; one more for nested uploads
_PHOTO_FOLDERS = "_images"  # {split}_images/: hundreds of subfolders of photos, never searched
TYPES_FIELDS = ("gridimage_id", "embeddings")  # what training and prediction both need; types/split only the former
TYPES_SUFFIXES = (".jsonl", ".jsonl.gz")  # looked at before the content: other files are not opened
_SNIFF_LINES = 5  # non-blank lines looked at; the reader skips malformed lines, so one of the first few must do
_SNIFF_BYTES = 1 << 20  # a line is ~3 kB (512 float32 in base64); never read a huge file to find its end


class KernelError(DataError):
    """A kernel cannot start: an input is missing or ambiguous, or the vendored core lacks a verb."""


def is_data(folder: Path) -> bool:
    return (any((folder / n).is_file() for n in ("train.csv", "train.csv.zip"))
            and any((folder / n).is_file() for n in ("test.csv", "test.csv.zip")))


def is_features(folder: Path) -> bool:
    return all((folder / split / "meta.json").is_file() for split in ("train", "test"))


def is_types_dataset(path: Path) -> bool:
    """A .jsonl or .jsonl.gz file one of whose first few non-blank lines (decompressed when the file is
    gzip, whatever its name) is a JSON object with TYPES_FIELDS.

    Only those lines are read: what is attached under /kaggle/input may be gigabytes."""
    if not path.name.lower().endswith(TYPES_SUFFIXES) or not path.is_file():
        return False
    try:
        with LineSource(path) as source:
            lines = (source.readline(_SNIFF_BYTES) for _ in range(100 * _SNIFF_LINES))  # EOF reads as b"", blank
            first = list(itertools.islice((raw for raw in lines if raw.strip()), _SNIFF_LINES))
    except (OSError, DataError, *STREAM_ERRORS):
        return False  # unreadable, otherwise compressed, or broken at the start: not an input
    return any(_has_types_fields(raw) for raw in first)


def _has_types_fields(raw: bytes) -> bool:
    try:
        record = json.loads(raw)
    except ValueError:  # malformed JSON, or not UTF-8
        return False
    return isinstance(record, dict) and all(k in record for k in TYPES_FIELDS)


@dataclass(frozen=True)
class Input:
    """An input a kernel can be given: --option PATH (or ENV[option]), else found under the input folder."""

    option: str
    what: str  # what it is, in messages: "no {what} found"
    looks: str  # how it is recognised, in messages
    accept: Callable[[Path], bool]  # a file input's refuses folders, and looks at the name before the content
    file: bool = False  # a file in the searched folders rather than a folder
    prefer: str | None = None  # among several matches, the one with this path part wins (if only one has it)

    @property
    def noun(self) -> str:
        return "file" if self.file else "folder"


INPUTS = {i.option: i for i in (
    Input("data", "competition DATA", "a folder with train.csv[.zip] and test.csv[.zip]", is_data, prefer=COMPETITION),
    Input("features", "FEATURES", "a folder with train/meta.json and test/meta.json", is_features),
    Input("types", "types dataset", "a .jsonl or .jsonl.gz file whose first lines are JSON objects with"
          f" {' and '.join(TYPES_FIELDS)}", is_types_dataset, file=True),
)}


def search(root: Path, spec: Input) -> Path:
    """The one folder under `root` (itself included, SEARCH_DEPTH levels down) that `spec` accepts, or
    for a file input the one file in those folders.

    Several matches are an error unless exactly one has `spec.prefer` among its path parts: a kernel
    must not silently pick one of two attached FEATURES folders."""
    found, level = [], [root]
    for depth in range(SEARCH_DEPTH + 1):
        below = []
        for folder in level:
            if not spec.file and spec.accept(folder):
                found.append(folder)  # a match is not searched further: its subfolders are its own
                continue
            if spec.file or depth < SEARCH_DEPTH:
                try:
                    entries = sorted(folder.iterdir())
                except OSError:
                    continue  # unreadable mounts are not inputs
                if spec.file:
                    found += [p for p in entries if spec.accept(p)]
                if depth < SEARCH_DEPTH:
                    below += [p for p in entries if p.is_dir() and not p.name.endswith(_PHOTO_FOLDERS)]
        level = below
    if len(found) > 1 and spec.prefer is not None:
        preferred = [f for f in found if spec.prefer in f.parts]
        found = preferred if len(preferred) == 1 else found
    option, env = spec.option, ENV[spec.option]
    if not found:
        raise KernelError(f"{root}: no {spec.what} found (searched {SEARCH_DEPTH} levels down for {spec.looks});"
                          f" attach it to the kernel, or pass --{option} PATH (or set {env})")
    if len(found) > 1:
        raise KernelError(f"{root}: {len(found)} {spec.what} {spec.noun}s found ({', '.join(map(str, found[:5]))}"
                          f"{', ...' if len(found) > 5 else ''}); choose one with --{option} PATH (or {env})")
    return found[0]


@dataclass(frozen=True)
class KernelPaths:
    working: Path
    data: Path | None = None  # each input is None for kernels that do not take it
    features: Path | None = None
    types: Path | None = None


def argument_parser(description: str | None, inputs: Sequence[str]) -> argparse.ArgumentParser:
    """The options every kernel shares, and one per input it takes (names from INPUTS); arguments it
    does not know are passed on to its verb."""
    # No abbreviations: `--work` meant for a verb must not be taken for this parser's `--working`.
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--input", type=Path, help=f"where attached inputs are searched (default: ${ENV['input']},"
                        f" else {KAGGLE_INPUT} when it exists)")
    parser.add_argument("--working", type=Path, help=f"folder the kernel writes (default: ${ENV['working']}, else"
                        f" {KAGGLE_WORKING} when it exists, else ./work/kernels/<kernel>)")
    for name in inputs:
        spec = INPUTS[name]
        parser.add_argument(f"--{name}", type=Path, help=f"{spec.what} {spec.noun} (default: ${ENV[name]}, else"
                            f" found under --input: {spec.looks})")
    parser.add_argument("--dry-run", action="store_true", help="print the paths and the command, run nothing")
    return parser


def _given(value: Path | None, option: str) -> Path | None:
    if value is not None:
        return value
    env = os.environ.get(ENV[option], "").strip()
    return Path(env) if env else None


def resolve(args: argparse.Namespace, kernel: str) -> KernelPaths:
    """Paths from arguments, then environment, then what Kaggle has mounted (for the inputs `args` has)."""
    root = _given(args.input, "input") or (KAGGLE_INPUT if KAGGLE_INPUT.is_dir() else None)
    working = _given(args.working, "working") or (KAGGLE_WORKING if KAGGLE_WORKING.is_dir()
                                                   else Path("work") / "kernels" / kernel)

    def find(spec: Input) -> Path:
        given = _given(getattr(args, spec.option), spec.option)
        if given is not None:
            if not spec.accept(given):
                raise KernelError(f"{given}: not a {spec.what} {spec.noun} (given by --{spec.option} or"
                                  f" {ENV[spec.option]}; expected {spec.looks})")
            return given
        if root is None:
            raise KernelError(f"no {spec.what} {spec.noun}: pass --{spec.option} PATH (or set {ENV[spec.option]});"
                              f" on Kaggle, attach it to the kernel so it appears under {KAGGLE_INPUT}")
        return search(root, spec)

    return KernelPaths(working, **{name: find(spec) for name, spec in INPUTS.items() if hasattr(args, name)})


def describe(paths: KernelPaths) -> None:
    import geocontext

    print(f"geocontext {geocontext.__version__} from {Path(geocontext.__file__).parent}", flush=True)
    for name in (*INPUTS, "working"):
        value = getattr(paths, name)
        if value is not None:
            print(f"  {name}: {value}", flush=True)


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
