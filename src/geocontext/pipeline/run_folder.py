"""The run folder (OUT of `run`, or of `heads import`): every file's name, in one place.

OUT/
  run.json                  configuration, tag columns, the final choice (members, weights, decoder),
                            DATA and FEATURES (absolute; and as typed, `*_as_given`)
  report.json               hold-out scores per variant and for the final choice, counts, timings
  report.md, per_tag_f1.png the final choice's per-tag figures and decoder (reports.markdown)
  report.html, holdout.npz  where it fails, with photos (reports.html_report; `geocontext report` rebuilds it)
  thumbs/                   the report's cached photo thumbnails
  split.npz                 hold-out ids (the same for every variant of the run)
  optuna.db                 the final decoder's Optuna studies (SQLite)
  neighbours.npz            the labelled photos' ids and tag sets, for the neighbour-set decoder
  variants/<name>/          a member: model.pt + variant.json (training.variant), holdout_probs.npy,
                            test_probs.npy, far_probs.npy (the far view's rows, pipeline.bands), report.json
  submission.csv.zip
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..training.neighbours import IdNeighbours
from ..training.variant import SPEC_FILE
from ..writing import atomic_file


def _write_json(path: Path, value) -> Path:
    return atomic_file(path, lambda h: h.write(json.dumps(value, indent=2).encode()))


@dataclass(frozen=True)
class MemberFolder:
    """OUT/variants/<name>/: the saved variant (training.variant) and what the run made of it."""

    path: Path

    @property
    def holdout_probs(self) -> Path:
        return self.path / "holdout_probs.npy"

    @property
    def test_probs(self) -> Path:
        return self.path / "test_probs.npy"

    @property
    def far_probs(self) -> Path:
        return self.path / "far_probs.npy"

    @property
    def report(self) -> Path:
        return self.path / "report.json"

    def is_variant(self) -> bool:
        return (self.path / SPEC_FILE).is_file()

    def write(self, holdout: np.ndarray, test: np.ndarray, report: dict, far: np.ndarray | None = None) -> None:
        for path, probs in ((self.holdout_probs, holdout), (self.test_probs, test), (self.far_probs, far)):
            if probs is not None:
                atomic_file(path, lambda h, p=probs: np.save(h, p), needed=probs.nbytes)
        if far is None:
            self.far_probs.unlink(missing_ok=True)
        _write_json(self.report, report)

    def read(self) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray | None]:
        far = np.load(self.far_probs) if self.far_probs.exists() else None
        return np.load(self.holdout_probs), np.load(self.test_probs), json.loads(self.report.read_text()), far


@dataclass(frozen=True)
class RunFolder:
    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    run_json = property(lambda self: self.path / "run.json")
    report_json = property(lambda self: self.path / "report.json")
    report_md = property(lambda self: self.path / "report.md")
    per_tag_f1_png = property(lambda self: self.path / "per_tag_f1.png")
    report_html = property(lambda self: self.path / "report.html")
    holdout_npz = property(lambda self: self.path / "holdout.npz")
    thumbs = property(lambda self: self.path / "thumbs")
    split_npz = property(lambda self: self.path / "split.npz")
    optuna_db = property(lambda self: self.path / "optuna.db")
    submission = property(lambda self: self.path / "submission.csv.zip")
    neighbours_npz = property(lambda self: self.path / "neighbours.npz")
    variants = property(lambda self: self.path / "variants")

    @property
    def optuna_storage(self) -> str:
        """The Optuna storage URL of optuna.db."""
        return f"sqlite:///{self.optuna_db.resolve()}"

    def member(self, name: str) -> MemberFolder:
        return MemberFolder(self.variants / name)

    def members(self) -> list[MemberFolder]:
        """Every saved variant, by name."""
        found = sorted(self.variants.iterdir()) if self.variants.is_dir() else []
        return [m for m in map(MemberFolder, found) if m.is_variant()]

    def write_run_info(self, info: dict) -> Path:
        return _write_json(self.run_json, info)

    def write_report(self, report: dict) -> Path:
        return _write_json(self.report_json, report)

    def read_run_info(self) -> dict:
        """run.json of a finished run (or head import); a folder without one is refused, naming it."""
        if not self.run_json.exists():
            raise DataError(f"{self.path}: no run.json; is this the OUT folder of a finished `geocontext run`?")
        return json.loads(self.run_json.read_text())

    def write_neighbours(self, labelled: IdNeighbours) -> Path:
        return atomic_file(self.neighbours_npz, lambda h: np.savez_compressed(
            h, ids=labelled.ids, codes=labelled.codes, n_tags=labelled.n_tags, global_rate=labelled.global_rate))

    def recorded_data(self, info: dict) -> tuple[Path | None, str | None]:
        """(the run's DATA folder when it is still there, what run.json records). Runs record it absolute;
        older ones as typed, which resolves only from the folder they were started in."""
        recorded = info.get("data")
        return (Path(recorded) if recorded and Path(recorded).is_dir() else None), recorded

    def read_neighbours(self) -> IdNeighbours | None:
        """The labelled rows a run's neighbour-set decoder reads; None for a run saved without them."""
        if not self.neighbours_npz.exists():
            return None
        with np.load(self.neighbours_npz) as saved:
            return IdNeighbours(saved["ids"], saved["codes"], int(saved["n_tags"]), saved["global_rate"])

    def read_report(self) -> dict:
        if not self.report_json.exists():
            raise DataError(f"{self.path}: no report.json (not a finished run, or a head import made without"
                            " --data/--features)")
        return json.loads(self.report_json.read_text())
