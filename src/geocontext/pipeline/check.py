"""`geocontext check --data DATA [--features FEATURES]`: every reader and validator a run uses, without
training; one summary; `ok` False (exit 2) when a run would stop. For Kaggle users before a long kernel."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..competition import EXTRA_IMAGES, missing_share_error, photo_paths
from ..console import say
from ..data import grid
from ..data.readers import read_metadata, read_test_ids, read_train_labels, tag_contract
from ..embedding.blocks import open_features
from ..embedding.features import align
from ..errors import DataError


def _attempt(problems: list[str], step, *args):
    """step(*args), or None with its one-line error recorded."""
    try:
        return step(*args)
    except (DataError, ValueError) as exc:
        problems.append(str(exc))
        return None


def _metadata_summary(data_dir, ids: np.ndarray) -> dict:
    meta = read_metadata(data_dir, ids)
    where = grid.locate(meta.grid_reference)
    return {"titles_empty": int(sum(1 for t in meta.title if not t)), "no_metadata_row": meta.not_found,
            "malformed_lines": len(meta.malformed_lines), "malformed_examples": list(meta.malformed_lines[:5]),
            "bad_ids": meta.bad_ids, "warnings": list(meta.warnings), "locations": where.summary()}


def _photos_summary(data_dir, split: str, ids: np.ndarray, accept: bool, problems: list[str]) -> dict | None:
    data_dir = Path(data_dir)
    if not (data_dir / f"{split}_images").is_dir() and not (data_dir / EXTRA_IMAGES).is_dir():
        return None  # photos already embedded elsewhere (e.g. FEATURES from a Kaggle dataset)
    _, missing = photo_paths(data_dir, split, ids)
    problem = missing_share_error(split, ids[missing], len(ids), f"are in neither {split}_images/ nor {EXTRA_IMAGES}/",
                                  "--accept-missing")
    if problem and not accept:
        problems.append(problem)
    return {"missing": int(missing.sum()), "examples": ids[missing][:5].tolist()}


def _features_summary(features_dir, split: str, ids: np.ndarray, accept: bool, problems: list[str]) -> dict:
    features = open_features(features_dir, split)  # one FEATURES folder, or the blocks of several
    rows = align(features, ids, f"the {split} id list")
    images, titles = features.missing_images[rows], features.missing_titles[rows]
    problem = missing_share_error(split, ids[images], len(ids), f"have no finite image embedding in"
                                  f" {features.path / 'image.npy'}", "--accept-missing")
    if problem and not accept:
        problems.append(problem)
    return {"dim": None if features.image is None else int(features.image.shape[1]),
            "blocks": {n: int(b.array.shape[1]) for n, b in features.blocks.items()}, "nonfinite_image_rows": int(images.sum()),
            "nonfinite_title_rows": int(titles.sum()), "encoder": features.meta.get("encoder")}


def _say(summary: dict) -> None:
    labels = summary.get("columns")
    if labels:
        say(f"tag columns: {labels['count']} ({labels['source']})")
    for split, s in summary["splits"].items():
        line = f"{split}: {s['rows']} photos"
        if "metadata" in s:
            m, loc = s["metadata"], s["metadata"]["locations"]
            line += (f", {m['titles_empty']} empty titles, {loc['rows'] - loc['known']} unknown locations"
                     f" ({loc['empty']} empty, {loc['malformed']} malformed grid references),"
                     f" {m['malformed_lines']} malformed metadata lines")
            if m["malformed_examples"]:
                line += f" (e.g. {', '.join(m['malformed_examples'][:3])})"
        if s.get("photos"):
            line += f", {s['photos']['missing']} photos missing on disk"
        if s.get("features"):
            f = s["features"]
            line += f", features: {f['nonfinite_image_rows']} non-finite image rows, {f['nonfinite_title_rows']} non-finite title rows"
        say(line)
        for warning in s.get("metadata", {}).get("warnings", []):
            say(f"warning: {warning}")
    for problem in summary["problems"]:
        say(f"problem: {problem}")
    say(f"check: a run would stop ({len(summary['problems'])} problem(s))" if summary["problems"] else
        "check: ok, a run would start")


def check(data_dir, features_dir=None, accept_missing: bool = False) -> dict:
    """Read and check DATA (and FEATURES) as a run would; print one summary; never train."""
    problems: list[str] = []
    labels = _attempt(problems, read_train_labels, data_dir)
    test_ids = _attempt(problems, read_test_ids, data_dir)
    summary = {"splits": {}, "problems": problems}
    if labels is not None:
        source = "tags-top.csv" if _attempt(problems, tag_contract, data_dir) else "train.csv, no tags-top.csv"
        summary["columns"] = {"count": len(labels.columns), "source": source}
    dims = {}
    for split, ids in (("train", None if labels is None else labels.ids), ("test", test_ids)):
        if ids is None:
            continue
        s = summary["splits"][split] = {"rows": len(ids)}
        s["metadata"] = _attempt(problems, _metadata_summary, data_dir, ids)
        s["photos"] = _attempt(problems, _photos_summary, data_dir, split, ids, accept_missing, problems)
        if features_dir is not None:
            s["features"] = _attempt(problems, _features_summary, features_dir, split, ids, accept_missing, problems)
            if s["features"]:
                dims[split] = s["features"]["blocks"]
    if len(dims) == 2 and dims["train"] != dims["test"]:
        problems.append(f"{features_dir}: train features have blocks (name: dim) {dims['train']}, test features"
                        f" {dims['test']}; both splits must hold the same blocks from the same encoders")
    summary["ok"] = not problems
    _say(summary)
    return summary
