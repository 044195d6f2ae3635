"""Every output is written beside and renamed into place; a full disk is one line naming the folder, the
space free and needed, and leaves nothing half-written (simulated: no disk is filled)."""
import errno
import os
import sqlite3

import pytest

from geocontext.errors import DiskFull
from geocontext.writing import atomic_file, atomic_folder, full_reason, writing


def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "out" / "big.bin"
    target.parent.mkdir()
    target.write_bytes(b"before")

    def write(handle):
        handle.write(b"x" * 1000)  # part of it reached the disk
        full()

    with pytest.raises(DiskFull) as err:
        atomic_file(target, write, "the big file", needed=3_500_000_000)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'out'}: no space left on the disk while writing the big file (")
    assert "free there, about 3.5 GB needed" in message and "run the same command again" in message
    assert "\n" not in message
    assert target.read_bytes() == b"before" and os.listdir(target.parent) == ["big.bin"]  # as it was, no temporary


def test_a_folder_is_replaced_whole_or_not_at_all_and_stale_temporaries_go(tmp_path):
    target = tmp_path / "train"
    stale = tmp_path / ".train.tmp-999999999"  # left by a killed process (no such pid)
    stale.mkdir()
    (stale / "ids.npy").write_bytes(b"half")

    def fill(folder):
        (folder / "a.npy").write_bytes(b"1" * 100)
        full()

    with pytest.raises(DiskFull, match=r"no space left on the disk while writing the train features"):
        atomic_folder(target, fill, "the train features", needed=2000)
    assert sorted(os.listdir(tmp_path)) == []  # neither the stale temporary nor this one's
    atomic_folder(target, lambda folder: (folder / "a.npy").write_bytes(b"ok"), "the train features")
    assert (target / "a.npy").read_bytes() == b"ok" and sorted(os.listdir(tmp_path)) == ["train"]


def test_other_errors_pass_and_quota_and_sqlite_count_as_full(tmp_path):
    with pytest.raises(PermissionError):
        with writing(tmp_path, "x"):
            raise PermissionError(errno.EACCES, "denied")
    assert full_reason(OSError(errno.EDQUOT, "quota")) == "disk quota exceeded"
    sqlite_full = sqlite3.OperationalError("database or disk is full")
    sqlite_full.sqlite_errorcode = 13
    wrapped = RuntimeError("(sqlite3.OperationalError) database or disk is full")
    wrapped.orig = sqlite_full  # as SQLAlchemy wraps it (Optuna's storage)
    assert full_reason(wrapped) == "no space left on the disk"
    partial = tmp_path / "half"
    partial.write_text("x")
    with pytest.raises(DiskFull, match="while writing optuna.db"):
        with writing(tmp_path, "optuna.db", partial=[partial]):
            raise wrapped
    assert not partial.exists()
