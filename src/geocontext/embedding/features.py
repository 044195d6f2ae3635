"""The FEATURES folder contract: what `embed` writes and every later stage reads.

FEATURES/{train,test}/ holds ids.npy (int64, N), image.npy and title.npy (float, N x D; an image row
of NaN where the photo was missing) and meta.json (encoder, dim, normalized, ...).
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

_CHUNK = 65_536  # rows fused at a time: bounds the temporaries to a few hundred MB


@dataclass(frozen=True)
class FeatureSet:
    path: Path
    ids: np.ndarray  # int64 (N,)
    image: np.ndarray  # (N, D), memory-mapped
    title: np.ndarray  # (N, D), memory-mapped
    meta: dict

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def missing_images(self) -> np.ndarray:
        """Rows whose image embedding has any NaN or infinite value (photo missing), as a boolean mask."""
        return nonfinite_rows(self, self.image)

    @property
    def missing_titles(self) -> np.ndarray:
        """Rows whose title embedding has any NaN or infinite value, as a boolean mask."""
        return nonfinite_rows(self, self.title)

    def digest(self) -> str:
        """A content hash of ids, image and title, read chunk by chunk (a 600k x 512 split is 2.5 GB of
        float32; sha256, hardware-accelerated on most CPUs, reads it at 1-2 GB/s): another value anywhere gives another digest."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.ids).tobytes())
        for array in (self.image, self.title):
            h.update(f"{array.dtype.str}{array.shape}".encode())
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
    target = Path(folder) / split
    tmp = Path(folder) / f".{split}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "ids.npy", ids)
    np.save(tmp / "image.npy", image)
    np.save(tmp / "title.npy", title)
    meta = {"dim": int(image.shape[1]), "normalized": False, **meta, "rows": len(ids)}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def load_features(folder: str | Path, split: str) -> FeatureSet:
    """Open one split (arrays memory-mapped) and check it against the contract."""
    path = Path(folder) / split
    for name in ("ids.npy", "image.npy", "title.npy", "meta.json"):
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
    arrays = {}
    for name in ("image", "title"):
        arr = np.load(path / f"{name}.npy", mmap_mode="r")
        if arr.ndim != 2 or arr.shape[0] != len(ids) or not np.issubdtype(arr.dtype, np.floating):
            raise DataError(f"{path / (name + '.npy')}: expected a float array of {len(ids)} rows x dim, got {arr.dtype} {arr.shape}")
        if "dim" in meta and arr.shape[1] != meta["dim"]:
            raise DataError(f"{path / (name + '.npy')}: {arr.shape[1]} columns but meta.json says dim {meta['dim']}")
        arrays[name] = arr
    return FeatureSet(path, ids, arrays["image"], arrays["title"], meta)


def looks_normalised(features: FeatureSet, sample: int = 1000) -> bool:
    """Whether the embeddings are L2-normalised: meta.json says so, or, where it is silent, the first
    `sample` image and title rows all have unit norm (raw CLIP rows are far from it)."""
    if "normalized" in features.meta:
        return bool(features.meta["normalized"])
    rows = np.concatenate([np.asarray(features.image[:sample], dtype=np.float64),
                           np.asarray(features.title[:sample], dtype=np.float64)])
    norms = np.linalg.norm(rows[np.isfinite(rows).all(axis=1)], axis=1)
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
    for array in (features.image, features.title):
        mapping = getattr(array, "_mmap", None)
        if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
            mapping.madvise(mmap.MADV_DONTNEED)
