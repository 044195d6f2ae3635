"""Stream a types dataset (JSON lines) into arrays, chunk by chunk, reporting every line it cannot use.

One photo per line: `gridimage_id`, `embeddings` (base64 of little-endian float32 x 512), `distance`
(snapped metres as a string, "0", "" or "Unknown"; missing -> "Unknown"), `types` (comma-separated raw
type tags), `split` ("tra", "val", "tes"), optional `weight`, `title`, `path` (others are ignored).

A line is skipped, counted and named in the report (never turned into a zero vector) when it is not a
JSON object, has no usable id, repeats an id, has no embedding, an embedding that is not base64 or not
512 float32 values, NaN/Inf values, or a weight that is not a non-negative number.
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

from ..console import progress
from ..errors import DataError
from .distance import UNKNOWN

CLIP_DIM = 512
EXAMPLES_PER_REASON = 10


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

    def skip(self, reason: str, line: int, detail: str = "") -> None:
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES_PER_REASON:
            shown.append(f"line {line}" + (f": {detail}" if detail else ""))

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        head = f"{self.path}: {self.rows} photos from {self.lines} lines"
        if self.blank:
            head += f" ({self.blank} blank)"
        if not self.skipped:
            return head + "; no line skipped"
        parts = [f"{n} {reason} ({'; '.join(self.examples[reason])}{', ...' if n > len(self.examples[reason]) else ''})"
                 for reason, n in self.skipped.most_common()]
        return head + f"; skipped {self.n_skipped}: " + "; ".join(parts)

    def to_dict(self) -> dict:
        return {"path": self.path, "lines": self.lines, "rows": self.rows, "blank": self.blank,
                "skipped": dict(self.skipped), "examples": self.examples}


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

    strict=True raises DataError at the first unusable line instead of skipping it."""
    path = Path(path)
    report = report if report is not None else ReadReport(str(path))
    if not path.exists():
        raise DataError(f"{path}: file not found")
    seen: dict[int, int] = {}  # id -> line it was first read from
    chunk = _Chunk()
    with open(path, "rb") as handle, progress(desc=f"read {path.name}", unit="B", unit_scale=True,
                                              total=path.stat().st_size) as bar:
        for number, raw in enumerate(handle, start=1):
            bar.update(len(raw))
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
            for store, value in zip((chunk.ids, chunk.vectors, chunk.distance, chunk.types, chunk.split, chunk.weight,
                                     chunk.line), (gid, vector, distance, types, split, weight, number)):
                store.append(value)
            if len(chunk) >= chunk_rows:
                yield _finish(chunk, dim, report)
                chunk = _Chunk()
    if len(chunk):
        yield _finish(chunk, dim, report)


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
