"""Raw Geograph type tags -> the 7 training classes and per-photo loss weights (the published rules).

Label rules, per raw tag:
- "Cross Grid" becomes "Cross Far" when the distance is over 256 m; when the distance is 256 m or less
  (or unknown) it becomes "Geograph" if it is the photo's only type, and is dropped otherwise;
- "From Above" (photos that look like drone shots) is folded into "From Drone";
- the 7 class names map to themselves; any other name is counted as unknown and ignored.
Weights: 0.2 for a raw "Geograph" whose distance is unknown or over 256 m (its label is doubtful),
0.5 for a "Cross Grid" at 256 m or less, otherwise 1 or, when the row gives one, the row's own weight.

"Unknown" here is any value that is not a whole number of metres ("Unknown", "abc"); "" is 0 m, as in
the distance index. (The published weight rule tested the literal "Unknown" only.)
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .distance import NEAR_LIMIT_M, distance_metres

CLASSES = ("Aerial", "Close Look", "Cross Far", "Extra", "Geograph", "Inside", "From Drone")
CROSS_GRID, FROM_ABOVE = "Cross Grid", "From Above"
RAW_TYPES = ("Geograph", "Cross Grid", "Close Look", "Inside", "Extra", "Aerial", "From Drone", "From Above")


@dataclass
class WeightRules:
    """Per-photo loss weights (the published values by default)."""

    geograph_far_or_unknown: float = 0.2
    cross_grid_near: float = 0.5
    default: float = 1.0
    use_row_weight: bool = True  # a row's own `weight` replaces `default` (never the two rules above)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LabelReport:
    rows: int
    no_class: int  # rows left with no class (e.g. only unknown names); kept out of training and scoring
    unknown_names: dict  # raw name -> rows carrying it

    def summary(self) -> str:
        text = f"{self.rows} photos labelled"
        if self.no_class:
            text += f"; {self.no_class} with no usable type"
        if self.unknown_names:
            names = ", ".join(f"{name!r} ({n})" for name, n in sorted(self.unknown_names.items(), key=lambda kv: -kv[1])[:8])
            text += f"; unknown type names ignored: {names}"
        return text


def _exploded(types) -> pd.Series:
    """One entry per (row, raw tag): index = row number, value = the stripped tag; empty tags dropped."""
    tags = pd.Series(np.asarray(types, dtype=object), dtype=object).fillna("").astype(str).str.split(",").explode()
    tags = tags.str.strip()
    return tags[tags != ""]


def label_matrix(types, distance, classes: tuple[str, ...] = CLASSES) -> tuple[np.ndarray, LabelReport]:
    """(N, len(classes)) uint8 targets from raw type strings and stored distances, vectorised."""
    n = len(types)
    tags = _exploded(types)
    row = tags.index.to_numpy(dtype=np.int64)
    metres = distance_metres(distance)
    far = (metres > NEAR_LIMIT_M)[row]  # NaN (unknown) compares False: not far
    only = (np.bincount(row, minlength=n) == 1)[row]
    name = tags.to_numpy(dtype=object).copy()
    cross = name == CROSS_GRID
    name[cross & far] = "Cross Far"
    name[cross & ~far & only] = "Geograph"
    name[cross & ~far & ~only] = None  # dropped: the photo keeps its other types
    name[name == FROM_ABOVE] = "From Drone"
    col = pd.Series(name, dtype=object).map({c: j for j, c in enumerate(classes)})
    known = col.notna().to_numpy()
    y = np.zeros((n, len(classes)), dtype=np.uint8)
    y[row[known], col[known].to_numpy(dtype=np.int64)] = 1
    unknown = ~known & ~cross & (name != None)  # noqa: E711 (elementwise on an object array)
    names = Counter(tags.to_numpy(dtype=object)[unknown])
    return y, LabelReport(n, int((~y.any(axis=1)).sum()), dict(names))


def sample_weights(types, distance, row_weight=None, rules: WeightRules | None = None) -> np.ndarray:
    """float32 loss weight per photo by `rules` (see the module docstring)."""
    rules = rules or WeightRules()
    n = len(types)
    tags = _exploded(types)
    row = tags.index.to_numpy(dtype=np.int64)
    has = {name: np.bincount(row[(tags == name).to_numpy()], minlength=n) > 0 for name in ("Geograph", CROSS_GRID)}
    metres = distance_metres(distance)
    unknown = np.isnan(metres)
    w = np.full(n, rules.default, dtype=np.float32)
    if rules.use_row_weight and row_weight is not None:
        given = np.asarray(row_weight, dtype=np.float32)
        w = np.where(np.isnan(given), w, given).astype(np.float32)
    with np.errstate(invalid="ignore"):
        w[has[CROSS_GRID] & (metres <= NEAR_LIMIT_M)] = rules.cross_grid_near
        w[has["Geograph"] & (unknown | (metres > NEAR_LIMIT_M))] = rules.geograph_far_or_unknown  # checked first when published: wins
    return w
