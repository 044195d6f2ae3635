"""Writing the kit's outputs: each file or folder written beside and renamed into place (complete or
absent), and a full disk as one line naming the folder, the space free there and the space needed, with
nothing half-written left behind (the rerun then resumes from what was finished). Every writer goes
through here: embed's chunks and blocks, a run's folder, predict's submission and probabilities, the type
classifier's outputs; `cli` turns a full disk met anywhere else into the same one line."""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import DiskFull

FULL = {errno.ENOSPC: "no space left on the disk", errno.EDQUOT: "disk quota exceeded"}
_SQLITE_FULL = 13  # SQLITE_FULL: Optuna's SQLite storage on a full disk (sqlite3 raises no OSError)


def full_reason(exc: BaseException | None) -> str | None:
    """What a full-disk error says (ENOSPC, EDQUOT, SQLite's "database or disk is full"), else None;
    the causes of a wrapped error (SQLAlchemy's) are looked through."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OSError) and exc.errno in FULL:
            return FULL[exc.errno]
        if getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
            return FULL[errno.ENOSPC]
        exc, seen = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__, seen + 1
    return None


def size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def free_space(folder: str | Path) -> int | None:
    """Bytes free on the disk holding `folder` (or its nearest existing parent)."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def writing(folder: str | Path, what: str, needed: int | None = None, partial: Iterable[Path] = ()):
    """Write `what` into `folder`. A full disk removes `partial` (what would be left half-written) and
    becomes DiskFull: one line with the folder, the space free and, when known, the space `needed`."""
    try:
        yield
    except DiskFull:  # said already, by a writer inside this one: remove this one's partial output too
        for path in partial:
            _remove(Path(path))
        raise
    except Exception as exc:
        reason = full_reason(exc)
        if reason is None:
            raise
        for path in partial:
            _remove(Path(path))
        free = free_space(folder)
        raise DiskFull(f"{folder}: {reason} while writing {what} ({size(free) if free is not None else 'little'}"
                       f" free there{f', about {size(needed)} needed' if needed else ''}); free some space or write"
                       " elsewhere, then run the same command again (what was finished is kept)") from None


def temporary(path: Path) -> Path:
    """Where `path` is written before it is renamed into place: hidden, named by this process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_file(path: str | Path, write: Callable, what: str | None = None, needed: int | None = None,
                fsync: bool = False) -> Path:
    """`write(handle)` into a temporary file renamed to `path` once complete: `path` is whole or as it
    was, and no temporary stays behind whatever fails."""
    path = Path(path)
    tmp = temporary(path)
    with writing(path.parent, what or path.name, needed, [tmp]):
        try:
            with open(tmp, "wb") as handle:
                write(handle)
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def remove_stale(target: Path) -> None:
    """Temporaries of `target` left by processes no longer running (a killed run); those of running
    processes (another shard merging) are theirs."""
    for tmp in target.parent.glob(f".{target.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            _remove(tmp)


def atomic_folder(target: str | Path, fill: Callable[[Path], None], what: str, needed: int | None = None) -> Path:
    """`fill(folder)` into a temporary folder that replaces `target` once complete."""
    target = Path(target)
    tmp = temporary(target)
    remove_stale(target)
    with writing(target.parent, what, needed, [tmp]):
        try:
            _remove(tmp)
            tmp.mkdir(parents=True)
            fill(tmp)
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        finally:
            _remove(tmp)
    return target
