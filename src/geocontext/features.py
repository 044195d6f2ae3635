"""The FEATURES folder contract, and fusing its modalities into one model input.

FEATURES/{train,test}/ holds ids.npy (int64, N), image.npy and title.npy (float, N x D; an image row
of NaN where the photo was missing) and meta.json (encoder, dim, normalized, ...).
"""
from __future__ import annotations

import json
import mmap
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

MODALITIES = ("image", "title", "location")
SHORT = {"image": "img", "title": "txt", "location": "loc"}
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
        """Rows whose photo could not be embedded (NaN rows), as a boolean mask."""
        missing = np.zeros(len(self), dtype=bool)
        for start in range(0, len(self), _CHUNK):
            missing[start:start + _CHUNK] = np.isnan(self.image[start:start + _CHUNK, 0])
            release(self)
        return missing


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
    norms = np.linalg.norm(rows[~np.isnan(rows).any(axis=1)], axis=1)
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


@dataclass(frozen=True)
class FeatureSpec:
    """How the modalities become one input row, in the order image, title, location.

    unknown="flag" adds a 0/1 column after the image block (photo missing) and after the location
    block (square unknown), so the head can tell "unknown" from a real value. unknown="zero" is the
    published convention: zeros and nothing else. irish_grid=False treats photos on the Irish Grid as
    unknown, as the published pipeline did (it resolved British National Grid references only).
    """

    modalities: tuple[str, ...] = MODALITIES
    l2_normalize: bool = True
    unknown: str = "flag"
    irish_grid: bool = True

    def __post_init__(self):
        object.__setattr__(self, "modalities", tuple(self.modalities))
        if not self.modalities or any(m not in MODALITIES for m in self.modalities):
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {self.modalities}")
        if tuple(m for m in MODALITIES if m in self.modalities) != self.modalities:
            raise ValueError(f"modalities must keep the order {MODALITIES}, got {self.modalities}")
        if self.unknown not in ("flag", "zero"):
            raise ValueError(f"unknown must be 'flag' or 'zero', got {self.unknown!r}")

    @property
    def name(self) -> str:
        return "-".join(SHORT[m] for m in self.modalities)

    def dim(self, embed_dim: int) -> int:
        flag = self.unknown == "flag"
        sizes = {"image": embed_dim + flag, "title": embed_dim, "location": 2 + flag}
        return sum(sizes[m] for m in self.modalities)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpec":
        return cls(**d)


def _take(array: np.ndarray, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[:] = array[rows] as float32, reading a memory map in ascending row order (sequential disk
    access); rows in one contiguous ascending run (a whole split, in file order) are a plain slice."""
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and np.all(np.diff(rows) == 1):
        out[:] = array[rows[0]:rows[-1] + 1]
        return out
    order = np.argsort(rows, kind="stable")
    out[order] = array[rows[order]]
    return out


def _l2_(block: np.ndarray) -> None:
    """Scale the rows of `block` to unit norm, in place (all-zero rows stay zero)."""
    norm = np.sqrt(np.einsum("ij,ij->i", block, block))[:, None]  # no N x D temporary, unlike linalg.norm
    np.divide(block, np.maximum(norm, 1e-12), out=block)


def release(features: FeatureSet) -> None:
    """Drop the pages of the memory-mapped arrays from this process; the OS keeps them cached.

    Mapped pages count as the process's resident memory, so after one pass over 600k x 512 floats
    the run would look 2.5 GB bigger than it is."""
    for array in (features.image, features.title):
        mapping = getattr(array, "_mmap", None)
        if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
            mapping.madvise(mmap.MADV_DONTNEED)


def _fill(spec: FeatureSpec, features: FeatureSet, rows: np.ndarray, location: np.ndarray,
          out: np.ndarray) -> np.ndarray:
    """Write the model input of `features` rows `rows` into `out`, block by block (no concatenation)."""
    flag, dim, col = spec.unknown == "flag", features.image.shape[1], 0
    if "image" in spec.modalities:
        img = _take(features.image, rows, out[:, col:col + dim])
        missing = np.isnan(img).any(axis=1)
        img[missing] = 0.0
        if spec.l2_normalize:
            _l2_(img)
        col += dim
        if flag:
            out[:, col] = missing
            col += 1
    if "title" in spec.modalities:
        txt = _take(features.title, rows, out[:, col:col + dim])
        if spec.l2_normalize:
            _l2_(txt)
        col += dim
    if "location" in spec.modalities:
        unknown = np.isnan(location).any(axis=1)
        out[:, col:col + 2] = np.where(unknown[:, None], 0.0, location)
        col += 2
        if flag:
            out[:, col] = unknown
    return out


def _location_for(spec: FeatureSpec, location: np.ndarray, irish: np.ndarray | None) -> np.ndarray:
    if "location" in spec.modalities and not spec.irish_grid:
        if irish is None:
            raise ValueError("this feature spec treats Irish Grid squares as unknown: pass `irish`")
        return np.where(np.asarray(irish, dtype=bool)[:, None], np.nan, location)
    return location


def fuse_chunks(spec: FeatureSpec, features: FeatureSet, rows: np.ndarray, location: np.ndarray,
                irish: np.ndarray | None = None, chunk: int = _CHUNK):
    """Yield (start, float32 block) of the model input for `features` rows `rows` (in their order).

    `location` is (len(rows), 2) normalised lat/lon with NaN where the square is unknown; `irish` (bool,
    len(rows)) marks squares on the Irish Grid, needed when the spec leaves those unknown."""
    location = _location_for(spec, location, irish)
    dim = spec.dim(features.image.shape[1])
    for start in range(0, len(rows), chunk):
        sel = rows[start:start + chunk]
        block = _fill(spec, features, sel, location[start:start + chunk], np.empty((len(sel), dim), np.float32))
        release(features)  # a chunk's mapped pages are not needed again
        yield start, block


def fuse(spec: FeatureSpec, features: FeatureSet, rows: np.ndarray, location: np.ndarray,
         irish: np.ndarray | None = None) -> np.ndarray:
    """The whole float32 model input for `features` rows `rows` as one array (see `fuse_chunks`)."""
    out = np.empty((len(rows), spec.dim(features.image.shape[1])), dtype=np.float32)
    location = _location_for(spec, location, irish)
    for start in range(0, len(rows), _CHUNK):  # straight into `out`, chunk by chunk to bound mapped pages
        stop = start + _CHUNK
        _fill(spec, features, rows[start:stop], location[start:stop], out[start:stop])
        release(features)
    return out
