"""Write and read the Kaggle submission: a csv.zip holding one CSV, gridimage_id + the tag columns.

Everything Kaggle would reject after an upload is refused here first, with the reason."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..competition import ID
from ..errors import DataError, SubmissionError
from .readers import open_csv

MEMBER = "submission.csv"


def validate(frame: pd.DataFrame, test_ids: np.ndarray, columns: tuple[str, ...], source: str = "submission") -> None:
    """Raise SubmissionError unless `frame` is exactly one binary row per test id, in the right columns."""
    expected = [ID, *columns]
    got = list(frame.columns)
    if got != expected:
        missing = [c for c in expected if c not in got]
        extra = [c for c in got if c not in expected]
        if missing or extra:
            raise SubmissionError(f"{source}: columns wrong (missing {missing[:5]}, unexpected {extra[:5]});"
                                  f" expected {ID} then the {len(columns)} tag columns of train.csv")
        first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        raise SubmissionError(f"{source}: column {first + 1} is {got[first]!r} but train.csv order puts {expected[first]!r} there")
    ids = pd.to_numeric(frame[ID], errors="coerce")
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise SubmissionError(f"{source}, row {row + 1}: gridimage_id {frame[ID].iloc[row]!r} is not an integer")
    ids = ids.to_numpy(dtype=np.int64)
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
    bad = ~values.isin([0, 1]).to_numpy()
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise SubmissionError(f"{source}: gridimage_id {ids[row]} has {columns[col]}={values.iat[row, col]};"
                              f" values must be 0 or 1")


def to_frame(ids: np.ndarray, tags: np.ndarray, columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(np.asarray(tags, dtype=np.uint8), columns=list(columns))
    frame.insert(0, ID, np.asarray(ids, dtype=np.int64))
    return frame


def write_submission(path: str | Path, ids: np.ndarray, tags: np.ndarray, columns: tuple[str, ...],
                     test_ids: np.ndarray, chunk_rows: int = 200_000) -> Path:
    """Validate, then write `path` (.csv.zip) atomically: a failed write never leaves half a file."""
    path = Path(path)
    ids, tags = np.asarray(ids), np.asarray(tags)
    validate(to_frame(ids, tags[:, :1], columns[:1]), test_ids, columns[:1], source=str(path))  # ids, then by chunk
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    # written chunk by chunk, so 8M rows never exist as one frame or one string
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive, \
            archive.open(MEMBER, "w", force_zip64=len(ids) * (12 + 2 * len(columns)) > 2**31) as member:
        for start in range(0, max(len(ids), 1), chunk_rows):
            frame = to_frame(ids[start:start + chunk_rows], tags[start:start + chunk_rows], columns)
            validate(frame, frame[ID].to_numpy(), columns, source=str(path))
            member.write(frame.to_csv(index=False, header=start == 0).encode())
    tmp.replace(path)
    return path


def read_submission(path: str | Path) -> pd.DataFrame:
    """A submission (.csv or .csv.zip) as a DataFrame; unreadable files raise SubmissionError."""
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: file not found")
    try:
        with open_csv(path) as handle:
            return pd.read_csv(io.BytesIO(handle.read()))
    except (DataError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path}: cannot read the submission ({exc})") from exc
