"""The variants of a run folder: saved with their probabilities, reused when their inputs have not
changed, and brought in from other run folders as ensemble members (OUT/variants/<name>/, run_folder)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..console import say
from ..decoding.decoders import ThresholdDecoder
from ..decoding.metrics import scores
from ..errors import DataError
from ..training.config import TrainConfig
from ..training.neighbours import GAP_CAP
from ..training.variant import Variant
from ..writing import writing
from .predict import check_encoders
from .prepare import Prepared
from .run_folder import RunFolder


class Members:
    """Hold-out and test probabilities and a report per variant, as the decoding step needs them."""

    def __init__(self):
        self.holdout_probs: dict[str, np.ndarray] = {}
        self.test_probs: dict[str, np.ndarray] = {}
        self.far_probs: dict[str, np.ndarray] = {}  # on the far view's rows (pipeline.bands), when the run has one
        self.reports: dict[str, dict] = {}
        self.reading_ids: set[str] = set()  # the members that read upload neighbours (id-neighbour block, peers)

    def __contains__(self, name: str) -> bool:
        return name in self.holdout_probs

    def add(self, name: str, holdout: np.ndarray, test: np.ndarray, report: dict, far: np.ndarray | None = None,
            reads_ids: bool = False) -> None:
        self.holdout_probs[name], self.test_probs[name], self.reports[name] = holdout, test, report
        if far is not None:
            self.far_probs[name] = far
        if reads_ids:
            self.reading_ids.add(name)


def save_member(out: RunFolder, variant: Variant, holdout: np.ndarray, test: np.ndarray, report: dict,
                members: Members, far: np.ndarray | None = None) -> None:
    """Write a variant with its probabilities into the run, and record them for the decoding step."""
    member = out.member(variant.name)
    with writing(member.path, f"variant {variant.name}", partial=[member.path]):  # whole, or not there at all
        variant.save(member.path)
        member.write(holdout, test, report, far)
    members.add(variant.name, holdout, test, report, far, variant.features.reads_ids)


def reuse(out: RunFolder, vc, prep: Prepared, members: Members) -> bool:
    """A variant already trained in this run folder on the same inputs with the same settings is kept."""
    member = out.member(vc.name)
    try:
        saved = Variant.read_info(member.path)
        settings = json.loads(json.dumps({"train": vc.train.to_dict(), "features": vc.features.to_dict()}))
        same = (saved.get("fingerprint") == prep.reuse_key and "train" in saved and saved.get("features") ==
                settings["features"] and TrainConfig.from_dict(saved["train"]).to_dict() == settings["train"])
        if not same:
            return False
        holdout, test, report, far = member.read()
        if prep.far.any() and (far is None or len(far) != int(prep.far.sum())):
            return False
        members.add(vc.name, holdout, test, report, far, vc.features.reads_ids)
    except (OSError, ValueError, TypeError):
        return False
    say(f"reusing {vc.name}: already trained in {member.path} on the same inputs")
    return True


def member_probs(prep: Prepared, variant: Variant) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A finished variant's probabilities on this run's hold-out (each row at its matched radius), test
    photos and far view's rows (reading no labelled neighbour)."""
    def on(rows: np.ndarray, radius: np.ndarray) -> np.ndarray:
        return variant.predict_proba(prep.train.features, prep.train.rows[rows], prep.train.location[rows],
                                     prep.train.irish[rows], ids=prep.labels.ids[rows], radius=radius)
    held = prep.holdout
    holdout = on(held, prep.radius[held])
    test = variant.predict_proba(prep.test.features, prep.test.rows, prep.test.location, prep.test.irish,
                                 ids=prep.test_ids)
    far = on(prep.far, np.full(int(prep.far.sum()), GAP_CAP)) if prep.far.any() else None
    return holdout, test, far


def load_members(runs) -> list[tuple[Path, Variant]]:
    """Every variant of each run folder, loaded (weights_only) and checked before any training."""
    loaded = []
    for run_dir in runs:
        folder = RunFolder(run_dir)
        folder.read_run_info()  # a finished run, not any folder
        found = folder.members()
        if not found:
            raise DataError(f"{run_dir}: no variants/<name>/variant.json; nothing to bring in with --with")
        loaded += [(Path(run_dir), Variant.load(member.path)) for member in found]
    return loaded


def check_members(loaded: list[tuple[Path, Variant]], prep: Prepared) -> None:
    """Members from other runs must predict this run's tag columns from features of the same encoders."""
    columns = prep.labels.columns
    for run_dir, variant in loaded:
        if tuple(variant.columns) != tuple(columns):
            raise DataError(f"{run_dir}: variant {variant.name!r} predicts other tag columns than train.csv"
                            f" ({len(variant.columns)} columns, DATA has {len(columns)})")
        check_encoders([variant], prep.train.features, run_dir)


def add_members(prep: Prepared, loaded: list[tuple[Path, Variant]], out: RunFolder, members: Members) -> None:
    """Bring the variants of other run folders (e.g. imported published heads; see load_members) into
    this run as ensemble members: copied into OUT/variants/ so the run stays self-contained, scored on
    this run's hold-out. Every variant of each run is brought, not only its final choice's members.
    `check_members` has passed them before anything was trained."""
    for run_dir, variant in loaded:
        name = variant.name
        variant.name = name if name not in members else f"{Path(run_dir).name}-{name}"
        same_split = variant.info.get("holdout_split") == prep.split_key
        if not same_split:
            say(f"warning: {variant.name} was not trained with this run's hold-out split; it may have seen"
                " hold-out photos, so its hold-out scores (and ensemble weight) can be optimistic")
        holdout, test, far = member_probs(prep, variant)
        at_half = scores(prep.y_holdout, ThresholdDecoder(0.5).decode(holdout), prep.labels.columns)
        save_member(out, variant, holdout, test,
                    {"holdout_at_0.5": at_half, "from": str(run_dir), "same_holdout_split": same_split}, members, far)
        say(f"  {variant.name} (from {run_dir}): hold-out exact match {at_half['exact_match']:.4f} at 0.5")
