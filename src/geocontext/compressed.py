"""Line files that may be gzip-compressed, recognised by their first bytes (not their name), read as a stream.

Published data ships as `.jsonl.gz`, and a file keeps working when renamed, or when a platform unpacks it
but keeps the name: whether it is compressed is read from the gzip magic bytes. Other compressions are
named in a clear error rather than read as text.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from .errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
_OTHER_MAGIC = {b"PK\x03\x04": "a zip archive", b"BZh": "bzip2-compressed", b"\xfd7zXZ\x00": "xz-compressed",
                b"\x28\xb5\x2f\xfd": "zstd-compressed"}
# What a truncated (EOFError) or damaged gzip stream raises part-way through; the lines before it are good.
STREAM_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


class LineSource:
    """The raw lines (bytes, newline kept) of a plain or gzip file, decompressed as they are read;
    `position` is how far into the file on disk (compressed bytes for gzip) reading has got, for progress
    bars. DataError when the file is compressed in another way."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._raw = open(self.path, "rb")
        head = self._raw.peek(6)[:6]  # peek: nothing consumed, whatever reads the file next
        other = next((what for magic, what in _OTHER_MAGIC.items() if head.startswith(magic)), None)
        if other:
            self._raw.close()
            raise DataError(f"{self.path}: {other}, not JSON lines; unpack it, or compress it with gzip"
                            " (read as it is)")
        self.gzip = head.startswith(GZIP_MAGIC)
        self._lines = gzip.GzipFile(fileobj=self._raw, mode="rb") if self.gzip else self._raw

    def __iter__(self):
        return iter(self._lines)

    def readline(self, limit: int = -1) -> bytes:
        return self._lines.readline(limit)

    @property
    def position(self) -> int:
        return self._raw.tell()

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def close(self) -> None:
        if self._lines is not self._raw:
            self._lines.close()
        self._raw.close()

    def __enter__(self) -> "LineSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
