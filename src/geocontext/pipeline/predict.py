"""`geocontext predict`: tag a FEATURES split with a finished run (no retraining)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..console import say
from ..data.readers import find, read_test_ids
from ..data.submission import write_submission
from ..decoding.select import Choice
from ..embedding.blocks import open_features
from ..embedding.features import align
from ..training.variant import Variant
from .members import run_json
from .prepare import load_inputs


def load_run(run_dir) -> tuple[dict, dict[str, Variant], Choice]:
    run_dir = Path(run_dir)
    info = json.loads(run_json(run_dir).read_text())
    choice = Choice.from_dict(info["final"], len(info["columns"]))
    variants = {name: Variant.load(run_dir / "variants" / name) for name in choice.members}
    return info, variants, choice


def predict(run_dir, data_dir, features_dir, out_file, probs_file=None, split: str = "test") -> dict:
    """Tag the photos of a FEATURES split with a finished run (no retraining)."""
    info, variants, choice = load_run(run_dir)
    features = open_features(features_dir, split)  # one FEATURES folder, or several (their blocks together)
    ids = features.ids
    inputs = load_inputs(data_dir, features_dir, split, ids, f"{features.path / 'ids.npy'}")
    fused = {}
    probs = [variants[m].predict_proba(inputs.features, inputs.rows, inputs.location, inputs.irish, fused)
             for m in choice.members]
    del fused
    tags = choice.decode(probs)
    if probs_file is not None:
        np.save(probs_file, choice.combine(probs))
    submission_ids = read_test_ids(data_dir) if find(data_dir, "test.csv", "test.csv.zip") else ids
    pos = align(features, submission_ids, "test.csv")
    path = write_submission(out_file, submission_ids, tags[pos], tuple(info["columns"]), submission_ids)
    say(f"submission: {path} ({len(submission_ids)} photos, decoded with {choice.name})")
    return {"submission": str(path), "rows": len(submission_ids), **inputs.summary}
