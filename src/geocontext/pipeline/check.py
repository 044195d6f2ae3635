"""`geocontext check --data DATA [--features FEATURES]`: every reader and validator a run uses, without
training; one summary; `ok` False (exit 2) when a run would stop. For Kaggle users before a long kernel.

Besides what stops a run, it warns (counted) about what reads fine but looks wrong: test ids also in
train, metadata rows for photos in neither split, photos without a metadata row, tag columns with no
photo at all, undecodable bytes in metadata; and features of one block from other encoders in train and
test (that stops a run). It also prints the upload-order facts (data.upload_order): how often a photo's
nearest labelled id carries its tag set, and how far test ids sit from labelled ones."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..competition import EXTRA_IMAGES, missing_share_error, photo_paths
from ..console import say
from ..data import grid
from ..data.readers import Metadata, read_metadata, read_test_ids, read_train_labels, tag_contract
from ..data.upload_order import upload_order_facts
from ..decoding.bands import EDGES
from ..embedding.blocks import check_splits_agree, open_features
from ..embedding.features import align
from ..errors import DataError

FAR = EDGES[-1]  # the far band's edge: beyond it, a run chooses on its far view


def _attempt(problems: list[str], step, *args):
    """step(*args), or None with its one-line error recorded."""
    try:
        return step(*args)
    except (DataError, ValueError) as exc:
        problems.append(str(exc))
        return None


def _metadata_summary(meta: Metadata, rows: np.ndarray) -> dict:
    """One split's part (rows of `meta`) of the metadata read for both splits at once."""
    where = grid.locate(meta.grid_reference[rows])
    return {"titles_empty": int(sum(1 for t in meta.title[rows] if not t)), "no_metadata_row": int((~meta.found[rows]).sum()),
            "malformed_lines": len(meta.malformed_lines), "malformed_examples": list(meta.malformed_lines[:5]),
            "undecodable_lines": len(meta.undecodable_lines), "bad_ids": meta.bad_ids, "locations": where.summary()}


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


def _features_summary(features, split: str, ids: np.ndarray, accept: bool, problems: list[str]) -> dict:
    rows = align(features, ids, f"the {split} id list")
    images, titles = features.missing_images[rows], features.missing_titles[rows]
    problem = missing_share_error(split, ids[images], len(ids), f"have no finite image embedding in"
                                  f" {features.path / 'image.npy'}", "--accept-missing")
    if problem and not accept:
        problems.append(problem)
    return {"dim": None if features.image is None else int(features.image.shape[1]),
            "blocks": {n: int(b.array.shape[1]) for n, b in features.blocks.items()}, "nonfinite_image_rows": int(images.sum()),
            "nonfinite_title_rows": int(titles.sum()), "encoder": features.meta.get("encoder")}


def _share(n: int, total: int) -> str:
    return f"{n} of {total} ({100 * n / max(total, 1):.2f}%)"


def looks_wrong(labels, test_ids: np.ndarray | None, meta: Metadata | None) -> list[str]:
    """Warnings for inputs a run reads without stopping but that look like a wrong file."""
    warnings = []
    if labels is not None:
        empty = [c for c, n in zip(labels.columns, labels.y.sum(axis=0)) if n == 0]
        if empty:
            warnings.append(f"{len(empty)} tag column(s) have no positive photo in train.csv: {', '.join(empty[:10])}"
                            f"{' ...' if len(empty) > 10 else ''} (a head cannot learn them)")
    if labels is not None and test_ids is not None:
        both = np.intersect1d(labels.ids, test_ids)
        if len(both):
            warnings.append(f"{len(both)} test id(s) are also training photos (e.g. {', '.join(map(str, both[:5]))}):"
                            " test.csv and train.csv from different competitions or versions?")
    if meta is not None and meta.found is not None:
        splits = [("train", 0, 0 if labels is None else len(labels))]
        splits.append(("test", splits[0][2], splits[0][2] + (0 if test_ids is None else len(test_ids))))
        for split, start, stop in splits:
            missing = int((~meta.found[start:stop]).sum())
            if missing and stop > start:
                warnings.append(f"{_share(missing, stop - start)} {split} photos have no metadata row (title and location"
                                " unknown)")
        if meta.unmatched:
            warnings.append(f"{meta.unmatched} metadata row(s) describe photos in neither train nor test (another"
                            " competition's metadata?)")
    return warnings + (list(meta.warnings) if meta is not None else [])


