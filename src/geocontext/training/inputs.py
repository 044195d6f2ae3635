"""A variant's model input: the FEATURES modalities fused into one float32 row per photo (FeatureSpec),
chunk by chunk, and standardised with the training rows' column statistics (Standardizer)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from ..embedding.features import KINDS, FeatureSet, release
from ..fields import name_list
from .location import fourier_features

MODALITIES = ("image", "title", "location")
SHORT = {"image": "img", "title": "txt", "location": "loc"}
_CHUNK = 65_536  # rows fused at a time: bounds the temporaries to a few hundred MB


@dataclass(frozen=True)
class FeatureSpec:
    """How the modalities become one input row, in the order image, title, location.

    A row with any NaN or infinite value in a block is that block missing: zeros. unknown="flag" adds a
    0/1 column after each image block (photo missing), after each title block (title embedding missing)
    and after the location block (square unknown), so the head can tell "unknown" from a real value.
    unknown="zero" is the published convention: zeros and nothing else. irish_grid=False treats photos on
    the Irish Grid as unknown, as the published pipeline did (it resolved British National Grid
    references only). zero_location=True gives every photo the location [0, 0]: what the published
    heads were trained and scored on (their notebooks' square lookup always failed; see the README).
    blocks names the FEATURES blocks fused, in order (e.g. image@ViT-B-32, title@bge-small-en-v1.5); each
    block's kind (before the @) must be among the modalities. Empty: the default image and title blocks.
    priors=True adds, after the location block, the location priors of training.location (what training
    photos in the same 1, 10 and 100 km squares were tagged); fourier=True adds random Fourier features of
    the location after them. neighbours=True adds, last, the id-neighbour block of training.neighbours
    (what the labelled photos uploaded just before and after were tagged; needs the photos' ids).
    peers=True adds, before that block, the peers' columns of training.peers (what a first-stage model
    makes of the photos uploaded just before and after, labelled or not); peers="content" adds instead
    what those photos look like (their own content's principal components: no label read; issue 32's
    lever 2). All four are `extra` columns (`extra_columns`), computed beside the fused blocks.
    """

    modalities: tuple[str, ...] = MODALITIES
    l2_normalize: bool = True
    unknown: str = "flag"
    irish_grid: bool = True
    zero_location: bool = False
    blocks: tuple[str, ...] = ()
    priors: bool = False
    fourier: bool = False
    neighbours: bool = False
    peers: bool | str = False  # False, True (a first stage's scores) or "content" (see above)

    def __post_init__(self):
        object.__setattr__(self, "modalities", name_list("features.modalities", self.modalities, MODALITIES))
        if not self.modalities or any(m not in MODALITIES for m in self.modalities):
            raise ValueError(f"features.modalities must be a non-empty subset of {MODALITIES}, got {self.modalities}")
        if tuple(m for m in MODALITIES if m in self.modalities) != self.modalities:
            raise ValueError(f"features.modalities must keep the order {MODALITIES}, got {self.modalities}")
        if self.unknown not in ("flag", "zero"):
            raise ValueError(f"features.unknown must be 'flag' or 'zero', got {self.unknown!r}")
        for name in ("l2_normalize", "irish_grid", "zero_location", "priors", "fourier", "neighbours"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"features.{name} must be true or false, got {getattr(self, name)!r}")
        if self.peers == "scores":
            object.__setattr__(self, "peers", True)
        if not (isinstance(self.peers, bool) or self.peers == "content"):
            raise ValueError(f"features.peers must be true, false, \"scores\" or \"content\", got {self.peers!r}")
        if self.encodes_location and ("location" not in self.modalities or self.zero_location):
            raise ValueError("features.priors and features.fourier need the location modality (and zero_location false)")
        object.__setattr__(self, "blocks", name_list("features.blocks", self.blocks))
        kinds = [b.split("@")[0] for b in self.blocks]
        if self.blocks and (any(k not in self.modalities or k not in KINDS for k in kinds)
                            or any(m not in kinds for m in KINDS if m in self.modalities)):
            raise ValueError(f"features.blocks {list(self.blocks)}: each must be image@... or title@... of a"
                             f" modality in {self.modalities}, and each of those modalities needs a block")

    @property
    def name(self) -> str:
        peers = ["pr" if self.peers is True else "prc"] if self.peers else []
        encoders = ["pri"] * self.priors + ["rff"] * self.fourier + peers + ["nb"] * self.neighbours
        if not self.blocks:
            return "-".join([SHORT[m] for m in self.modalities] + encoders)
        parts = [SHORT[b.split("@")[0]] + b[len(b.split("@")[0]):] for b in self.blocks]
        return "-".join(parts + (["loc"] if "location" in self.modalities else []) + encoders)

    @property
    def encodes_location(self) -> bool:
        """Whether the input has location encoder columns (priors, Fourier features)."""
        return self.priors or self.fourier

    @property
    def has_extra(self) -> bool:
        """Whether the input ends with extra columns: location encoders, peers, the id-neighbour block."""
        return bool(self.encodes_location or self.neighbours or self.peers)

    @property
    def reads_ids(self) -> bool:
        """Whether the input reads the photos' ids (the id-neighbour block, the peers' columns)."""
        return bool(self.neighbours or self.peers)

    def block_names(self) -> tuple[str, ...]:
        """The blocks fused, by name ("image" and "title" name a folder's default blocks)."""
        return self.blocks or tuple(m for m in self.modalities if m in KINDS)

    def width(self, features: FeatureSet, extra: int = 0) -> int:
        """Columns of the fused input for these features (plus `extra` location encoder columns)."""
        flag = self.unknown == "flag"
        sizes = [features.block(n).array.shape[1] + flag for n in self.block_names()]
        return sum(sizes) + (2 + flag if "location" in self.modalities else 0) + extra

    def dim(self, embed_dim: int) -> int:
        flag = self.unknown == "flag"
        sizes = {"image": embed_dim + flag, "title": embed_dim + flag, "location": 2 + flag}
        return sum(sizes[m] for m in self.modalities)

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in ("blocks", "priors", "fourier", "neighbours", "peers"):  # left out when off: older saved variants compare equal
            if not d[name]:
                del d[name]
        return d

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


def with_all_blocks(spec: FeatureSpec, features: FeatureSet) -> FeatureSpec:
    """The default spec (no blocks named) on blocks read from several FEATURES folders: every image and
    title block there, named. Else `spec` as it is."""
    if spec.blocks or len(features.sources) < 2:
        return spec
    names = [n for kind in KINDS if kind in spec.modalities for n, b in features.blocks.items() if b.kind == kind]
    return replace(spec, blocks=tuple(names))


def _fill(spec: FeatureSpec, features: FeatureSet, rows: np.ndarray, location: np.ndarray,
          extra: np.ndarray | None, out: np.ndarray) -> np.ndarray:
    """Write the model input of `features` rows `rows` into `out`, block by block (no concatenation)."""
    flag, col = spec.unknown == "flag", 0
    for name in spec.block_names():
        array = features.block(name).array
        dim = array.shape[1]
        part = _take(array, rows, out[:, col:col + dim])
        missing = ~np.isfinite(part).all(axis=1)  # one NaN or Inf makes the whole row unknown
        part[missing] = 0.0
        if spec.l2_normalize:
            _l2_(part)
        col += dim
        if flag:
            out[:, col] = missing
            col += 1
    if "location" in spec.modalities:
        unknown = np.ones(len(rows), dtype=bool) if spec.zero_location else np.isnan(location).any(axis=1)
        out[:, col:col + 2] = 0.0 if spec.zero_location else np.where(unknown[:, None], 0.0, location)
        col += 2
        if flag:
            out[:, col] = unknown
            col += 1
    if extra is not None:
        out[:, col:] = extra
    return out


def located(spec: FeatureSpec, location: np.ndarray, irish: np.ndarray | None) -> np.ndarray:
    """The locations this spec sees: Irish Grid squares unknown (NaN) when it leaves them out."""
    if "location" in spec.modalities and not spec.irish_grid:
        if irish is None:
            raise ValueError("this feature spec treats Irish Grid squares as unknown: pass `irish`")
        return np.where(np.asarray(irish, dtype=bool)[:, None], np.nan, location)
    return location


def extra_columns(spec: FeatureSpec, location: np.ndarray, irish: np.ndarray | None,
                  priors: np.ndarray | None = None, neighbours: np.ndarray | None = None,
                  peers: np.ndarray | None = None) -> np.ndarray | None:
    """The extra columns of `spec` for these rows, in order: `priors` (the rows' location prior columns,
    training.location), their Fourier features, `peers` (their peers' columns, training.peers),
    `neighbours` (their id-neighbour block, training.neighbours; always last); None when the spec has none."""
    if not spec.has_extra:
        return None
    for on, given, what in ((spec.priors, priors, "location prior"), (spec.neighbours, neighbours, "id-neighbour"),
                            (spec.peers, peers, "peers'")):
        if on and given is None:
            raise ValueError(f"feature spec {spec.name}: the {what} columns are needed")
    parts = ([priors] if spec.priors else []) + \
        ([fourier_features(located(spec, location, irish))] if spec.fourier else []) + \
        ([peers] if spec.peers else []) + ([neighbours] if spec.neighbours else [])
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def fuse_chunks(spec: FeatureSpec, features: FeatureSet, rows: np.ndarray, location: np.ndarray,
                irish: np.ndarray | None = None, chunk: int = _CHUNK, out: np.ndarray | None = None,
                extra: np.ndarray | None = None):
    """Yield (start, float32 block) of the model input for `features` rows `rows` (in their order).

    `location` is (len(rows), 2) normalised lat/lon with NaN where the square is unknown; `irish` (bool,
    len(rows)) marks squares on the Irish Grid, needed when the spec leaves those unknown. With `out`,
    the blocks are written straight into it (its rows start..start+len(block)). `extra` (len(rows), P) are
    the extra columns a spec with priors, fourier or neighbours ends with (`extra_columns`)."""
    if spec.has_extra != (extra is not None):
        raise ValueError(f"feature spec {spec.name}: extra columns (location encoders, id neighbours) are"
                         f" {'needed' if spec.has_extra else 'not used'}")
    location = located(spec, location, irish)
    dim = spec.width(features, 0 if extra is None else extra.shape[1])
    for start in range(0, len(rows), chunk):
        sel = rows[start:start + chunk]
        target = out[start:start + len(sel)] if out is not None else np.empty((len(sel), dim), np.float32)
        part = None if extra is None else extra[start:start + chunk]
        block = _fill(spec, features, sel, location[start:start + chunk], part, target)
        release(features)  # a chunk's mapped pages are not needed again
        yield start, block


def fuse(spec: FeatureSpec, features: FeatureSet, rows: np.ndarray, location: np.ndarray,
         irish: np.ndarray | None = None, extra: np.ndarray | None = None) -> np.ndarray:
    """The whole float32 model input for `features` rows `rows` as one array (see `fuse_chunks`)."""
    out = np.empty((len(rows), spec.width(features, 0 if extra is None else extra.shape[1])), dtype=np.float32)
    for _ in fuse_chunks(spec, features, rows, location, irish, out=out, extra=extra):
        pass
    return out


class Standardizer:
    """Per-column mean and standard deviation of training rows; applied in place, chunk by chunk."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    @classmethod
    def identity(cls, dim: int) -> "Standardizer":
        return cls(np.zeros(dim), np.ones(dim))

    @classmethod
    def fit(cls, x: np.ndarray, rows: np.ndarray | None = None, chunk: int = 65_536) -> "Standardizer":
        rows = np.arange(len(x)) if rows is None else rows
        return cls.fit_blocks(x[rows[start:start + chunk]] for start in range(0, len(rows), chunk))

    @classmethod
    def fit_blocks(cls, blocks) -> "Standardizer":
        """From the training rows given block by block (the whole matrix never needs to exist)."""
        n, total, total_sq = 0, 0.0, 0.0
        for block in blocks:
            block = np.asarray(block, dtype=np.float64)
            n += len(block)
            total = total + block.sum(axis=0)
            total_sq = total_sq + np.square(block).sum(axis=0)
        if n == 0:
            raise ValueError("cannot standardise: no training rows")
        mean = total / n
        std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
        return cls(mean, np.where(std > 1e-6, std, 1.0))  # constant columns (e.g. an all-zero flag) pass through

    def transform_(self, x: np.ndarray, chunk: int = 65_536) -> np.ndarray:
        """Standardise `x` in place."""
        return self.transform(x, out=x, chunk=chunk)

    def transform(self, x: np.ndarray, out: np.ndarray, chunk: int = 65_536) -> np.ndarray:
        """Standardised `x` written into `out` (which may be `x`), chunk by chunk to bound temporaries."""
        for start in range(0, len(x), chunk):
            part = out[start:start + chunk]
            np.subtract(x[start:start + chunk], self.mean, out=part)
            part /= self.std
        return out

    def state(self) -> dict:
        return {"mean": torch.from_numpy(self.mean.copy()), "std": torch.from_numpy(self.std.copy())}

    @classmethod
    def from_state(cls, state: dict) -> "Standardizer":
        return cls(state["mean"].numpy(), state["std"].numpy())


def standardised_tensors(chunks, scaler: Standardizer, selections: list[tuple[np.ndarray, torch.dtype]],
                         dim: int) -> list[torch.Tensor]:
    """One tensor per (row mask, dtype) in `selections`: those rows of the fused `chunks`, standardised,
    filled chunk by chunk in one pass.

    No full float32 copy of the input ever exists: at the real scale that keeps a run under 8 GB."""
    outs = [torch.empty((int(mask.sum()), dim), dtype=dtype) for mask, dtype in selections]
    filled = [0] * len(selections)
    for start, block in chunks:
        block = torch.from_numpy(scaler.transform_(block))
        for i, (mask, dtype) in enumerate(selections):
            part = torch.from_numpy(mask[start:start + len(block)])
            n = int(part.sum())
            outs[i][filled[i]:filled[i] + n] = block[part].to(dtype)
            filled[i] += n
    return outs
