"""Stream a types dataset (JSON lines) into arrays, chunk by chunk, reporting every line it cannot use.

One photo per line: `gridimage_id`, `embeddings` (base64 of little-endian float32 x 512), `distance`
(snapped metres as a string, "0", "" or "Unknown"; missing -> "Unknown"), `types` (comma-separated raw
type tags), `split` ("tra", "val", "tes"), optional `weight`, `title`, `path` (others are ignored).

A line is skipped, counted and named in the report (never turned into a zero vector) when it is not a
JSON object, has no usable id, repeats an id, has no embedding, an embedding that is not base64 or not
512 float32 values, NaN/Inf values, or a weight that is not a non-negative number. A line is kept but
its value counted and named (`unusual`) when its distance is not in the published table (the model reads
it as "Unknown") or its split is not tra/val/tes (no training or scoring split uses it).

The file may be gzip-compressed (the published `.jsonl.gz`), recognised by its first bytes whatever its
name, and is decompressed as it is read. A truncated or damaged gzip stream stops the read with a
DataError naming the last line read whole, after the lines before it have been yielded.
"""
from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from ..compressed import STREAM_ERRORS, LineSource
from ..console import progress
from ..errors import DataError
from .distance import DIST_MAP, UNKNOWN

CLIP_DIM = 512
EXAMPLES_PER_REASON = 10
SPLIT_NAMES = ("tra", "val", "tes")  # "" (no split given) is usual too: unlabelled files have none
ODD_DISTANCE = "distance not in the published table (read as Unknown)"
ODD_SPLIT = "split not tra/val/tes"


@dataclass
class TypeRows:
    """Photos read from a types dataset, aligned row by row."""

    ids: np.ndarray  # int64 (N,)
    embeddings: np.ndarray  # float32 (N, D)
    distance: np.ndarray  # object (N,) the stored strings
    types: np.ndarray  # object (N,) raw comma-separated type tags, "" when absent
    split: np.ndarray  # object (N,) "tra" / "val" / "tes" / ""
    weight: np.ndarray  # float32 (N,), NaN where the line gives none
    line: np.ndarray  # int64 (N,) 1-based line numbers in the source file

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, index) -> "TypeRows":
        return TypeRows(*(getattr(self, name)[index] for name in self.__dataclass_fields__))

    @classmethod
    def concat(cls, parts: list["TypeRows"], dim: int = CLIP_DIM) -> "TypeRows":
        if not parts:
            return cls(np.empty(0, np.int64), np.empty((0, dim), np.float32), *(np.empty(0, object) for _ in range(3)),
                       np.empty(0, np.float32), np.empty(0, np.int64))
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__))


@dataclass
class ReadReport:
    """What happened to each line: rows kept, blank lines, and skipped lines by reason (with examples)."""

    path: str
    lines: int = 0
    rows: int = 0
    blank: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)  # reason -> ["line N: detail", ...] (first few)
    unusual: Counter = field(default_factory=Counter)  # values kept but not as published, by kind
    unusual_examples: dict = field(default_factory=dict)  # kind -> ["line N: detail", ...] (first few)

    def skip(self, reason: str, line: int, detail: str = "") -> None:
        _count(self.skipped, self.examples, reason, line, detail)

    def note(self, kind: str, line: int, detail: str = "") -> None:
        """A kept line with a value outside the published ones (`kind`)."""
        _count(self.unusual, self.unusual_examples, kind, line, detail)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        head = f"{self.path}: {self.rows} photos from {self.lines} lines"
        if self.blank:
            head += f" ({self.blank} blank)"
        head += (f"; skipped {self.n_skipped}: {_listed(self.skipped, self.examples)}" if self.skipped
                 else "; no line skipped")
        if self.unusual:
            head += f"; kept with unusual values: {_listed(self.unusual, self.unusual_examples)}"
        return head

    def to_dict(self) -> dict:
        return {"path": self.path, "lines": self.lines, "rows": self.rows, "blank": self.blank,
                "skipped": dict(self.skipped), "examples": self.examples, "unusual": dict(self.unusual),
                "unusual_examples": self.unusual_examples}


def _count(counter: Counter, examples: dict, reason: str, line: int, detail: str) -> None:
    counter[reason] += 1
    shown = examples.setdefault(reason, [])
    if len(shown) < EXAMPLES_PER_REASON:
        shown.append(f"line {line}" + (f": {detail}" if detail else ""))


def _listed(counter: Counter, examples: dict) -> str:
    return "; ".join(f"{n} {reason} ({'; '.join(examples[reason])}{', ...' if n > len(examples[reason]) else ''})"
                     for reason, n in counter.most_common())


class _Chunk:
    """Accumulates the fields of good lines until a chunk is full."""

    def __init__(self):
        self.ids, self.vectors, self.distance, self.types, self.split, self.weight, self.line = ([] for _ in range(7))

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, dim: int) -> TypeRows:
        emb = np.frombuffer(b"".join(self.vectors), dtype="<f4").reshape(len(self.ids), dim).astype(np.float32)
        return TypeRows(np.asarray(self.ids, dtype=np.int64), emb, np.asarray(self.distance, dtype=object),
                        np.asarray(self.types, dtype=object), np.asarray(self.split, dtype=object),
                        np.asarray(self.weight, dtype=np.float32), np.asarray(self.line, dtype=np.int64))


