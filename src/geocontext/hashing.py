"""The kit's two hashes: a content digest of arrays (keys reuse and resumed studies) and the splitmix64
mix of ids (hold-out split, distance dropout): a photo's fate depends on its id alone."""
from __future__ import annotations

import hashlib

import numpy as np


def content_digest(*arrays: np.ndarray) -> str:
    """A short hash of the arrays' bytes: the same data gives the same key, other data another."""
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:10]


def splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of each value."""
    x = np.asarray(x).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def unit_interval(hashed: np.ndarray) -> np.ndarray:
    """The top 53 bits of 64-bit hashes as uniform floats in [0, 1)."""
    return (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
