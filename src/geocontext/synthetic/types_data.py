"""A documented generative model of a Geograph types dataset, for the demo and the tests. Not real data.

The model, in full:
- Raw types: a photo's first type is drawn from PRIMARY (Geograph 55%, Cross Grid 12%, Close Look 10%,
  Extra 8%, Inside 5%, From Above 4%, Aerial 3%, From Drone 3%); with probability 0.15 a second type
  from Close Look / Inside / Extra / Cross Grid is added (if it differs from the first).
- True distance: log2(metres) ~ Normal(mean, sd) of the first type (LOG2_DISTANCE; Cross Grid is a
  40/60 mix of a near and a far mode), snapped down to a power of two as the archive stores it. Then
  12% of stored distances become "Unknown", 3% "" and the photo keeps its true look.
- Labels and weights: the published rules (`labels`) applied to the stored strings, so a far Cross Grid
  whose distance is "Unknown" is labelled Geograph though it looks far: label noise, as in the archive.
- Embedding (512 floats, unnormalised like raw CLIP features): a shared "photo" direction (norm 8), plus
  for each class the photo truly shows (rules applied to the true distance) its own unit direction
  times 3 x U(0.5, 1.2), plus a "haze" direction times (log2 metres - 7) / 2 (far views look far
  whatever their tags), plus Gaussian noise of sd `noise` (0.8) per value.
- Split by a hash of the id: 80% "tra", 10% "val", 10% "tes". 5% of rows carry their own weight 0.5.
- With `malformed=True`, one line of each kind the reader must reject (BAD_LINES) and a blank line
  are spread through the file. A path ending in .gz is written gzip-compressed, as the published data is.
- `write_unknown` writes the published "unknown" file's shape: photos without types or split, with a
  title and an image path (and a distance for some).
"""
from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..typetags.distance import snap_metres
from ..typetags.dropout import id_uniform
from ..typetags.labels import CLASSES, label_matrix

PRIMARY = {"Geograph": 0.55, "Cross Grid": 0.12, "Close Look": 0.10, "Extra": 0.08, "Inside": 0.05,
           "From Above": 0.04, "Aerial": 0.03, "From Drone": 0.03}
SECONDARY = ("Close Look", "Inside", "Extra", "Cross Grid")
LOG2_DISTANCE = {"Geograph": (6.5, 1.5), "Close Look": (3.0, 1.5), "Extra": (5.0, 2.0), "Inside": (2.0, 1.0),
                 "From Above": (7.0, 1.5), "Aerial": (11.0, 1.5), "From Drone": (7.0, 1.0),
                 "Cross Grid near": (6.5, 1.0), "Cross Grid far": (10.5, 1.5)}
BAD_LINES = ("malformed JSON", "not a JSON object", "missing gridimage_id", "undecodable embeddings",
             "wrong-length vector", "NaN/Inf values", "duplicate gridimage_id", "bad weight")


@dataclass
class SyntheticTypes:
    path: Path
    photos: int  # usable photos written
    bad_lines: dict  # reason -> line number of the line inserted to exercise it
    blank_lines: tuple


def sample(n: int, seed: int = 0, dim: int = 512, noise: float = 0.8) -> dict:
    """Field arrays for `n` photos by the model in the module docstring."""
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(np.arange(100_000, 8_000_000), size=n, replace=False))
    names = np.array(list(PRIMARY), dtype=object)
    first = rng.choice(names, size=n, p=np.array(list(PRIMARY.values())))
    second = rng.choice(np.array(SECONDARY, dtype=object), size=n)
    two = (rng.uniform(size=n) < 0.15) & (second != first)
    types = np.where(two, first + "," + second, first).astype(object)

    mode = first.copy()
    cross = first == "Cross Grid"
    mode[cross] = np.where(rng.uniform(size=cross.sum()) < 0.4, "Cross Grid near", "Cross Grid far")
    mean = np.array([LOG2_DISTANCE[m][0] for m in mode])
    sd = np.array([LOG2_DISTANCE[m][1] for m in mode])
    log2_m = np.clip(rng.normal(mean, sd), -1.0, 20.5)
    true_distance = snap_metres(np.exp2(log2_m))
    stored = true_distance.copy()
    u = rng.uniform(size=n)
    stored[u < 0.12] = "Unknown"
    stored[(u >= 0.12) & (u < 0.15)] = ""

    looks, _ = label_matrix(types, true_distance)
    photo = rng.standard_normal(dim)
    haze = rng.standard_normal(dim)
    dirs = rng.standard_normal((len(CLASSES), dim))
    photo, haze = 8 * photo / np.linalg.norm(photo), haze / np.linalg.norm(haze)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    strength = 3 * rng.uniform(0.5, 1.2, size=looks.shape) * looks
    emb = photo + strength @ dirs + ((log2_m - 7) / 2)[:, None] * haze + rng.normal(0, noise, (n, dim))

    h = id_uniform(ids, seed, 7)
    split = np.where(h < 0.8, "tra", np.where(h < 0.9, "val", "tes")).astype(object)
    weight = np.where(rng.uniform(size=n) < 0.05, 0.5, np.nan)
    return {"ids": ids, "types": types, "distance": stored, "embeddings": emb.astype(np.float32), "split": split,
            "weight": weight}


