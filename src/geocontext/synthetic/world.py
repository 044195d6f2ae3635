"""A documented generative model of Geograph-like photos, for the demo, the tests and the benchmarks.

Nothing here is real data. The model, in full:
- Labels: a photo has k tags, k drawn from the real tags-per-photo shares (1: 43.4%, 2: 35.5%, 3: 15.8%,
  4: 4.1%, 5: 1.0%, 6: 0.2%). The first tag is drawn by real prevalence; each further tag by prevalence,
  three times as likely when it shares the first tag's theme (Topography, Human use, ...).
- Location: each tag has a home on the British National Grid; a photo sits near the home of one of its
  tags (normal, 60 km spread), 4% of photos are in Ireland instead, and a few references are left
  blank or garbled, as in the real metadata.
- Embeddings (`synthesize_features`): each tag has a random unit direction in the image space and
  another in the title space. A photo's image embedding is the sum of its tags' directions, each
  scaled by a per-photo visibility drawn from U(0.3, 1.3), plus Gaussian noise; its title embedding
  mentions each tag with probability 0.6 and adds its own noise. Tags of one theme share part of their
  direction, so they are confusable, as in real photos. A share of image rows is NaN (missing photo).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..competition import BY_COLUMN, COLUMNS

TAGS_PER_PHOTO = np.array([0.434, 0.355, 0.158, 0.041, 0.010, 0.002])
# 100 km squares of the British National Grid with plenty of land, and Irish Grid letters.
GB_SQUARES = ("NC", "NH", "NJ", "NN", "NO", "NS", "NT", "NU", "NX", "NY", "NZ", "SD", "SE", "SH", "SJ", "SK",
              "SN", "SO", "SP", "SS", "ST", "SU", "SW", "SX", "SY", "TA", "TF", "TG", "TL", "TM", "TQ", "TR", "TV")
IE_LETTERS = ("B", "C", "G", "H", "J", "L", "M", "N", "O", "Q", "R", "S", "T", "V", "W", "X")


def _letter(i: np.ndarray) -> np.ndarray:
    """0..24 -> A..Z with I skipped."""
    return np.asarray(i) + 65 + (np.asarray(i) >= 8)


def _square_origin(square: str) -> tuple[int, int]:
    """South-west corner (metres) of a British National Grid 100 km square."""
    a, b = (ord(c) - 65 - (ord(c) > ord("I")) for c in square)
    return (((a - 2) % 5) * 5 + b % 5) * 100_000, ((19 - (a // 5) * 5) - b // 5) * 100_000


def format_osgb(east: np.ndarray, north: np.ndarray) -> np.ndarray:
    """4-figure British National Grid references (1 km squares) for eastings/northings in metres."""
    e100, n100 = east // 100_000, north // 100_000
    first = (19 - n100) - (19 - n100) % 5 + (e100 + 10) // 5
    second = ((19 - n100) * 5) % 25 + e100 % 5
    letters = np.char.add(_letter(first).astype(np.uint32).view("U1"), _letter(second).astype(np.uint32).view("U1"))
    km = np.char.add(np.char.zfill(((east % 100_000) // 1000).astype(str), 2),
                     np.char.zfill(((north % 100_000) // 1000).astype(str), 2))
    return np.char.add(letters, km).astype(object)


@dataclass(frozen=True)
class World:
    """The fixed random parts of the generative model (tag homes and directions), from one seed."""

    seed: int
    dim: int
    columns: tuple[str, ...]
    home: np.ndarray  # (T, 2) easting, northing in metres
    image_dirs: np.ndarray  # (T, dim)
    title_dirs: np.ndarray  # (T, dim)

    @classmethod
    def create(cls, seed: int = 0, dim: int = 512, columns: tuple[str, ...] = COLUMNS) -> "World":
        rng = np.random.default_rng(seed)
        squares = rng.choice(GB_SQUARES, size=len(columns))
        home = np.array([_square_origin(s) for s in squares], dtype=np.float64) + rng.uniform(0, 100_000, (len(columns), 2))
        themes = sorted({BY_COLUMN[c].grouping for c in columns})
        theme = np.array([themes.index(BY_COLUMN[c].grouping) for c in columns])

        def directions() -> np.ndarray:
            shared = rng.standard_normal((len(themes), dim))
            own = rng.standard_normal((len(columns), dim))
            d = 0.6 * shared[theme] + own
            return (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)

        return cls(seed, dim, tuple(columns), home, directions(), directions())

    @property
    def prevalence(self) -> np.ndarray:
        return np.array([BY_COLUMN[c].prevalence for c in self.columns])

    @property
    def theme(self) -> np.ndarray:
        themes = sorted({BY_COLUMN[c].grouping for c in self.columns})
        return np.array([themes.index(BY_COLUMN[c].grouping) for c in self.columns])


def sample_labels(world: World, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, T) 0/1 labels with the real tags-per-photo shares and theme co-occurrence."""
    n_tags = len(world.columns)
    k = rng.choice(np.arange(1, 7), size=n, p=TAGS_PER_PHOTO / TAGS_PER_PHOTO.sum())
    prev = world.prevalence
    first = rng.choice(n_tags, size=n, p=prev / prev.sum())
    affinity = prev[None, :] * np.where(world.theme[None, :] == world.theme[first][:, None], 3.0, 1.0)
    affinity[np.arange(n), first] = 0.0
    # Gumbel top-k: k - 1 further tags without replacement, proportional to affinity, all rows at once.
    keys = np.log(affinity + 1e-12) - np.log(-np.log(rng.uniform(size=affinity.shape)))
    order = np.argsort(-keys, axis=1)
    y = np.zeros((n, n_tags), dtype=np.uint8)
    y[np.arange(n), first] = 1
    rank = np.arange(n_tags)[None, :] < (k - 1)[:, None]
    rows = np.repeat(np.arange(n), n_tags).reshape(n, n_tags)
    y[rows[rank], order[rank]] = 1
    return y


