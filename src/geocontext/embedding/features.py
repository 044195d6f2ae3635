"""The FEATURES folder contract: what `embed` writes and every later stage reads.

FEATURES/{train,test}/ holds ids.npy (int64, N), image.npy and title.npy (float, N x D; an image row
of NaN where the photo was missing) and meta.json (encoder, dim, normalized, ...).

Named blocks: meta.json's "blocks" maps each block's name (KIND@ENCODER, e.g. image@ViT-B-32,
title@bge-small-en-v1.5) to its file, kind (image or title), dim and encoder. image.npy and title.npy
hold the folder's default image and title blocks; blocks added later sit beside them as NAME.npy
(embedding.blocks writes them). A meta.json without "blocks" (every folder made before blocks) has
exactly the two default blocks.
"""
from __future__ import annotations

import hashlib
import json
import mmap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..writing import atomic_folder

_CHUNK = 65_536  # rows fused at a time: bounds the temporaries to a few hundred MB
KINDS = ("image", "title")


@dataclass(frozen=True)
class Block:
    name: str  # KIND@ENCODER, or a bare kind in folders made before blocks whose meta names no model
    kind: str  # image | title
    array: np.ndarray  # (N, D), memory-mapped
    info: dict  # file, kind, dim, encoder (its description), identity (embedding.identity), from meta.json
    folder: Path | None = None  # the split folder holding it (names it in messages)

    @property
    def where(self) -> str:
        """The block in messages: its split folder and name."""
        return f"{self.folder}: {self.name}" if self.folder is not None else self.name


@dataclass(frozen=True)
class FeatureSet:
    path: Path
    ids: np.ndarray  # int64 (N,)
    image: np.ndarray | None  # (N, D), memory-mapped: the default image block (None: the folder has none)
    title: np.ndarray | None  # (N, D), memory-mapped: the default title block
    meta: dict
    blocks: dict = field(default_factory=dict)  # name -> Block, every block (of every folder read)
    sources: tuple = ()  # the split folders the blocks come from (several with `run --features A --features B`)

    def __post_init__(self):
        if not self.blocks:  # built directly from two arrays: they are the default blocks
            blocks = {k: Block(k, k, a, {"kind": k, "dim": a.shape[1]}, self.path) for k, a in (("image", self.image),
                                                                                   ("title", self.title)) if a is not None}
            object.__setattr__(self, "blocks", blocks)
        if not self.sources:
            object.__setattr__(self, "sources", (self.path,))

    def __len__(self) -> int:
        return len(self.ids)

    def block(self, name: str) -> Block:
        """The block called `name`; "image" and "title" also name the default block of that kind."""
        if name in self.blocks:
            return self.blocks[name]
        default = getattr(self, name, None) if name in KINDS else None
        for block in self.blocks.values():
            if default is not None and block.array is default:
                return block
        raise DataError(f"{', '.join(map(str, self.sources))}: no feature block {name!r} (blocks here:"
                        f" {', '.join(self.blocks) or 'none'}); embed it, or pass the --features folder that holds it")

    @property
    def missing_images(self) -> np.ndarray:
        """Rows where any image block has a NaN or infinite value (photo missing), as a boolean mask."""
        return self._nonfinite("image")

    @property
    def missing_titles(self) -> np.ndarray:
        """Rows where any title block has a NaN or infinite value, as a boolean mask."""
        return self._nonfinite("title")

    def _nonfinite(self, kind: str) -> np.ndarray:
        missing = np.zeros(len(self), dtype=bool)
        for block in self.blocks.values():
            if block.kind == kind:
                missing |= nonfinite_rows(self, block.array)
        return missing

    def digest(self) -> str:
        """A content hash of ids and every block (its name, dtype, shape and values), read chunk by chunk
        (a 600k x 512 split is 2.5 GB of float32; sha256, hardware-accelerated on most CPUs, reads it at
        1-2 GB/s): another value anywhere gives another digest."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.ids).tobytes())
        # a two-block folder hashes as before blocks existed (same reuse keys); extra blocks add their names
        named = len(self.blocks) > 2
        for name in sorted(self.blocks, key=lambda n: (KINDS.index(self.blocks[n].kind) if self.blocks[n].kind in KINDS else 2, n)):
            array = self.blocks[name].array
            h.update(f"{name if named else ''}{array.dtype.str}{array.shape}".encode())
            for start in range(0, len(self), _CHUNK):
                h.update(np.ascontiguousarray(array[start:start + _CHUNK]).tobytes())
                release(self)
        return h.hexdigest()


def nonfinite_rows(features: FeatureSet, array: np.ndarray) -> np.ndarray:
    """Rows of `array` (one of `features`' memory maps) holding any NaN or infinity, chunk by chunk."""
    bad = np.zeros(len(array), dtype=bool)
    for start in range(0, len(array), _CHUNK):
        bad[start:start + _CHUNK] = ~np.isfinite(array[start:start + _CHUNK]).all(axis=1)
        release(features)
    return bad


def save_features(folder: str | Path, split: str, ids, image, title, meta: dict) -> Path:
    """Write one split atomically: into a temporary folder first, renamed into place when complete."""
    ids = np.asarray(ids, dtype=np.int64)
    image, title = np.asarray(image), np.asarray(title)
    if image.shape != (len(ids), image.shape[1]) or title.shape[0] != len(ids) or image.ndim != 2 or title.ndim != 2:
        raise ValueError(f"image {image.shape} and title {title.shape} must both have {len(ids)} rows")
    meta = {"dim": int(image.shape[1]), "normalized": False, **meta, "rows": len(ids)}

    def fill(tmp: Path) -> None:
        np.save(tmp / "ids.npy", ids)
        np.save(tmp / "image.npy", image)
        np.save(tmp / "title.npy", title)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))

    return atomic_folder(Path(folder) / split, fill, f"the {split} features", ids.nbytes + image.nbytes + title.nbytes)


