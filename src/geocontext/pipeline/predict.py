"""`geocontext predict`: tag a FEATURES split with a finished run (no retraining)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..console import say
from ..data.readers import find, read_test_ids
from ..data.submission import write_submission
from ..decoding.select import Choice
from ..embedding.features import align, load_features, release
from ..training.variant import Variant
from .members import run_json
from .prepare import load_inputs


def load_run(run_dir) -> tuple[dict, dict[str, Variant], Choice]:
    run_dir = Path(run_dir)
    info = json.loads(run_json(run_dir).read_text())
    choice = Choice.from_dict(info["final"], len(info["columns"]))
    variants = {name: Variant.load(run_dir / "variants" / name) for name in choice.members}
    return info, variants, choice


def predict_chunks(variants: dict[str, Variant], choice: Choice, inputs, probs_file=None,
                   chunk: int = 65_536) -> np.ndarray:
    """The final choice's 0/1 tags for every row of `inputs`, computed `chunk` rows at a time: inputs are
    fused, standardised and decoded per chunk and the probabilities streamed to `probs_file` (.npy), so
    memory stays flat however many photos there are (8M for the whole archive)."""
    n, tags, out = len(inputs.rows), None, None
    if probs_file is not None and not str(probs_file).endswith(".npy"):
        probs_file = f"{probs_file}.npy"  # as np.save names it
    part_file = None if probs_file is None else Path(f"{probs_file}.part")  # complete or absent, never half
    try:
        for start in range(0, max(n, 1), chunk):
            part = slice(start, start + chunk)
            fused: dict = {}  # variants sharing a feature spec fuse each chunk once
            probs = [variants[m].predict_proba(inputs.features, inputs.rows[part], inputs.location[part],
                                               inputs.irish[part], fused) for m in choice.members]
            del fused
            if tags is None:
                tags = np.empty((n, probs[0].shape[1]), dtype=np.uint8)
                out = None if part_file is None else _npy_writer(part_file, (n, probs[0].shape[1]))
            tags[part] = choice.decode(probs)
            if out is not None:
                out.write(np.ascontiguousarray(choice.combine(probs), dtype="<f4").tobytes())
            release(inputs.features)
    except BaseException:
        if out is not None:
            out.close()
            part_file.unlink(missing_ok=True)
        raise
    if out is not None:
        out.close()
        part_file.replace(probs_file)
    return tags


def _npy_writer(path, shape: tuple[int, int]):
    """A .npy file of float32 `shape` whose rows are written in order after the header."""
    handle = open(path, "wb")
    np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return handle


def predict(run_dir, data_dir, features_dir, out_file, probs_file=None, split: str = "test") -> dict:
    """Tag the photos of a FEATURES split with a finished run (no retraining)."""
    info, variants, choice = load_run(run_dir)
    features = load_features(features_dir, split)
    ids = features.ids
    inputs = load_inputs(data_dir, features_dir, split, ids, f"{features.path / 'ids.npy'}")
    tags = predict_chunks(variants, choice, inputs, probs_file)
    submission_ids = read_test_ids(data_dir) if find(data_dir, "test.csv", "test.csv.zip") else ids
    pos = align(features, submission_ids, "test.csv")
    path = write_submission(out_file, submission_ids, tags[pos], tuple(info["columns"]), submission_ids)
    say(f"submission: {path} ({len(submission_ids)} photos, decoded with {choice.name})")
    return {"submission": str(path), "rows": len(submission_ids), **inputs.summary}
