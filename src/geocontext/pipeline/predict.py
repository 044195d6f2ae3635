"""`geocontext predict`: tag a FEATURES split with a finished run (no retraining)."""
from __future__ import annotations

import numpy as np

from ..console import say
from ..data.readers import data_columns, find, read_test_ids
from ..data.submission import check_target, write_submission
from ..decoding.neighbour_sets import NeighbourSetDecoder
from ..decoding.bands import NAMES, Banded, choice_from_dict, describe
from ..decoding.select import Choice
from ..embedding.blocks import open_features
from ..embedding.features import align
from ..errors import DataError
from ..training.variant import Variant
from .outputs import writable_file
from .run_folder import RunFolder
from .stream import predict_chunks, streamed_inputs


def check_run_columns(run_dir, columns, data_dir) -> None:
    """A run trained on other tag columns than DATA's would write a wrong-column file: refuse it."""
    contract = data_columns(data_dir)
    if contract is not None and set(columns) != set(contract):  # same names, any order: joined by name
        missing = [c for c in contract if c not in columns]
        extra = [c for c in columns if c not in contract]
        raise DataError(f"{run_dir}: trained on other tag columns than {data_dir} has (missing {missing[:5]},"
                        f" unexpected {extra[:5]}); use a run trained on this DATA")


def check_encoders(variants, features, run_dir) -> None:
    """Refuse features from other encoders than `variants` (of the run `run_dir`) were trained on, before
    any work; print what could not be compared."""
    warnings = [w for variant in variants for w in variant.check_encoders(features, str(run_dir))]
    for warning in dict.fromkeys(warnings):
        say(f"warning: {warning}")


def load_run(run_dir) -> tuple[dict, dict[str, Variant], Choice | Banded]:
    """A finished run's run.json, the final choice's members (loaded) and the choice."""
    folder = RunFolder(run_dir)
    info = folder.read_run_info()
    neighbours = folder.read_neighbours()
    final = info["final"]
    reads = final.get("kind") == Banded.kind or final["decoder"].get("kind") == NeighbourSetDecoder.kind
    if neighbours is None and reads:
        raise DataError(f"{folder.neighbours_npz}: missing; the run's final choice reads the labelled photos' ids"
                        " and tag sets from it (run `geocontext run` again with the same --out to rewrite it)")
    choice = choice_from_dict(final, len(info["columns"]), neighbours)
    variants = {name: Variant.load(folder.member(name).path) for name in choice.members}
    return info, variants, choice


def predict(run_dir, data_dir, features_dir, out_file, probs_file=None, split: str = "test",
            accept_missing: bool = False) -> dict:
    """Tag the photos of a FEATURES split with a finished run (no retraining)."""
    check_target(out_file)
    if probs_file is not None:
        writable_file(probs_file, "--probs", ".npy")
    info, variants, choice = load_run(run_dir)
    check_run_columns(run_dir, info["columns"], data_dir)
    features = open_features(features_dir, split)  # one FEATURES folder, or several (their blocks together)
    check_encoders(variants.values(), features, run_dir)
    ids = features.ids
    inputs = streamed_inputs(data_dir, features, ids, f"{features.path / 'ids.npy'}", split, accept_missing)
    tags = predict_chunks(variants, choice, inputs, probs_file, source=str(out_file))
    on_test = split == "test" and find(data_dir, "test.csv", "test.csv.zip")  # another split: its own ids
    respelt: list = []
    submission_ids = read_test_ids(data_dir, respelt) if on_test else ids
    for odd in respelt:  # written canonically in the submission, as Kaggle's test.csv writes them
        say(f"warning: {odd}")
    pos = align(features, submission_ids, "test.csv")
    path = write_submission(out_file, submission_ids, tags[pos], tuple(info["columns"]), submission_ids)
    say(f"submission: {path} ({len(submission_ids)} photos, decoded with {choice.name})")
    if isinstance(choice, Banded):  # each photo was decoded by its gap band's choice
        counts = np.bincount(choice.bands(ids), minlength=len(NAMES))
        say("photos by gap band (id distance to the nearest labelled photo): "
            + ", ".join(f"{describe(b)} {n}" for b, n in enumerate(counts)))
    return {"submission": str(path), "rows": len(submission_ids), **inputs.summary}