def grid_references(world: World, y: np.ndarray, rng: np.random.Generator, blank: float = 0.01,
                    garbled: float = 0.005, irish: float = 0.04) -> np.ndarray:
    """A grid reference per photo, near the home of one of its tags."""
    n = len(y)
    pick = np.argmax(rng.uniform(size=y.shape) * y, axis=1)
    en = world.home[pick] + rng.normal(0, 60_000, (n, 2))
    en[:, 0] = np.clip(en[:, 0], 100_000, 699_999)
    en[:, 1] = np.clip(en[:, 1], 0, 1_099_999)
    refs = format_osgb(en[:, 0].astype(np.int64), en[:, 1].astype(np.int64))
    u = rng.uniform(size=n)
    ie = u < irish
    refs[ie] = [f"{rng.choice(IE_LETTERS)}{rng.integers(0, 100):02d}{rng.integers(0, 100):02d}" for _ in range(ie.sum())]
    refs[(u >= irish) & (u < irish + blank)] = ""
    refs[(u >= irish + blank) & (u < irish + blank + garbled)] = "XY12"
    return refs


def synthesize_features(world: World, y: np.ndarray, rng: np.random.Generator, noise: float = 0.9,
                        missing: float = 0.003) -> tuple[np.ndarray, np.ndarray]:
    """(image, title) float32 embeddings for labels `y`, by the model in this module's docstring."""
    n = len(y)
    yf = y.astype(np.float32)
    visibility = rng.uniform(0.3, 1.3, size=y.shape).astype(np.float32)
    image = (yf * visibility) @ world.image_dirs
    image += rng.standard_normal((n, world.dim), dtype=np.float32) * np.float32(noise / np.sqrt(world.dim) * 4)
    mentioned = yf * (rng.uniform(size=y.shape) < 0.6)
    title = mentioned @ world.title_dirs
    title += rng.standard_normal((n, world.dim), dtype=np.float32) * np.float32(noise / np.sqrt(world.dim) * 4)
    image[rng.uniform(size=n) < missing] = np.nan
    return image, title


def write_feature_folder(data_dir, out, seed: int = 0, dim: int = 512, noise: float = 0.9) -> Path:
    """FEATURES for a DATA folder whose test labels are known (solution.csv), by the model above.

    Stands in for the embedding stage where photos do not exist (tests, benchmarks on real labels)."""
    from pathlib import Path

    from ..data.readers import read_labels
    from ..embedding.features import save_features

    world = World.create(seed, dim)
    rng = np.random.default_rng(seed + 1)
    for split, name in (("train", "train.csv"), ("test", "solution.csv")):
        labels = read_labels(Path(data_dir) / name, columns=world.columns)
        image, title = synthesize_features(world, labels.y, rng, noise=noise)
        save_features(out, split, labels.ids, image, title,
                      {"encoder": f"synthetic (geocontext.synth, seed {seed})", "synthetic": True,
                       "identity": {"model": "synthetic", "weights": f"synthetic:seed{seed}", "dim": dim}})
    return Path(out)