class _BadLine(Exception):
    """A line the reader cannot use: why (the report's key) and the particulars."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason, detail)
        self.reason, self.detail = reason, detail


def _parse(text: str, dim: int, seen: dict) -> tuple:
    """One line -> (id, vector bytes, distance, types, split, weight); _BadLine if unusable."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _BadLine("malformed JSON", f"{exc.msg}, column {exc.colno}") from None
    if not isinstance(record, dict):
        raise _BadLine("not a JSON object", type(record).__name__)
    raw_id = record.get("gridimage_id")
    if raw_id is None:
        raise _BadLine("missing gridimage_id")
    if isinstance(raw_id, bool) or not (isinstance(raw_id, int) or (isinstance(raw_id, str) and raw_id.strip().isdigit())):
        raise _BadLine("bad gridimage_id", repr(raw_id)[:40])
    gid = int(raw_id)
    if gid < 0:
        raise _BadLine("bad gridimage_id", str(gid))
    if gid in seen:
        raise _BadLine("duplicate gridimage_id", f"{gid}, first on line {seen[gid]}")
    encoded = record.get("embeddings")
    if encoded is None or encoded == "":
        raise _BadLine("missing embeddings", f"gridimage_id {gid}")
    if not isinstance(encoded, str):
        raise _BadLine("undecodable embeddings", f"gridimage_id {gid}: expected a base64 string, got {type(encoded).__name__}")
    try:
        vector = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _BadLine("undecodable embeddings", f"gridimage_id {gid}: {exc}") from None
    if len(vector) != 4 * dim:
        raise _BadLine("wrong-length vector", f"gridimage_id {gid}: {len(vector) / 4:g} float32 values, expected {dim}")
    bad = int((~np.isfinite(np.frombuffer(vector, dtype="<f4"))).sum())
    if bad:
        raise _BadLine("NaN/Inf values", f"gridimage_id {gid}: {bad} of {dim} values")
    weight = record.get("weight")
    if weight is None or weight == "":
        weight = np.nan
    else:
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            raise _BadLine("bad weight", f"gridimage_id {gid}: {weight!r}") from None
        if not np.isfinite(weight) or weight < 0:
            raise _BadLine("bad weight", f"gridimage_id {gid}: {weight!r}")
    distance = record.get("distance", UNKNOWN)
    distance = UNKNOWN if distance is None else str(distance).strip()
    types = record.get("types") or ""
    return gid, vector, distance, str(types), str(record.get("split") or "").strip(), weight


def iter_rows(path: str | Path, report: ReadReport | None = None, chunk_rows: int = 65_536,
              dim: int = CLIP_DIM, strict: bool = False) -> Iterator[TypeRows]:
    """Yield the file's usable photos in chunks of up to `chunk_rows`, filling `report` as it goes.

    strict=True raises DataError at the first unusable line instead of skipping it. A truncated or
    damaged gzip file raises DataError after the photos read before the damage have been yielded."""
    path = Path(path)
    report = report if report is not None else ReadReport(str(path))
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: a folder, not a types dataset file")
    seen: dict[int, int] = {}  # id -> line it was first read from
    chunk, broken, done = _Chunk(), None, 0
    with LineSource(path) as source, progress(desc=f"read {path.name}", unit="B", unit_scale=True,
                                              total=source.size) as bar:
        try:
            for number, raw in enumerate(source, start=1):
                bar.update(source.position - done)
                done = source.position
                report.lines = number
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    _fail(report, strict, path, "malformed JSON", number, f"not UTF-8 ({exc.reason})")
                    continue
                if not text.strip():
                    report.blank += 1
                    continue
                try:
                    gid, vector, distance, types, split, weight = _parse(text.strip(), dim, seen)
                except _BadLine as bad:
                    _fail(report, strict, path, bad.reason, number, bad.detail)
                    continue
                seen[gid] = number
                _note_unusual(report, number, gid, distance, split)
                for store, value in zip((chunk.ids, chunk.vectors, chunk.distance, chunk.types, chunk.split,
                                         chunk.weight, chunk.line), (gid, vector, distance, types, split, weight, number)):
                    store.append(value)
                if len(chunk) >= chunk_rows:
                    yield _finish(chunk, dim, report)
                    chunk = _Chunk()
        except STREAM_ERRORS as exc:
            broken = exc
    if len(chunk):
        yield _finish(chunk, dim, report)
    if broken is not None:
        raise DataError(_broken_stream(path, report, broken))


def read_types(path: str | Path, dim: int = CLIP_DIM, strict: bool = False) -> tuple[TypeRows, ReadReport]:
    """The whole file's usable photos and the report; DataError when no line is usable."""
    report = ReadReport(str(path))
    rows = TypeRows.concat(list(iter_rows(path, report, dim=dim, strict=strict)), dim)
    if not len(rows):
        raise DataError(f"no usable photo in {report.summary()}")
    return rows, report


def _finish(chunk: _Chunk, dim: int, report: ReadReport) -> TypeRows:
    rows = chunk.rows(dim)
    report.rows += len(rows)
    return rows


def _fail(report: ReadReport, strict: bool, path: Path, reason: str, line: int, detail: str) -> None:
    if strict:
        raise DataError(f"{path}, line {line}: {reason}" + (f" ({detail})" if detail else ""))
    report.skip(reason, line, detail)


def _note_unusual(report: ReadReport, line: int, gid: int, distance: str, split: str) -> None:
    if distance not in DIST_MAP:
        report.note(ODD_DISTANCE, line, f"gridimage_id {gid}: {distance!r}")
    if split and split not in SPLIT_NAMES:
        report.note(ODD_SPLIT, line, f"gridimage_id {gid}: {split!r}")


def _broken_stream(path: Path, report: ReadReport, exc: Exception) -> str:
    """One line: where a gzip stream broke, the last line read whole, and what was read before it."""
    what = "ends early (truncated)" if isinstance(exc, EOFError) else "is damaged"
    where = f"after line {report.lines}, the last line read whole" if report.lines else "before its first line"
    read = report.summary().removeprefix(f"{report.path}: ")
    return f"{path}: the gzip data {what} {where} ({exc}); read before it: {read}"
