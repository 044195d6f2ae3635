"""Checks for configuration fields: each failure names the field and the values it accepts."""
from __future__ import annotations

import math
from numbers import Real


def whole(field: str, value, low: int) -> None:
    """A whole number >= low (a bool or 2.0 is not one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{field} must be a whole number >= {low}, got {value!r}")


def number(field: str, value, low: float, high: float = math.inf, low_open: bool = False,
           high_open: bool = False) -> None:
    """A finite number in [low, high] (ends open as asked)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
        raise ValueError(f"{field} must be a number in {lo}{low}, {high}{hi}, got {value!r}")


def name_list(field: str, value, among=None) -> tuple[str, ...]:
    """A list of names (strings), as a tuple; `among`, the names accepted, goes into the message (the
    caller judges them). A bare string is no list: "image" would read as the letters i, m, a, g, e."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        what = f"a list of names from {tuple(among)}" if among is not None else "a list of names"
        raise ValueError(f"{field} must be {what}, got {value!r}")
    return tuple(value)


def flag(field: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{field} must be true or false, got {value!r}")
