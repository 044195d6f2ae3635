"""Drive the official `kaggle` command line: push a rendered kernel, submit a csv.zip.

The kit never reads, copies or prints a credential. It only checks that the CLI will find some
(saying how to set them up when it will not), then runs `kaggle` in the user's own environment.
"""
from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..competition import COMPETITION
from ..errors import DataError, SubmissionError

# Where a submission's test ids come from when DATA is not given: the usual download folder, then
# the project's shared copy of the competition files (beside the repository, also in CI).
DATA_CANDIDATES = ("data", "../shared/data/kaggle-competition")
# The CLI prints every request's headers, Authorization included, when these are set: never pass them on.
_LEAKY_ENV = ("VERBOSE", "VERBOSE_OUTPUT")

CREDENTIALS_HELP = """\
no Kaggle credentials found. Create an API token at https://www.kaggle.com/settings/api
("Generate New Token"), then give it to the Kaggle CLI in one of these ways:
  export KAGGLE_API_TOKEN=<token>                  (this shell only)
  save it in ~/.kaggle/access_token, then chmod 600 ~/.kaggle/access_token
  or sign in once with `kaggle auth login` (OAuth in the browser)
A legacy kaggle.json (username + key) in ~/.kaggle/ or $KAGGLE_CONFIG_DIR works too.
Keep them out of the repository, kernels and logs: the kit never needs to see them."""


class KaggleSetupError(ValueError):
    """The Kaggle CLI or its credentials are missing, or what would be sent is not ready."""


def cli_command() -> list[str]:
    """How to run the Kaggle CLI: the one installed beside this Python (requirements.txt pins it), else PATH's."""
    if importlib.util.find_spec("kaggle") is not None:
        return [sys.executable, "-m", "kaggle"]
    found = shutil.which("kaggle")
    if found:
        return [found]
    raise KaggleSetupError("the Kaggle CLI is not installed: run `make setup` (installs the kaggle package pinned in"
                           " requirements.txt) or `pip install kaggle`")


def credential_source(env: dict | None = None) -> str | None:
    """Where the CLI will find credentials (a variable's name or a file's path, never its content), or None."""
    env = os.environ if env is None else env
    if env.get("KAGGLE_API_TOKEN"):
        return "$KAGGLE_API_TOKEN"
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "$KAGGLE_USERNAME and $KAGGLE_KEY"
    home = Path(env.get("HOME") or Path.home())
    config_dir = Path(env["KAGGLE_CONFIG_DIR"]) if env.get("KAGGLE_CONFIG_DIR") else home / ".kaggle"
    if not env.get("KAGGLE_CONFIG_DIR") and not config_dir.exists():  # the CLI then follows XDG
        config_dir = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"
    for path in (config_dir / "kaggle.json", home / ".kaggle" / "access_token", home / ".kaggle" / "access_token.txt",
                 home / ".kaggle" / "credentials.json"):
        if path.is_file() and path.stat().st_size > 0:
            return str(path)
    return None


def run_cli(args: list[str]) -> int:
    """`kaggle ARGS...` with the user's environment (less the variables that make it print secrets)."""
    command = cli_command()
    source = credential_source()
    if source is None:
        raise KaggleSetupError(CREDENTIALS_HELP)
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    print(f"$ kaggle {shlex.join(args)}    (credentials: {source})", flush=True)
    return subprocess.run(command + args, env=env).returncode


def push_kernel(folder: str | Path) -> int:
    """`kaggle kernels push -p FOLDER` for a rendered kernel whose id names its owner."""
    import json

    from .render import METADATA, PLACEHOLDER

    folder = Path(folder)
    meta_path = folder / METADATA
    if not meta_path.is_file():
        raise KaggleSetupError(f"{folder}: no rendered kernel here; run `make kernels` first")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if PLACEHOLDER in json.dumps(meta):
        raise KaggleSetupError(f"{meta_path}: the kernel id still reads {meta['id']!r}; set KAGGLE_USERNAME to your"
                               f" Kaggle user name (or pass --username) and render again")
    return run_cli(["kernels", "push", "-p", str(folder)])


def find_data(data: str | Path | None) -> Path:
    """The folder holding test.csv: DATA when given, else the first of DATA_CANDIDATES that has one."""
    from ..data.readers import find

    candidates = [Path(data)] if data else [Path(c) for c in DATA_CANDIDATES]
    for folder in candidates:
        if find(folder, "test.csv", "test.csv.zip"):
            return folder
    if data:
        raise KaggleSetupError(f"{data}: no test.csv or test.csv.zip; DATA must be the competition's folder")
    raise KaggleSetupError(f"no test.csv found in {' or '.join(DATA_CANDIDATES)}; pass DATA=<folder with the"
                           f" competition's test.csv> (kaggle competitions download -c {COMPETITION})")


def check_submission(path: str | Path, data: str | Path | None) -> dict:
    """The writer's checks on a finished file: test.csv's ids, train.csv's tag columns, 0/1 values."""

    from ..competition import COLUMNS
    from ..data.readers import read_test_ids, tag_contract
    from ..data.submission import read_submission, validate

    path = Path(path)
    if not path.name.endswith((".csv.zip", ".csv")):
        raise KaggleSetupError(f"{path}: a submission is a .csv.zip (or .csv) file")
    folder = find_data(data)
    respelt: list = []
    test_ids = read_test_ids(folder, respelt)
    contract = tag_contract(folder)  # tags-top.csv's columns when DATA has it, else the competition's
    columns = contract or COLUMNS
    frame = read_submission(path)
    validate(frame, test_ids, columns, source=str(path))
    positives = frame[list(columns)].astype(np.int64).to_numpy().sum(axis=1)
    source = folder / "tags-top.csv" if contract else "geocontext.competition"
    return {"rows": len(frame), "test_ids_from": str(folder), "columns_from": str(source),
            "mean_tags": float(positives.mean()) if len(frame) else 0.0, "empty_rows": int((positives == 0).sum()),
            "warnings": list(map(str, respelt))}


def submit(path: str | Path, message: str, data: str | Path | None = None, competition: str = COMPETITION,
           dry_run: bool = False) -> int:
    """Validate `path` like the writer does, then `kaggle competitions submit`."""
    if not message or not message.strip():
        raise KaggleSetupError('a submission needs a message: MSG="what changed"')
    try:
        summary = check_submission(path, data)
    except (DataError, SubmissionError) as exc:
        raise KaggleSetupError(f"not submitted: {exc}") from exc
    for warning in summary["warnings"]:
        print(f"warning: {warning}", flush=True)
    print(f"{path}: valid, {summary['rows']} rows, {summary['mean_tags']:.2f} tags per photo on average,"
          f" {summary['empty_rows']} photos without a tag (test ids from {summary['test_ids_from']})", flush=True)
    args = ["competitions", "submit", "-c", competition, "-f", str(path), "-m", message]
    if dry_run:
        print(f"dry run: would run `kaggle {shlex.join(args)}`")
        return 0
    return run_cli(args)
