"""Camera-to-subject distance: the snapped string the dataset stores, and the model's distance index.

The published rules: the distance is snapped down to a power of two in metres and stored as a string;
"0" and "" (no offset recorded) -> index 0, 2^k m -> k + 1 for k = 0..20, anything else
("Unknown", "300", "abc", a missing field) -> 22. The published table has 24 rows (one per key of
DIST_MAP, where "" and "0" share index 0), so row 23 is never read.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

UNKNOWN = "Unknown"
UNKNOWN_INDEX = 22
NEAR_LIMIT_M = 256  # the label and weight rules split near from far here

# The published checkpoints store exactly this mapping (same keys, same order).
DIST_MAP: dict[str, int] = {**{str(2**k): k + 1 for k in range(21)}, "0": 0, UNKNOWN: UNKNOWN_INDEX, "": 0}


def distance_index(values, dist_map: dict[str, int] | None = None) -> np.ndarray:
    """Model input index (int64) for each stored distance value (str, int or None), all at once."""
    dist_map = DIST_MAP if dist_map is None else dist_map
    unknown = dist_map.get(UNKNOWN, UNKNOWN_INDEX)
    text = pd.Series(np.asarray(values, dtype=object).ravel(), dtype=object).map(_as_text)
    return text.map(dist_map).fillna(unknown).to_numpy(dtype=np.int64, copy=True)


def distance_metres(values) -> np.ndarray:
    """The stored distance as metres (float64): "" counts as 0 (no offset), non-digit strings are NaN.

    Any digit string counts, power of two or not ("300" is 300 m), as in the published label rules."""
    text = pd.Series(np.asarray(values, dtype=object).ravel(), dtype=object).map(_as_text)
    digits = text.str.fullmatch(r"\d+").fillna(False).to_numpy(dtype=bool)
    metres = np.full(len(text), np.nan)
    metres[digits] = text[digits].astype(np.float64).to_numpy()
    metres[(text == "").to_numpy()] = 0.0
    return metres


def snap_metres(d) -> np.ndarray:
    """Metres (float) -> the stored string: "0" below 1 m, else 2^floor(log2 d); NaN -> "Unknown"."""
    d = np.asarray(d, dtype=np.float64)
    out = np.full(d.shape, UNKNOWN, dtype=object)
    known = np.isfinite(d) & (d >= 0)
    out[known & (d < 1)] = "0"
    far = known & (d >= 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[far] = np.exp2(np.floor(np.log2(d[far]))).astype(np.int64).astype(str)
    return out


def snapped_distance(camera_east, camera_north, subject_east, subject_north) -> np.ndarray:
    """The stored distance string for camera and subject positions on one national grid (metres).

    A position with a missing (NaN) or non-positive coordinate is unknown: Geograph stores 0, 0 for a
    camera position that was never given. (The published helper checks only the subject's northing
    and the camera's easting; every coordinate is checked here.)"""
    ce, cn, se, sn = (np.asarray(a, dtype=np.float64) for a in (camera_east, camera_north, subject_east, subject_north))
    with np.errstate(invalid="ignore"):
        known = (ce > 0) & (cn > 0) & (se > 0) & (sn > 0)
    d = np.where(known, np.hypot(ce - se, cn - sn), np.nan)
    return snap_metres(d)


def _as_text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return UNKNOWN
    return str(value).strip()
