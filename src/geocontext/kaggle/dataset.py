"""`geocontext dataset prepare`: a FEATURES folder laid out for `kaggle datasets create/version`.

What the kernels share is the FEATURES folder (hours of GPU time to make). Published as a private
Kaggle dataset, any kernel can attach it (dataset_sources) and any machine can download it. The
folder gets the repository's dataset-metadata.json (with the user name filled in) and the FEATURES
splits as train/ and test/, hard-linked where the file system allows, copied otherwise: every block
the folder holds (image.npy, title.npy and any added NAME.npy), not the leftovers of a killed write.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..embedding.features import load_features
from ..errors import DataError
from .render import PLACEHOLDER, RenderError, dump_json, fill_username

METADATA = "dataset-metadata.json"
SPLITS = ("train", "test")


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # no second copy of gigabytes of embeddings
    except OSError:
        shutil.copy2(src, dst)


def prepare(features: str | Path, out: str | Path, username: str | None, metadata: str | Path = METADATA) -> dict:
    """Check FEATURES, then write `out` (metadata + splits). Returns what went in."""
    features, out, metadata = Path(features), Path(out), Path(metadata)
    if not features.is_dir():
        raise DataError(f"{features}: no FEATURES folder (make it with `geocontext embed`, or download the embed"
                        f" kernel's output with `kaggle kernels output`)")
    splits = [s for s in SPLITS if (features / s).is_dir()]
    if not splits:
        raise DataError(f"{features}: neither train/ nor test/ inside; is this a FEATURES folder?")
    loaded = {s: load_features(features, s) for s in splits}  # refuses a half-written split before anything is copied
    try:
        meta = json.loads(metadata.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RenderError(f"{metadata}: cannot read the dataset metadata ({exc})") from exc
    if out.exists() and any(out.iterdir()) and not (out / METADATA).is_file():
        raise DataError(f"{out}: exists and is not a prepared dataset folder; choose another --out")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    size = 0
    for split in splits:
        (out / split).mkdir()
        for src in sorted(p for p in (features / split).iterdir() if p.is_file() and not p.name.startswith(".")):
            _link_or_copy(src, out / split / src.name)
            size += src.stat().st_size
    filled = fill_username(meta, username)
    (out / METADATA).write_text(dump_json(filled), encoding="utf-8")
    return {"folder": str(out), "id": filled.get("id"), "needs_username": PLACEHOLDER in json.dumps(filled),
            "bytes": size, "rows": {s: len(f) for s, f in loaded.items()},
            "encoder": {s: f.meta.get("encoder") for s, f in loaded.items()},
            "blocks": {s: list(f.blocks) for s, f in loaded.items()}}
