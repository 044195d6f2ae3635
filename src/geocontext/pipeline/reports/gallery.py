"""The report's photo gallery: per tag, hold-out photos it got right, missed and wrongly added, each with
title, grid reference, and the true and predicted tags with their probabilities.

Thumbnails are made once into OUT/thumbs/<id>.jpg and reused by every later `geocontext report`."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ...competition import image_path
from ...console import progress
from ...data.readers import read_metadata
from ...writing import atomic_file
from .diagnostics import Holdout
from .html_page import data_uri, esc

THUMB = 190  # pixels, the longer side
KINDS = (("right", "Right", "a random sample"),
         ("missed", "Missed", "the most confident misses first"),
         ("added", "Wrongly added", "the most confident first"))


def has_photos(data_dir) -> bool:
    return data_dir is not None and (Path(data_dir) / "train_images").is_dir()


def thumbnail(data_dir: Path, gid: int, cache: Path) -> bytes | None:
    """The photo's JPEG thumbnail (cached), or None when the photo is missing or unreadable."""
    from PIL import Image, UnidentifiedImageError

    cached = cache / f"{gid}.jpg"
    if cached.exists():
        return cached.read_bytes()
    source = image_path(data_dir, "train", gid)  # hold-out photos come from the training split
    try:
        with Image.open(source) as photo:
            photo = photo.convert("RGB")
            photo.thumbnail((THUMB, THUMB))
            buffer = io.BytesIO()
            photo.save(buffer, format="JPEG", quality=80)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    cache.mkdir(parents=True, exist_ok=True)
    atomic_file(cached, lambda h: h.write(buffer.getvalue()), "the report's thumbnails")
    return buffer.getvalue()


def pick(h: Holdout, per_kind: int) -> dict[int, dict[str, np.ndarray]]:
    """Hold-out row numbers to show, per tag and kind (right / missed / wrongly added)."""
    y, p = h.y.astype(bool), h.predicted.astype(bool)
    chosen = {}
    for j in range(y.shape[1]):
        prob = h.probs[:, j]
        right = np.flatnonzero(y[:, j] & p[:, j])
        missed = np.flatnonzero(y[:, j] & ~p[:, j])
        added = np.flatnonzero(~y[:, j] & p[:, j])
        rng = np.random.default_rng(j)  # the same sample on every rebuild
        chosen[j] = {"right": np.sort(rng.permutation(right)[:per_kind]),
                     "missed": missed[np.argsort(prob[missed], kind="stable")][:per_kind],
                     "added": added[np.argsort(-prob[added], kind="stable")][:per_kind],
                     "counts": (len(right), len(missed), len(added))}
    return chosen


def _chips(h: Holdout, row: int, names: list[str]) -> str:
    """The row's true and predicted tags with probabilities, most probable first; plus up to two other
    tags the model found likely (p >= 0.25), which explain many misses."""
    y, p, prob = h.y[row].astype(bool), h.predicted[row].astype(bool), h.probs[row]
    order = np.argsort(-prob, kind="stable")
    shown, others = [], 0
    for j in order:
        kind = "ok" if y[j] and p[j] else "miss" if y[j] else "extra" if p[j] else "other"
        if kind == "other":
            if others >= 2 or prob[j] < 0.25:
                continue
            others += 1
        mark = {"ok": "✓", "miss": "missed", "extra": "added", "other": "not added"}[kind]
        shown.append(f'<span class="chip {kind}" title="{mark}">{esc(names[j])} {prob[j]:.2f}</span>')
    return "".join(shown)


def _tile(kind: str, gid: int, thumb: bytes | None, title: str, grid_ref: str, chips: str) -> str:
    picture = (f'<img src="{data_uri(thumb, "image/jpeg")}" alt="photo {gid}" loading="eager">' if thumb
               else '<div class="nophoto">photo missing or unreadable</div>')
    return (f'<figure class="tile {kind}" data-id="{gid}">{picture}<figcaption>'
            f'<div class="title">{esc(title) if title else "<i>(no title)</i>"}</div>'
            f'<div class="where">{esc(grid_ref) or "no grid reference"} · #{gid}</div>{chips}</figcaption></figure>')


def gallery(h: Holdout, data_dir: Path, cache: Path, names: list[str], f1: np.ndarray, per_kind: int = 8,
            open_worst: int = 3) -> str:
    """Per tag (worst F1 first, tags with nothing to show last) a folding block of photo tiles; the worst
    few open."""
    chosen = pick(h, per_kind)
    rows = np.unique(np.concatenate([c[k] for c in chosen.values() for k, _, _ in KINDS]).astype(np.int64))
    meta = read_metadata(data_dir, h.ids[rows])
    title = dict(zip(rows.tolist(), meta.title))
    grid_ref = dict(zip(rows.tolist(), meta.grid_reference))
    thumbs = {int(r): thumbnail(Path(data_dir), int(h.ids[r]), cache)
              for r in progress(rows, desc="thumbnails", unit="photo")}
    blocks = []
    for rank, j in enumerate(np.argsort(f1, kind="stable")):
        c = chosen[j]
        n_right, n_missed, n_added = c["counts"]
        parts = []
        for (kind, label, order), total in zip(KINDS, c["counts"]):
            tiles = "".join(_tile(kind, int(h.ids[r]), thumbs[int(r)], title[int(r)], grid_ref[int(r)],
                                  _chips(h, int(r), names)) for r in c[kind])
            shown = f"{len(c[kind])} of {total}, {order}" if total else "none"
            parts.append(f'<div class="row-label">{label} ({shown})</div><div class="tiles">{tiles}</div>')
        score = "no F1 (never true, never predicted)" if np.isnan(f1[j]) else f"F1 {f1[j]:.3f}"
        summary = f"{esc(names[j])} — {score} · {n_right} right, {n_missed} missed, {n_added} wrongly added"
        opened = " open" if rank < open_worst else ""
        blocks.append(f'<details id="gallery-{esc(h.columns[j])}"{opened}><summary>{summary}</summary>'
                      f'{"".join(parts)}</details>')
    legend = ('<p class="note">Tags on each photo, most probable first: <span class="chip ok">right</span>'
              '<span class="chip miss">missed</span><span class="chip extra">wrongly added</span>'
              '<span class="chip other">likely but not added</span>, with the final probability. Tags are the'
              ' cross-fitted ones (decided by settings tuned on the other half of the hold-out). Worst F1 first.</p>')
    return legend + "".join(blocks)