def describe_upload_order(facts: dict) -> list[str]:
    """What the ids tell, judged for the test photos (README "Photos uploaded together"); numbers as numbers."""
    random_pair = facts["random_pair_same_set"]
    lines = [f"upload order: a labelled photo's nearest labelled id has exactly its tag set for"
             f" {100 * facts['nearest_same_set']:.1f}% of labelled photos (two at random: {100 * random_pair:.2f}%)"]
    g = facts.get("test_gap")
    if not g or g["median"] is None:
        return lines
    lines.append(f"test photos are a median {g['median']:,} ids from the nearest labelled one ({100 * g['within_1']:.0f}%"
                 f" within 1, {100 * g['within_5']:.0f}% within 5, {100 * g['within_100']:.0f}% within 100)")
    lift, labelled_lift = facts.get("test_lift") or 0.0, facts.get("lift") or 0.0
    if labelled_lift < 2:
        verdict = ("ids say nothing here (labelled neighbours share a tag set about as often as two photos at random):"
                   " a run's honest choice will likely leave the id-neighbour block and decoder out")
    elif g[f"within_{FAR}"] < 0.5:
        verdict = (f"the test is far from the labelled ids ({100 * (1 - g[f'within_{FAR}']):.0f}% beyond {FAR} ids): its"
                   " photos' nearest labelled ids would carry their set about"
                   f" {100 * facts['test_expected_same_set']:.1f}% of the time ({lift:.1f}x random); a run chooses for"
                   " them on hold-out rows made as far off (its far band)")
    else:
        verdict = (f"at the test photos' gaps a nearest labelled id would carry their set about"
                   f" {100 * facts['test_expected_same_set']:.1f}% of the time ({lift:.1f}x random): the id-neighbour"
                   " block and decoder can use it")
    return lines + [verdict]


def _say(summary: dict) -> None:
    labels = summary.get("columns")
    if labels:
        say(f"tag columns: {labels['count']} ({labels['source']})")
    for split, s in summary["splits"].items():
        line = f"{split}: {s['rows']} photos"
        if s.get("metadata"):
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
    if "upload_order" in summary:
        for line in describe_upload_order(summary["upload_order"]):
            say(line)
    for warning in summary["warnings"]:
        say(f"warning: {warning}")
    for problem in summary["problems"]:
        say(f"problem: {problem}")
    counted = f"; {len(summary['warnings'])} warning(s)" if summary["warnings"] else ""
    say(f"check: a run would stop ({len(summary['problems'])} problem(s){counted})" if summary["problems"] else
        f"check: ok, a run would start{counted}")


def check(data_dir, features_dir=None, accept_missing: bool = False) -> dict:
    """Read and check DATA (and FEATURES) as a run would; print one summary; never train."""
    problems: list[str] = []
    labels = _attempt(problems, read_train_labels, data_dir)
    respelt = [] if labels is None else list(labels.respelt)  # ids written non-canonically (data.ids)
    test_ids = _attempt(problems, read_test_ids, data_dir, respelt)
    summary = {"splits": {}, "problems": problems, "warnings": []}
    if labels is not None:
        source = "tags-top.csv" if _attempt(problems, tag_contract, data_dir) else "train.csv, no tags-top.csv"
        summary["columns"] = {"count": len(labels.columns), "source": source}
    lists = [(split, ids) for split, ids in (("train", None if labels is None else labels.ids), ("test", test_ids))
             if ids is not None]
    every = np.concatenate([ids for _, ids in lists]) if lists else np.empty(0, np.int64)
    meta = _attempt(problems, read_metadata, data_dir, every)  # both splits in one read
    opened, start = {}, 0
    for split, ids in lists:
        s = summary["splits"][split] = {"rows": len(ids)}
        rows = np.arange(start, start + len(ids))
        start += len(ids)
        s["metadata"] = None if meta is None else _metadata_summary(meta, rows)
        s["photos"] = _attempt(problems, _photos_summary, data_dir, split, ids, accept_missing, problems)
        if features_dir is not None:
            opened[split] = _attempt(problems, open_features, features_dir, split)  # one folder, or several
            if opened[split] is not None:
                s["features"] = _attempt(problems, _features_summary, opened[split], split, ids, accept_missing, problems)
    if opened.get("train") is not None and opened.get("test") is not None:
        summary["warnings"] += _attempt(problems, check_splits_agree, opened["train"], opened["test"]) or []
    summary["warnings"] = [*map(str, respelt), *looks_wrong(labels, test_ids, meta), *summary["warnings"]]
    if labels is not None and len(labels.ids) >= 2:
        summary["upload_order"] = upload_order_facts(labels.ids, labels.y, test_ids)
    summary["ok"] = not problems
    _say(summary)
    return summary