# What meta.json of a folder made before blocks says about its one encoder's identity.
_LEGACY_IDENTITY = ("model", "weights", "quick_gelu", "dim", "context_length", "tokenizer", "image_size")


def block_table(meta: dict) -> dict[str, dict]:
    """Block name -> {file, kind, dim, identity, ...}: meta.json's "blocks", or the two blocks of an older
    folder (their identity: meta.json's "identity", or what its encoder fields say)."""
    if "blocks" in meta:
        return meta["blocks"]
    label = f"@{meta['model']}" if meta.get("model") else ""
    identity = meta.get("identity") or ({k: meta[k] for k in _LEGACY_IDENTITY if k in meta} if "weights" in meta else None)
    return {f"{kind}{label}": {"file": f"{kind}.npy", "kind": kind, **({"dim": meta["dim"]} if "dim" in meta else {}),
                               **({"identity": identity} if identity else {})} for kind in KINDS}


def load_features(folder: str | Path, split: str) -> FeatureSet:
    """Open one split (arrays memory-mapped) and check it against the contract."""
    path = Path(folder) / split
    for name in ("ids.npy", "meta.json") if (path / "meta.json").exists() else ("ids.npy", "image.npy", "title.npy", "meta.json"):
        if not (path / name).exists():
            raise DataError(f"{path / name}: missing (FEATURES/{split}/ needs ids.npy, image.npy, title.npy, meta.json)")
    try:
        meta = json.loads((path / "meta.json").read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path / 'meta.json'}: not valid JSON ({exc})") from exc
    ids = np.load(path / "ids.npy")
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise DataError(f"{path / 'ids.npy'}: expected a 1-D integer array, got {ids.dtype} {ids.shape}")
    ids = ids.astype(np.int64, copy=False)
    uniq, counts = np.unique(ids, return_counts=True)
    if len(uniq) != len(ids):
        raise DataError(f"{path / 'ids.npy'}: gridimage_id {uniq[counts > 1][0]} appears more than once")
    blocks = {}
    for name, info in block_table(meta).items():
        file = path / info["file"]
        if not file.exists():
            raise DataError(f"{file}: missing (meta.json lists it as block {name!r}); re-run the embedding that made it")
        arr = np.load(file, mmap_mode="r")
        if arr.ndim != 2 or arr.shape[0] != len(ids) or not np.issubdtype(arr.dtype, np.floating):
            raise DataError(f"{file}: expected a float array of {len(ids)} rows x dim, got {arr.dtype} {arr.shape}")
        if "dim" in info and arr.shape[1] != info["dim"]:
            raise DataError(f"{file}: {arr.shape[1]} columns but meta.json says dim {info['dim']}")
        blocks[name] = Block(name, info["kind"], arr, info, path)
    defaults = {k: next((b.array for b in blocks.values() if b.info["file"] == f"{k}.npy"),
                        next((b.array for b in blocks.values() if b.kind == k), None)) for k in KINDS}
    return FeatureSet(path, ids, defaults["image"], defaults["title"], meta, blocks)


def looks_normalised(features: FeatureSet, sample: int = 1000) -> bool:
    """Whether the embeddings are L2-normalised: meta.json says so, or, where it is silent, the first
    `sample` image and title rows all have unit norm (raw CLIP rows are far from it)."""
    if "normalized" in features.meta:
        return bool(features.meta["normalized"])
    blocks = [np.asarray(b.array[:sample], dtype=np.float64) for b in features.blocks.values()]
    norms = np.concatenate([np.linalg.norm(rows[np.isfinite(rows).all(axis=1)], axis=1) for rows in blocks])
    return len(norms) > 0 and bool(np.all(np.abs(norms - 1) < 1e-3))


def align(features: FeatureSet, ids: np.ndarray, source: str) -> np.ndarray:
    """Row index into `features` for each of `ids`; every id must be there."""
    order = np.argsort(features.ids)
    pos = np.searchsorted(features.ids, ids, sorter=order)
    pos = np.minimum(pos, len(order) - 1) if len(order) else pos
    found = (features.ids[order[pos]] == ids) if len(order) else np.zeros(len(ids), dtype=bool)
    if not found.all():
        missing = ids[~found]
        raise DataError(
            f"{features.path}: {len(missing)} gridimage_id(s) listed in {source} have no features,"
            f" e.g. {', '.join(map(str, missing[:5]))}; re-run `geocontext embed` for them"
        )
    return order[pos]


def release(features: FeatureSet) -> None:
    """Drop the pages of the memory-mapped arrays from this process; the OS keeps them cached.

    Mapped pages count as the process's resident memory, so after one pass over 600k x 512 floats
    the run would look 2.5 GB bigger than it is."""
    for array in (b.array for b in features.blocks.values()):
        mapping = getattr(array, "_mmap", None)
        if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
            mapping.madvise(mmap.MADV_DONTNEED)