def _line(gid, emb: np.ndarray, types: str, distance: str, split: str, weight: float) -> str:
    record = {"gridimage_id": int(gid), "types": types, "distance": distance,
              "embeddings": base64.b64encode(emb.astype("<f4").tobytes()).decode("ascii"), "split": split,
              "title": f"Photo {gid}"}
    if not np.isnan(weight):
        record["weight"] = float(weight)
    return json.dumps(record)


def write_dataset(path: str | Path, n: int = 3000, seed: int = 0, malformed: bool = True, dim: int = 512,
                  noise: float = 0.8) -> SyntheticTypes:
    """Write `n` usable photos (plus, with `malformed`, one bad line of each kind and a blank line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = sample(n, seed, dim, noise)
    lines = [_line(*(f[k][i] for k in ("ids", "embeddings", "types", "distance", "split", "weight"))) for i in range(n)]
    bad_lines, blank = {}, ()
    if malformed:
        spare = int(f["ids"].max()) + 1
        vec = f["embeddings"][0]
        nan_vec = vec.copy()
        nan_vec[5], nan_vec[7] = np.nan, np.inf
        bad = {"malformed JSON": lines[1][: len(lines[1]) // 2],
               "not a JSON object": json.dumps([spare, "Geograph"]),
               "missing gridimage_id": json.dumps({"types": "Geograph", "distance": "8", "split": "tra",
                                                   "embeddings": json.loads(lines[0])["embeddings"]}),
               "undecodable embeddings": _line(spare + 1, vec, "Geograph", "8", "tra", np.nan).replace(
                   json.loads(lines[0])["embeddings"], "not*base64!"),
               "wrong-length vector": _line(spare + 2, vec[:-1], "Geograph", "8", "tra", np.nan),
               "NaN/Inf values": _line(spare + 3, nan_vec, "Geograph", "8", "tra", np.nan),
               "duplicate gridimage_id": lines[2],
               "bad weight": _line(spare + 4, vec, "Geograph", "8", "tra", np.nan)[:-1] + ', "weight": "heavy"}'}
        # Spread through the file, each after a run of good lines; a blank line in the middle.
        extra = [bad[reason] for reason in BAD_LINES]
        extra.insert(len(extra) // 2, "")
        step = max(1, n // (len(extra) + 1))
        out = []
        for i, text in enumerate(lines):
            if i and i % step == 0 and extra:
                out.append(extra.pop(0))
            out.append(text)
        out += extra
        lines = out
        blank = tuple(i + 1 for i, text in enumerate(lines) if not text)
        bad_lines = {reason: _find(lines, bad[reason], after=step) for reason in BAD_LINES}
    _write_lines(path, lines)
    return SyntheticTypes(path, n, bad_lines, blank)


def write_unknown(path: str | Path, n: int = 500, seed: int = 0, dim: int = 512) -> SyntheticTypes:
    """`n` unlabelled photos as the published "unknown" file has them: gridimage_id, title, realname, path,
    embeddings, a distance on every other photo, and no types or split."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = sample(n, seed, dim)
    lines = []
    for i, gid in enumerate(f["ids"].tolist()):
        image = f"{gid:06d}_{gid * 2654435761 % 2**32:08x}.jpg"  # Geograph's id_hash.jpg naming, hash made up
        record = {"gridimage_id": gid, "title": f"Photo {gid}", "realname": "A. Contributor",
                  "path": f"/photos/{gid // 10000:02d}/{gid // 100 % 100:02d}/{image}",
                  "embeddings": base64.b64encode(f["embeddings"][i].astype("<f4").tobytes()).decode("ascii")}
        if i % 2:
            record["distance"] = str(f["distance"][i])
        lines.append(json.dumps(record))
    _write_lines(path, lines)
    return SyntheticTypes(path, n, {}, ())


def _write_lines(path: Path, lines: list[str]) -> None:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


def _find(lines: list[str], text: str, after: int) -> int:
    """1-based number of the first line equal to `text` at or after index `after` (past the original
    of the duplicated line, which sits before the first insertion)."""
    return next(i + 1 for i in range(after, len(lines)) if lines[i] == text)
