"""Embedding work in progress: fixed-size chunks of one split's id list, each file written atomically.

    FEATURES/chunks/{split}/manifest.json       what all chunks share: encoder identity, chunk size, the ids
    FEATURES/chunks/{split}/chunk-00012.npz     rows [12 * chunk_size, 13 * chunk_size) of the split

A chunk file appears complete or not at all (written beside, then renamed), so a killed run loses at most
the chunk it was working on, and any number of processes (shards) can fill one folder.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..writing import atomic_file
from .identity import compare, shown

# Manifest keys that fix the numbers: chunks disagreeing on any of them cannot be mixed.
BINDING = ("split", "rows", "ids_sha256", "chunk_size", "identity")


def ids_digest(ids: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(ids, dtype="<i8").tobytes()).hexdigest()


@dataclass(frozen=True)
class Plan:
    """How one split's ids are cut into chunks, and which chunks shard `i` of `n` embeds."""

    split: str
    ids: np.ndarray
    chunk_size: int

    def __post_init__(self):
        if self.chunk_size < 1:
            raise ValueError(f"chunk size must be at least 1, got {self.chunk_size}")

    @property
    def n_chunks(self) -> int:
        return -(-len(self.ids) // self.chunk_size)

    def bounds(self, k: int) -> tuple[int, int]:
        return k * self.chunk_size, min((k + 1) * self.chunk_size, len(self.ids))

    def shard(self, i: int, n: int) -> range:
        """Shard i of n (1-based): a contiguous run of chunks; the n runs cover every chunk once."""
        if not 1 <= i <= n:
            raise ValueError(f"shard must be I/N with 1 <= I <= N, got {i}/{n}")
        return range((i - 1) * self.n_chunks // n, i * self.n_chunks // n)

    def manifest(self, encoder: dict, identity: dict) -> dict:
        return {"split": self.split, "rows": len(self.ids), "ids_sha256": ids_digest(self.ids),
                "chunk_size": self.chunk_size, "chunks": self.n_chunks, "identity": identity, "encoder": encoder}


@dataclass(frozen=True)
class Chunk:
    ids: np.ndarray  # int64 (n,)
    image: np.ndarray  # float32 (n, D), NaN rows where the photo could not be read
    title: np.ndarray  # float32 (n, D)
    failed: np.ndarray  # int64: rows (within the chunk) whose photo could not be read
    reasons: np.ndarray  # str, one per failed row
    info: dict  # how it was made: device, precision, batch size, seconds, title counts


class ChunkStore:
    """The chunk folder of one split."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> dict | None:
        if not self.manifest_path.exists():
            return None
        try:
            return json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{self.manifest_path}: not valid JSON ({exc}); delete {self.root} to start over") from exc

    def open(self, manifest: dict) -> None:
        """Start or continue: an existing folder must have been made for the same ids and encoder."""
        found = self.manifest()
        if found is None:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_file(self.manifest_path, lambda h: h.write(json.dumps(manifest, indent=2).encode()),
                        "the chunks' manifest", fsync=True)
            return
        clash = mismatch(found, manifest)
        if clash:
            raise DataError(f"{self.root}: these chunks were made with {clash}; embed into another --out,"
                            f" or delete {self.root} to start this split over")

    def path(self, k: int) -> Path:
        return self.root / f"chunk-{k:05d}.npz"

    def done(self) -> set[int]:
        return {int(p.stem.split("-")[1]) for p in self.root.glob("chunk-*.npz")}

    def remove_partial(self, chunks) -> None:
        """Leftovers of a killed run (never renamed into place) for the chunks this process owns (the
        older spelling without the leading dot too)."""
        for k in chunks:
            for pattern in (f".{self.path(k).name}.tmp-*", f"{self.path(k).name}.tmp-*"):
                for tmp in self.root.glob(pattern):
                    tmp.unlink(missing_ok=True)

    def write(self, k: int, chunk: Chunk) -> None:
        atomic_file(self.path(k), lambda h: np.savez(
            h, ids=chunk.ids.astype(np.int64), image=chunk.image.astype(np.float32),
            title=chunk.title.astype(np.float32), failed=chunk.failed.astype(np.int64),
            reasons=np.asarray(chunk.reasons, dtype=str), info=np.asarray(json.dumps(chunk.info))),
            f"chunk {k}", needed=chunk.image.size * 4 + chunk.title.size * 4 + chunk.ids.nbytes, fsync=True)

    def read(self, k: int) -> Chunk:
        path = self.path(k)
        try:
            with np.load(path, allow_pickle=False) as z:
                return Chunk(z["ids"], z["image"], z["title"], z["failed"], z["reasons"], json.loads(str(z["info"])))
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path}: unreadable chunk ({exc}); delete it and re-run the embedding to redo it") from exc


def mismatch(found: dict, wanted: dict) -> str:
    """'' when two manifests agree on what fixes the numbers, else what differs, in words. Encoder fields
    only one manifest records (an older one) are not compared; precision binds here: one split's chunks
    are never a mix of bf16 and fp32."""
    for key in BINDING:
        if found.get(key) != wanted.get(key):
            if key == "identity":
                differ, _ = compare(found[key], wanted[key], lenient=False)
                if not differ:
                    continue
                return "another encoder: " + ", ".join(f"{k} {shown(a)!r} (now {shown(b)!r})" for k, a, b in differ)
            if key in ("rows", "ids_sha256"):
                return f"another id list ({found.get('rows')} ids, now {wanted.get('rows')}; the DATA lists changed?)"
            return f"{key} {found.get(key)!r} (now {wanted.get(key)!r})"
    return ""
