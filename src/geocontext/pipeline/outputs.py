"""Where a verb writes, checked before any work: a run that would fail at its last write must fail first,
in one line, and leave nothing half-written behind."""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from ..errors import DataError


def writable_folder(folder: str | Path, what: str = "OUT") -> Path:
    """`folder`, created when missing; refused when it is a file or cannot be written to."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: {what} is an existing file, not a folder; give a folder to write into")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataError(f"{folder}: cannot write into {what} ({exc.strerror or exc})") from exc
    return folder


@contextlib.contextmanager
def removed_if_refused(folder: str | Path, what: str = "OUT"):
    """`writable_folder(folder)` for the block that reads and checks the inputs. When the block fails, a
    folder this call made (with the parents it made) goes again: a refused run leaves no empty OUT
    behind. A folder that was there before stays as it was, whatever it holds."""
    folder = Path(folder)
    top = folder  # the outermost folder this call will make
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    made = not folder.exists()
    path = writable_folder(folder, what)
    try:
        yield path
    except BaseException:
        if made:
            shutil.rmtree(top, ignore_errors=True)
        raise


def writable_file(path: str | Path, what: str, suffix: str | None = None) -> Path:
    """A file path whose folder exists (created) and can be written; refused when `path` is a folder."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: {what} is a folder; give a file name{f' ending in {suffix}' if suffix else ''}")
    if suffix and not path.name.endswith(suffix):
        raise DataError(f"{path}: {what} must end in {suffix} (it is written as such)")
    writable_folder(path.parent, f"the folder of {what}")
    return path
