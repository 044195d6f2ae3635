"""metadata.csv read line by line: one bad line affects only its own photo.

A CSV parser lets a quoted field run on over line ends, so one unbalanced quote in a title swallows
the following lines into that title (and the next grid reference into the wrong photo). Geograph
titles hold no line breaks, so each physical line here is one record. Quotes and commas are counted per
line on the raw bytes (numpy, no per-line Python); lines without quotes and with the header's number of
fields, and lines with balanced quotes, go to pandas' C parser in one pass each; the few lines with an
odd number of quotes are parsed one by one. A line that does not parse into the header's fields is
reported by its physical line number and id. Bytes that are not text in the file's encoding (a cp1252
byte in the UTF-8 metadata.csv) become U+FFFD, and their lines are reported by number and id too.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import warnings

import numpy as np
import pandas as pd

from ..competition import ID
from ..errors import DataError
from .ids import Respelt, parse

FIELDS = (ID, "title", "grid_reference")
_LEADING_ID = re.compile(r'^\s*"?\s*(\d+)')
_SKIPPED = re.compile(r"Skipping line (\d+)")


class _Lines:
    """Physical lines of a file as byte ranges, with per-line counts of quotes and commas."""

    def __init__(self, raw: bytes):
        self.buf = np.frombuffer(raw, dtype=np.uint8)
        ends = np.flatnonzero(self.buf == 10)
        if len(self.buf) and (not len(ends) or ends[-1] != len(self.buf) - 1):
            ends = np.append(ends, len(self.buf))
        self.starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
        self.ends = ends
        self.quotes, self.commas = self._count(34), self._count(44)  # '"' and ','
        # Blank lines (only whitespace) are rare: only lines without a comma or quote are looked at.
        self.solid = np.ones(len(self.starts), dtype=bool)
        for i in np.flatnonzero((self.commas == 0) & (self.quotes == 0)).tolist():
            self.solid[i] = bool(self.buf[self.starts[i]:self.ends[i]].tobytes().strip())

    def _count(self, byte: int) -> np.ndarray:
        """How many times `byte` occurs on each line."""
        line = np.searchsorted(self.starts, np.flatnonzero(self.buf == byte), side="right") - 1
        return np.bincount(line, minlength=len(self.starts))

    def __len__(self) -> int:
        return len(self.starts)

    def text(self, i: int, encoding: str) -> str:
        return self.buf[self.starts[i]:self.ends[i]].tobytes().decode(encoding, errors="replace").rstrip("\r")

    def undecodable(self, encoding: str) -> list[int]:
        """Indices of the lines holding bytes that are not text in `encoding`. The whole buffer is tried
        first, in blocks (one C pass, bounded memory); only when that fails are the lines with a byte
        over 0x7f tried one by one."""
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        try:
            for start in range(0, len(self.buf), 1 << 24):
                decoder.decode(self.buf[start:start + (1 << 24)].tobytes(), final=start + (1 << 24) >= len(self.buf))
            return []
        except UnicodeDecodeError:
            pass
        high = np.unique(np.searchsorted(self.starts, np.flatnonzero(self.buf >= 0x80), side="right") - 1)
        bad = []
        for i in high.tolist():
            try:
                self.buf[self.starts[i]:self.ends[i]].tobytes().decode(encoding)
            except UnicodeDecodeError:
                bad.append(i)
        return bad

    def join(self, selected: np.ndarray) -> bytes:
        """The bytes of the selected lines, each ending in a newline."""
        sizes = np.diff(np.append(self.starts, len(self.buf)))
        keep = np.repeat(selected, sizes)
        out = self.buf[keep].tobytes()
        return out if out.endswith(b"\n") or not out else out + b"\n"


def _parse_together(data: bytes, header: list[str], encoding: str, quoting: int) -> tuple[pd.DataFrame, list[int]]:
    """Parse newline-joined records with pandas; (frame, 1-based positions of the records it skipped)."""
    if not data:
        return pd.DataFrame(columns=header, dtype=str), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        frame = pd.read_csv(io.BytesIO(data), header=None, names=header, dtype=str, keep_default_na=False,
                            quoting=quoting, on_bad_lines="warn", encoding=encoding, encoding_errors="replace",
                            skip_blank_lines=False)
    return frame, [int(n) for w in caught for n in _SKIPPED.findall(str(w.message))]


def _parse_each(lines: _Lines, index: np.ndarray, width: int, encoding: str) -> tuple[list, list[int]]:
    """Parse lines one by one (the few with unbalanced quotes); (records, indices that do not parse)."""
    records, bad = [], []
    for i in index.tolist():
        try:
            fields = next(csv.reader([lines.text(i, encoding)], strict=True))
        except (csv.Error, StopIteration):
            fields = []
        (records.append((i, fields)) if len(fields) == width else bad.append(i))
    return records, bad


def parse_metadata(raw: bytes, encoding: str, name: str, line_offset: int = 0
                   ) -> tuple[pd.DataFrame, list[str], list[str], list[str], Respelt | None]:
    """(gridimage_id, title, grid_reference) rows of one metadata file; malformed lines as "file:line (id N)";
    lines whose id is no id (data.ids) as "file:line"; lines with bytes that are not `encoding` text (read
    as U+FFFD) as "file:line (id N)"; the ids written non-canonically (data.ids.Respelt, or None).
    Titles of only spaces become ''. `line_offset` is added to the line numbers reported (for a part of
    a file read on its own)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines = _Lines(raw)
    visible = np.flatnonzero(lines.solid)
    if not len(visible):
        raise DataError(f"{name}: the file is empty")
    first = int(visible[0])
    header = next(csv.reader([lines.text(first, encoding)]))
    missing = [c for c in FIELDS if c not in header]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing} (expected gridimage_id, title, grid_reference)")
    width = len(header)
    body = (np.arange(len(lines)) > first) & lines.solid
    plain = body & (lines.quotes == 0)
    plain_ok = plain & (lines.commas == width - 1)  # without quotes, commas count the fields exactly
    balanced = body & (lines.quotes > 0) & (lines.quotes % 2 == 0)
    bad = list(np.flatnonzero(plain & ~plain_ok))
    parts = []
    for selected, quoting in ((plain_ok, csv.QUOTE_NONE), (balanced, csv.QUOTE_MINIMAL)):
        index = np.flatnonzero(selected)
        frame, skipped = _parse_together(lines.join(selected), header, encoding, quoting)
        kept = np.delete(index, np.asarray(skipped, dtype=np.int64) - 1)
        if len(frame) != len(kept):  # a quote still ran over a line end: fall back to one line at a time
            records, wrong = _parse_each(lines, index, width, encoding)
            frame = pd.DataFrame([f for _, f in records], columns=header, dtype=str)
            kept, skipped_index = np.array([i for i, _ in records], dtype=np.int64), wrong
        else:
            skipped_index = index[np.asarray(skipped, dtype=np.int64) - 1].tolist()
        bad += skipped_index
        parts.append(frame.assign(_line=kept))
    records, wrong = _parse_each(lines, np.flatnonzero(body & (lines.quotes % 2 == 1)), width, encoding)
    bad += wrong
    if records:
        parts.append(pd.DataFrame([f for _, f in records], columns=header, dtype=str)
                     .assign(_line=[i for i, _ in records]))
    frame = pd.concat(parts, ignore_index=True).sort_values("_line", kind="stable")
    malformed = [_where(lines, i, encoding, name, line_offset) for i in sorted(int(b) for b in bad)]
    undecodable = [_where(lines, i, encoding, name, line_offset) for i in lines.undecodable(encoding)]
    column = parse(frame[ID], name, frame["_line"].to_numpy() + 1 + line_offset)
    ok = column.ok
    bad_ids = [f"{name}:{n}" for n in column.lines[~ok].tolist()]
    frame = frame[ok]
    title = frame["title"].fillna("")
    title = title.where(~title.str.isspace().astype(bool), "")  # only spaces: no title
    out = pd.DataFrame({ID: column.ids[ok], "title": title.to_numpy(dtype=object),
                        "grid_reference": frame["grid_reference"].fillna("").to_numpy(dtype=object)})
    return out, malformed, bad_ids, undecodable, column.respelt


def _where(lines: _Lines, i: int, encoding: str, name: str, line_offset: int) -> str:
    """A line in messages: "file:line (id N)", the id when the line starts with one."""
    found = _LEADING_ID.match(lines.text(i, encoding))
    return f"{name}:{i + 1 + line_offset}" + (f" (id {found.group(1)})" if found else "")

