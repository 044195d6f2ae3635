"""Gridimage ids as written in a file, and the one rule every reader applies to them.

Kaggle writes an id as plain decimal digits: no sign, no leading zero (but "0" itself), no space, no
decimal point. That spelling is canonical. A file re-saved by a spreadsheet may hold `0020016158`,
`+22283040`, ` 22283040` or `22283040.0`: the same photo, another text, and Kaggle's scorer matches ids
as text. So every reader reads the id column as text and parses it here:

- DATA's files (train.csv, test.csv, metadata.csv, a solution) are read whatever the spelling of a whole
  number >= 0; the non-canonical ones are counted and the first named as written, by line (`Respelt`),
  and `check`, `run`, `predict`, `submit` and `evaluate` print that as a warning. Anything else (`abc`,
  `12.5`, `-5`, `2.2e7`, more than 18 digits) is no id.
- A submission is what Kaggle reads: `canonical_only` refuses its first id that is not canonical.

Vectorised (pandas string methods): train.csv has 609,822 rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import SubmissionError

CANONICAL = r"0|[1-9][0-9]{0,17}"  # at most 18 digits: every such number fits int64
_WHOLE = r"\s*\+?0*([0-9]{1,18})(?:\.0*)?\s*"  # the other spellings read as that number (zeros and all)
EXPECTED = "a whole number >= 0 written in digits"


@dataclass(frozen=True)
class Respelt:
    """A file's ids written other than canonically: how many, and the first as written and where."""

    source: str  # the file, as messages name it
    count: int
    line: int  # the first one's line in the file (the header is line 1)
    written: str
    read_as: int

    def __str__(self) -> str:
        return (f"{self.source}: {self.count:,} id(s) written non-canonically, first {self.written!r} at line"
                f" {self.line}; read as {self.read_as} (Kaggle writes ids as plain digits and matches them as"
                " text: was the file re-saved by a spreadsheet?)")

    def plus(self, other: "Respelt | None") -> "Respelt":
        """Both counts, the first of the two named (`self` comes first in the file)."""
        return self if other is None else Respelt(self.source, self.count + other.count, self.line, self.written,
                                                  self.read_as)


@dataclass(frozen=True)
class IdColumn:
    """An id column parsed: the values, which cells hold an id at all, and the non-canonical spellings."""

    ids: np.ndarray  # int64; 0 where `ok` is False
    ok: np.ndarray  # bool: the cell spells a whole number >= 0
    lines: np.ndarray  # int64: each cell's line in the file
    written: pd.Series  # the cells as written ('' for an empty one)
    respelt: Respelt | None

    def first_bad(self) -> tuple[int, str] | None:
        """(line, text as written) of the first cell that is no id, or None."""
        if self.ok.all():
            return None
        row = int(np.flatnonzero(~self.ok)[0])
        return int(self.lines[row]), self.written.iloc[row]


def parse(values: pd.Series, source: str, lines: np.ndarray | None = None) -> IdColumn:
    """Parse an id column read as text (`lines`: each cell's line in the file; default: one row per line
    after the header)."""
    written = values.fillna("").astype(str).reset_index(drop=True)
    lines = np.arange(2, len(written) + 2, dtype=np.int64) if lines is None else np.asarray(lines, dtype=np.int64)
    canonical = written.str.fullmatch(CANONICAL).to_numpy(dtype=bool)
    ids = np.zeros(len(written), dtype=np.int64)
    ids[canonical] = written[canonical].to_numpy(dtype=str).astype(np.int64)
    ok = canonical.copy()
    respelt = None
    if not canonical.all():
        odd = np.flatnonzero(~canonical)
        whole = odd[written.iloc[odd].str.fullmatch(_WHOLE).to_numpy(dtype=bool)]
        if len(whole):
            found = written.iloc[whole].str.extract(f"^{_WHOLE}$", expand=False)
            ids[whole] = found.to_numpy(dtype=str).astype(np.int64)
            ok[whole] = True
            first = int(whole[0])
            respelt = Respelt(source, len(whole), int(lines[first]), written.iloc[first], int(ids[first]))
    return IdColumn(ids, ok, lines, written, respelt)


def canonical_only(values: pd.Series, source: str) -> None:
    """Refuse a submission's first id that is not written as Kaggle writes ids, naming its line (the header
    is line 1) and the id as written. An integer column (a frame built in memory) is canonical unless negative."""
    if values.dtype.kind in "iu":
        negative = np.flatnonzero(values.to_numpy() < 0)
        if len(negative):
            raise SubmissionError(f"{source}, line {negative[0] + 2}: gridimage_id {values.iloc[negative[0]]} is not"
                                  f" an id (expected {EXPECTED})")
        return
    column = parse(values, source)
    bad = column.first_bad()
    if bad is not None:
        raise SubmissionError(f"{source}, line {bad[0]}: gridimage_id {bad[1]!r} is not an id (expected {EXPECTED})")
    if column.respelt is not None:
        r = column.respelt
        raise SubmissionError(f"{source}, line {r.line}: gridimage_id {r.written!r} is not written as Kaggle writes ids"
                              f" (plain digits: no sign, leading zero, space or decimal point; {r.count:,} id(s) written"
                              f" so); Kaggle matches ids as text, so write it as {r.read_as}")
