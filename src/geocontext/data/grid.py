"""Grid references -> latitude/longitude of the 1 km square's centre, and the published normalisation.

British National Grid references have two letters (e.g. SX1234), Irish Grid references one (e.g.
O1534). pyproj does the datum conversion (OSGB36 / TM75 to WGS84).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from pyproj import Transformer

# "CLIP the Landscape" min-max normalises the square centre with these bounds.
LAT_RANGE = (49.9, 61.9)
LON_RANGE = (-8.6, 2.1)

_PATTERN = r"^([A-HJ-Z]{1,2})(\d*)$"
_GB_FIRST_LETTERS = "HJNOST"  # the 500 km squares that cover Great Britain
_CRS = {"gb": "EPSG:27700", "ie": "EPSG:29903"}  # British National Grid, Irish Grid (TM75)


@dataclass(frozen=True)
class Locations:
    latlon: np.ndarray  # float64 (N, 2): latitude, longitude in degrees; NaN where unknown
    irish: np.ndarray  # bool (N,): resolved on the Irish Grid (the published pipeline left these unknown)
    empty: int  # references that were blank
    malformed: tuple[str, ...]  # references that could not be read (each distinct value once)
    malformed_count: int

    @property
    def known(self) -> np.ndarray:
        return ~np.isnan(self.latlon[:, 0])

    def summary(self) -> dict:
        return {"rows": len(self.latlon), "known": int(self.known.sum()), "irish": int(self.irish.sum()),
                "empty": self.empty, "malformed": self.malformed_count, "malformed_examples": list(self.malformed[:10])}


@lru_cache(maxsize=None)
def _transformer(grid: str) -> Transformer:
    return Transformer.from_crs(_CRS[grid], "EPSG:4326", always_xy=True)


def _letter_index(letters: np.ndarray) -> np.ndarray:
    """A=0 ... Z=24 with I skipped, as both grids letter their 5x5 blocks of 100 km squares."""
    idx = letters.astype("U1").view(np.int32) - ord("A")
    return idx - (idx > 8)


def locate(grid_references) -> Locations:
    """Centre of each reference's 1 km square. Finer references (6-10 digits) are reduced to their 1 km
    square; blank, coarser or unreadable ones give NaN and are counted."""
    # Photos share squares: parse each distinct reference once.
    codes, distinct = pd.factorize(pd.Series(np.asarray(grid_references, dtype=object)).fillna(""))
    latlon, is_empty, is_irish = _locate_distinct(pd.Series(distinct, dtype=object).astype(str))
    codes_ok = codes >= 0
    rows = np.full((len(codes), 2), np.nan)
    rows[codes_ok] = latlon[codes[codes_ok]]
    irish = np.zeros(len(codes), dtype=bool)
    irish[codes_ok] = is_irish[codes[codes_ok]]
    empty = np.ones(len(codes), dtype=bool)
    empty[codes_ok] = is_empty[codes[codes_ok]]
    bad = np.isnan(rows[:, 0]) & ~empty
    malformed = tuple(pd.unique(np.asarray(distinct, dtype=object)[np.unique(codes[bad])]))
    return Locations(rows, irish, int(empty.sum()), malformed, int(bad.sum()))


def _locate_distinct(refs: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    refs = refs.str.upper().str.replace(r"\s+", "", regex=True)
    empty = (refs == "").to_numpy()
    parts = refs.str.extract(_PATTERN).fillna("")
    letters, digits = parts[0], parts[1]
    n_letters = letters.str.len().to_numpy()
    n_digits = digits.str.len().to_numpy()
    ok = (n_digits >= 4) & (n_digits % 2 == 0) & (n_digits <= 10)
    gb = ok & (n_letters == 2) & letters.str[0].isin(list(_GB_FIRST_LETTERS)).to_numpy()
    ie = ok & (n_letters == 1)

    # The first two digits of each half name the 1 km square inside the 100 km square.
    km_e = np.zeros(len(refs))
    km_n = np.zeros(len(refs))
    for n in (4, 6, 8, 10):
        rows = ok & (n_digits == n)
        if rows.any():
            km_e[rows] = digits[rows].str[:2].astype(float).to_numpy()
            km_n[rows] = digits[rows].str[n // 2:n // 2 + 2].astype(float).to_numpy()
    east = np.full(len(refs), np.nan)
    north = np.full(len(refs), np.nan)
    if gb.any():
        first = _letter_index(letters[gb].str[0].to_numpy(dtype=str))
        second = _letter_index(letters[gb].str[1].to_numpy(dtype=str))
        east[gb] = (((first - 2) % 5) * 5 + second % 5) * 100_000 + km_e[gb] * 1000 + 500
        north[gb] = ((19 - (first // 5) * 5) - second // 5) * 100_000 + km_n[gb] * 1000 + 500
    if ie.any():
        letter = _letter_index(letters[ie].to_numpy(dtype=str))
        east[ie] = (letter % 5) * 100_000 + km_e[ie] * 1000 + 500
        north[ie] = (4 - letter // 5) * 100_000 + km_n[ie] * 1000 + 500

    latlon = np.full((len(refs), 2), np.nan)
    for grid, mask in (("gb", gb), ("ie", ie)):
        if mask.any():
            lon, lat = _transformer(grid).transform(east[mask], north[mask])
            latlon[mask, 0], latlon[mask, 1] = lat, lon
    return latlon, empty, ie & ~np.isnan(latlon[:, 0])


def normalise(latlon: np.ndarray) -> np.ndarray:
    """Min-max normalise (lat, lon) with the published bounds; NaN stays NaN."""
    lo = np.array([LAT_RANGE[0], LON_RANGE[0]])
    span = np.array([LAT_RANGE[1] - LAT_RANGE[0], LON_RANGE[1] - LON_RANGE[0]])
    return ((latlon - lo) / span).astype(np.float32)


def denormalise(location: np.ndarray) -> np.ndarray:
    """(lat, lon) in degrees from `normalise`'s output; NaN stays NaN."""
    lo = np.array([LAT_RANGE[0], LON_RANGE[0]])
    span = np.array([LAT_RANGE[1] - LAT_RANGE[0], LON_RANGE[1] - LON_RANGE[0]])
    return np.asarray(location, dtype=np.float64) * span + lo
