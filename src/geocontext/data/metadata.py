"""metadata.csv read line by line: one bad line affects only its own photo.

A CSV parser lets a quoted field run on over line ends, so one unbalanced quote in a title swallows
the following lines into that title (and the next grid reference into the wrong photo). Geograph
titles hold no line breaks, so each physical line here is one record: lines without a quote (most)
are split by pandas in one pass; lines with quotes are parsed one by one with the csv module, and a
line that does not parse into the header's fields is reported by its line number and id.
"""
from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd

from ..competition import ID
from ..errors import DataError

FIELDS = (ID, "title", "grid_reference")
_LEADING_ID = re.compile(r'^\s*"?\s*(\d+)')


def _lines(raw: bytes, encoding: str) -> list[str]:
    text = raw.decode(encoding, errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.splitlines()


def _quoted_records(lines: list[str], numbers: np.ndarray, width: int) -> tuple[list, list[int]]:
    """Parse the lines that hold quotes one by one; (records, line numbers that do not parse)."""
    records, bad = [], []
    for number, line in zip(numbers.tolist(), lines):
        try:
            fields = next(csv.reader([line], strict=True))
        except (csv.Error, StopIteration):
            bad.append(number)
            continue
        if len(fields) != width:
            bad.append(number)
            continue
        records.append((number, fields))
    return records, bad


def _malformed(name: str, number: int, line: str) -> str:
    found = _LEADING_ID.match(line)
    return f"{name}:{number}" + (f" (id {found.group(1)})" if found else "")


def parse_metadata(raw: bytes, encoding: str, name: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    """(gridimage_id, title, grid_reference) rows of one metadata file; malformed lines as "file:line (id N)";
    lines whose id is not a number as "file:line". Titles of only spaces become ''."""
    every = _lines(raw, encoding)
    skip = next((i for i, line in enumerate(every) if line.strip()), None)
    if skip is None:
        raise DataError(f"{name}: the file is empty")
    lines = every[skip:]
    header = next(csv.reader([lines[0]]))
    missing = [c for c in FIELDS if c not in header]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing} (expected gridimage_id, title, grid_reference)")
    width = len(header)
    body = pd.Series(lines[1:], dtype=object)
    numbers = np.arange(skip + 2, len(every) + 1)  # physical line numbers, 1-based
    blank = body.str.strip().eq("").to_numpy()
    quoted = body.str.contains('"', regex=False).to_numpy() & ~blank
    plain = ~quoted & ~blank
    commas = body.str.count(",").to_numpy()
    plain_ok = plain & (commas == width - 1)
    bad = np.flatnonzero(plain & ~plain_ok).tolist()
    frame = pd.read_csv(io.StringIO("\n".join(body[plain_ok])), header=None, names=header, dtype=str,
                        keep_default_na=False, quoting=csv.QUOTE_NONE) if plain_ok.any() else \
        pd.DataFrame(columns=header, dtype=str)
    frame.insert(0, "_line", numbers[plain_ok])
    records, bad_quoted = _quoted_records(body[quoted].tolist(), numbers[quoted], width)
    if records:
        extra = pd.DataFrame([f for _, f in records], columns=header, dtype=str)
        extra.insert(0, "_line", [n for n, _ in records])
        frame = pd.concat([frame, extra], ignore_index=True).sort_values("_line", kind="stable")
    by_number = dict(zip(numbers.tolist(), lines[1:]))
    malformed = sorted([int(numbers[i]) for i in bad] + bad_quoted)
    malformed = [_malformed(name, n, by_number[n]) for n in malformed]
    ids = pd.to_numeric(frame[ID].str.strip(), errors="coerce")
    ok = ids.notna().to_numpy() & (ids.to_numpy(dtype=float, na_value=np.nan) % 1 == 0)
    bad_ids = [f"{name}:{n}" for n in frame["_line"].to_numpy()[~ok].tolist()]
    frame = frame[ok]
    title = frame["title"].str.strip()
    out = pd.DataFrame({ID: ids[ok].astype(np.int64).to_numpy(), "title": frame["title"].where(title != "", "").to_numpy(),
                        "grid_reference": frame["grid_reference"].str.strip().to_numpy()})
    return out, malformed, bad_ids
