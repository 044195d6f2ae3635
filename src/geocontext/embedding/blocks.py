"""Several feature blocks: added to a FEATURES folder without touching the others, and read from several
FEATURES folders at once (`run --features A --features B`).

A block is written aside and renamed into place, meta.json last, so a killed merge leaves the folder as
it was. The first image and title blocks of a folder take image.npy and title.npy (what folders made
before blocks hold, and what their readers open); later ones are NAME.npy.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..writing import atomic_file, atomic_folder
from .features import KINDS, FeatureSet, block_table, load_features
from .identity import check_same


def block_name(kind: str, label: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"a block's kind is one of {KINDS}, got {kind!r}")
    return f"{kind}@{label}"


def _file_for(table: dict, name: str, kind: str) -> str:
    owner = next((n for n, info in table.items() if info["file"] == f"{kind}.npy"), None)
    return f"{kind}.npy" if owner in (None, name) else f"{name.replace('/', '_')}.npy"


def _read_existing(target: Path) -> tuple[np.ndarray, dict] | None:
    try:
        return np.load(target / "ids.npy"), json.loads((target / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def write_blocks(folder: str | Path, split: str, ids, blocks: dict[str, tuple[np.ndarray, dict]], meta: dict) -> Path:
    """Write `blocks` (name -> (array N x D, info with "kind" and "encoder")) of one split.

    Into a split that already holds the same ids, the blocks go in beside the others, which are kept as
    they are (a block of the same name is replaced). Otherwise the split is written whole, in a temporary
    folder renamed into place; a split for other ids is replaced only when every block it holds is
    rewritten now. `meta` (the job's meta.json keys) becomes the split's meta.json when the blocks take
    the default files; blocks added beside others only add their entry to "blocks"."""
    ids = np.asarray(ids, dtype=np.int64)
    for name, (array, info) in blocks.items():
        if array.ndim != 2 or array.shape[0] != len(ids):
            raise ValueError(f"block {name}: {array.shape} must have {len(ids)} rows")
    target = Path(folder) / split
    existing = _read_existing(target)
    if existing is not None and np.array_equal(existing[0], ids):
        return _add_blocks(target, existing[1], blocks, meta)
    if existing is not None:
        others = sorted(set(block_table(existing[1])) - set(blocks))
        if others:
            raise DataError(f"{target}: holds {', '.join(others)} for another id list ({len(existing[0])} ids, now"
                            f" {len(ids)}; the DATA lists changed?); embed those blocks again too, or use another --out")
    def fill(tmp: Path) -> None:
        np.save(tmp / "ids.npy", ids)
        table: dict = {}
        for name, (array, info) in blocks.items():
            table[name] = {**info, "file": _file_for(table, name, info["kind"]), "dim": int(array.shape[1])}
            np.save(tmp / table[name]["file"], array)
        (tmp / "meta.json").write_text(json.dumps(_top_meta(meta, table, len(ids)), indent=2))

    needed = ids.nbytes + sum(array.nbytes for array, _ in blocks.values())
    return atomic_folder(target, fill, f"the {split} features", needed)


def _top_meta(meta: dict, table: dict, rows: int) -> dict:
    first = next(iter(table.values()))
    return {"dim": first["dim"], "normalized": False, **meta, "rows": rows, "blocks": table}


def _add_blocks(target: Path, old: dict, blocks: dict, meta: dict) -> Path:
    table = {n: i for n, i in block_table(old).items() if n not in blocks}
    new = {}
    for name, (array, info) in blocks.items():
        new[name] = {**info, "file": _file_for({**table, **new}, name, info["kind"]), "dim": int(array.shape[1])}
        atomic_file(target / new[name]["file"], lambda h, a=array: np.save(h, a), f"block {name}", array.nbytes)
    defaults = any(i["file"] in ("image.npy", "title.npy") for i in new.values())
    top = _top_meta(meta, {**new, **table}, old.get("rows", 0)) if defaults else old
    top = {**top, "rows": old.get("rows", top.get("rows")), "blocks": {**table, **new}}
    atomic_file(target / "meta.json", lambda h: h.write(json.dumps(top, indent=2).encode()))
    return target


def feature_folders(features) -> list[Path]:
    """`--features` as given: one folder or several."""
    return [Path(features)] if isinstance(features, (str, Path)) else [Path(f) for f in features]


def open_features(features, split: str) -> FeatureSet:
    """One split of one FEATURES folder, or the blocks of several folders made for the same ids, as one
    FeatureSet. Its default image and title blocks are the first folder's (or the first that has one)."""
    sets = [load_features(folder, split) for folder in feature_folders(features)]
    if len(sets) == 1:
        return sets[0]
    first, blocks, where = sets[0], {}, {}
    for fs in sets:
        if not np.array_equal(fs.ids, first.ids):
            raise DataError(f"{fs.path}: other ids than {first.path} ({len(fs)} vs {len(first)} rows, or another"
                            " order); FEATURES folders read together must be embedded from the same DATA lists")
        for name, block in fs.blocks.items():
            if name in blocks:
                raise DataError(f"block {name!r} is in both {where[name]} and {fs.path}; pass each block's folder once")
            blocks[name], where[name] = block, fs.path
    image = next((fs.image for fs in sets if fs.image is not None), None)
    title = next((fs.title for fs in sets if fs.title is not None), None)
    meta = {**first.meta, "folders": [str(fs.path) for fs in sets]}
    return FeatureSet(first.path, first.ids, image, title, meta, blocks, tuple(fs.path for fs in sets))


def check_splits_agree(train: FeatureSet, test: FeatureSet) -> list[str]:
    """Train and test must hold the same blocks with the same widths (a head reads them column by column),
    each from the same encoder on both sides (embedding.identity). Returns warnings (what could not be
    compared, rounding differences)."""
    a = {n: b.array.shape[1] for n, b in train.blocks.items()}
    b = {n: b.array.shape[1] for n, b in test.blocks.items()}
    if a != b:
        raise DataError(f"{train.path.parent}: train features have blocks (name: dim) {a}, test features {b};"
                        " both splits must hold the same blocks from the same encoders")
    warnings = []
    for name, block in train.blocks.items():
        other = test.blocks[name]
        warnings += check_same(block.info.get("identity"), other.info.get("identity"), block.where,
                               other.where, "embed both splits with one encoder (the same --model,"
                               " --pretrained and --quick-gelu; --random-weights with the same --seed)")
    return list(dict.fromkeys(warnings))


def blocks_identity(features: FeatureSet) -> str:
    """What names the blocks' numbers, for a run's reuse key."""
    return json.dumps({n: [b.info.get("encoder"), b.array.shape[1]] for n, b in features.blocks.items()},
                      sort_keys=True, default=str)
