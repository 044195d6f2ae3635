"""Write and read the Kaggle submission: a csv.zip holding one CSV, gridimage_id + the tag columns.

Everything Kaggle would reject after an upload is refused here first, with the reason."""
from __future__ import annotations

import contextlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..competition import ID
from ..errors import DataError, SubmissionError
from ..writing import atomic_file
from .ids import canonical_only
from .readers import open_csv

MEMBER = "submission.csv"


def validate(frame: pd.DataFrame, test_ids: np.ndarray, columns: tuple[str, ...], source: str = "submission") -> None:
    """Raise SubmissionError unless `frame` is exactly one row per test id, each written as Kaggle writes
    ids (data.ids), with the tag `columns` (judged by name, any order) holding 0 or 1: integers, or the
    text "0"/"1" as read (True or 1.0 are refused)."""
    expected = [ID, *columns]
    got = list(frame.columns)
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    if missing or extra or len(got) != len(set(got)):
        raise SubmissionError(f"{source}: columns wrong (missing {missing[:5]}, unexpected {extra[:5]});"
                              f" expected {ID} and the competition's {len(columns)} tag columns")
    canonical_only(frame[ID], source)  # Kaggle matches ids as text: one spelling, or refused by line
    ids = frame[ID].to_numpy().astype(np.int64)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise SubmissionError(f"{source}: gridimage_id {uniq[counts > 1][0]} appears {counts.max()} times;"
                              f" {int((counts > 1).sum())} id(s) repeated")
    missing = np.setdiff1d(test_ids, ids)
    extra = np.setdiff1d(ids, test_ids)
    if len(missing) or len(extra):
        raise SubmissionError(f"{source}: {len(missing)} test id(s) missing (e.g. {missing[:3].tolist()}) and"
                              f" {len(extra)} id(s) not in test.csv (e.g. {extra[:3].tolist()})")
    values = frame[list(columns)]
    bad = np.zeros(values.shape, dtype=bool)
    for j, column in enumerate(columns):
        cells = values[column]
        if cells.dtype.kind in "iu":
            bad[:, j] = ~cells.isin([0, 1]).to_numpy()
        elif cells.dtype == object or pd.api.types.is_string_dtype(cells.dtype):
            bad[:, j] = ~cells.astype(str).isin(["0", "1"]).to_numpy()
        else:  # bool, float: True or 1.0 is not the competition's 0/1
            bad[:, j] = True
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        cell = values.iat[row, col]
        shown = repr(cell) if isinstance(cell, str) else cell
        raise SubmissionError(f"{source}: gridimage_id {ids[row]} has {columns[col]}={shown};"
                              f" values must be the integers 0 or 1")


def check_probabilities(probs: np.ndarray, ids: np.ndarray, source: str) -> None:
    """The last guard before a submission: a NaN or infinite probability would decode to a wrong tag."""
    bad = ~np.isfinite(np.asarray(probs)).all(axis=1)
    if bad.any():
        raise SubmissionError(f"{source}: not written: {int(bad.sum())} photo(s) have non-finite probabilities"
                              f" (e.g. gridimage_id {', '.join(map(str, np.asarray(ids)[bad][:3]))}); check the"
                              " features for NaN or infinite values")


def to_frame(ids: np.ndarray, tags: np.ndarray, columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(np.asarray(tags, dtype=np.uint8), columns=list(columns))
    frame.insert(0, ID, np.asarray(ids, dtype=np.int64))
    return frame


def check_target(path: str | Path) -> Path:
    """A submission path the writer can fill: .csv (plain CSV) or .csv.zip (zipped), not a folder."""
    path = Path(path)
    if path.is_dir():
        raise SubmissionError(f"{path}: is a folder; give the submission file to write, e.g. {path / 'submission.csv.zip'}")
    if not path.name.endswith((".csv", ".csv.zip")):
        raise SubmissionError(f"{path}: a submission is written as .csv.zip (zipped) or .csv (plain); name it so")
    if path.parent.exists() and not path.parent.is_dir():
        raise SubmissionError(f"{path.parent}: is a file, not a folder")
    return path


def _member(stack: contextlib.ExitStack, handle, zipped: bool, large: bool):
    """The binary stream the CSV goes into: the zip's one member, or the plain file."""
    if not zipped:
        return handle
    archive = stack.enter_context(zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED))
    return stack.enter_context(archive.open(MEMBER, "w", force_zip64=large))


def write_submission(path: str | Path, ids: np.ndarray, tags: np.ndarray, columns: tuple[str, ...],
                     test_ids: np.ndarray, probs: np.ndarray | None = None, chunk_rows: int = 200_000) -> Path:
    """Validate, then write `path` atomically: .csv.zip zipped, .csv plain (what the name says), chunk by
    chunk so 8M rows never exist as one frame or one string. A failed write never leaves half a file or a
    temporary one. With `probs`, non-finite probabilities are refused."""
    path = check_target(path)
    ids, tags = np.asarray(ids), np.asarray(tags)
    if probs is not None:
        check_probabilities(probs, ids, str(path))
    validate(to_frame(ids, tags[:, :1], columns[:1]), test_ids, columns[:1], source=str(path))  # ids; values by chunk
    text_size = len(ids) * (12 + 2 * len(columns))  # the CSV's bytes, about (zipped: a fraction of it)

    def write(handle) -> None:
        with contextlib.ExitStack() as stack:
            member = _member(stack, handle, path.name.endswith(".zip"), text_size > 2**31)
            for start in range(0, max(len(ids), 1), chunk_rows):
                frame = to_frame(ids[start:start + chunk_rows], tags[start:start + chunk_rows], columns)
                validate(frame, frame[ID].to_numpy(), columns, source=str(path))
                member.write(frame.to_csv(index=False, header=start == 0).encode())

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_file(path, write, "the submission", None if path.name.endswith(".zip") else text_size)
    except OSError as exc:  # a full disk is DiskFull (writing), said the same way for every output
        raise SubmissionError(f"{path}: cannot write the submission ({exc.strerror or exc})") from exc
    return path


def read_submission(path: str | Path) -> pd.DataFrame:
    """A submission (.csv or .csv.zip) as a DataFrame; unreadable files raise SubmissionError."""
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: file not found")
    try:
        with open_csv(path) as handle:
            frame = pd.read_csv(io.BytesIO(handle.read()), dtype=str, keep_default_na=False)
    except (DataError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path}: cannot read the submission ({exc})") from exc
    # Read as text so that 1.0 or True stay what they are (pandas would turn them into numbers), then
    # columns of plain integers become integers; `validate` refuses the rest. The ids stay text: Kaggle
    # matches them as written, so `validate` judges their spelling (data.ids).
    for column in frame.columns.drop(ID, errors="ignore"):
        if len(frame) and frame[column].str.fullmatch(r"-?\d+").all():
            frame[column] = frame[column].astype(np.int64)
    return frame
