"""What a run reads and decides before training: each split's inputs (features, metadata, locations),
the seeded hold-out split (and its rows that choose epochs), how far each hold-out row is made to look
from its labelled neighbours (pipeline.honest.matched_radius) and the far view (pipeline.bands), the rows
to fit on, and the key that says when a saved variant still fits."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..competition import missing_share_error
from ..console import say
from ..data import grid
from ..data.readers import Labels, read_metadata, read_test_ids, read_train_labels
from ..data.split import holdout_mask
from ..embedding.blocks import blocks_identity, check_splits_agree, feature_folders, open_features
from ..embedding.features import FeatureSet, align
from ..errors import DataError
from ..hashing import content_digest
from ..training.neighbours import IdNeighbours
from ..writing import atomic_file
from .bands import far_view
from .honest import MATCH_NEIGHBOURS, matched_radius, stop_key, stop_rows
from .run_folder import RunFolder


@dataclass
class Inputs:
    """One split's photos: their ids, where their features sit, and their normalised locations."""

    ids: np.ndarray
    features: FeatureSet
    rows: np.ndarray
    location: np.ndarray  # (N, 2) normalised lat/lon, NaN where unknown
    irish: np.ndarray  # (N,) bool: square on the Irish Grid (some feature specs leave these unknown)
    summary: dict


def _image_files(features: FeatureSet) -> str:
    """Where the image blocks sit, for a message: image.npy of one folder, else the blocks and folders."""
    names = [n for n, b in features.blocks.items() if b.kind == "image"]
    if len(features.sources) == 1 and len(names) == 1:
        return str(features.path / features.blocks[names[0]].info.get("file", "image.npy"))
    return f"image blocks {', '.join(names)} of {', '.join(map(str, features.sources))}"


def missing_rows(split: str, features: FeatureSet, rows: np.ndarray, ids: np.ndarray, accept_missing: bool) -> dict:
    """Counts of the photos without a finite image or title embedding (in any block of that kind). More
    than MISSING_LIMIT of a split's images missing stops, unless `accept_missing`."""
    missing = features.missing_images[rows]
    problem = missing_share_error(split, ids[missing], len(ids), f"have no finite image embedding in"
                                  f" {_image_files(features)}", "--accept-missing")
    if problem and not accept_missing:
        raise DataError(problem)
    return {"missing_images": int(missing.sum()), "missing_titles": int(features.missing_titles[rows].sum())}


def inputs_summary(rows: int, missing: dict, locations: dict, malformed_lines: list, bad_ids: int, not_found: int,
                   warnings: list[str], undecodable_lines=()) -> dict:
    """One split's counts as report.json keeps them (the same whether metadata was read whole or streamed)."""
    return {"rows": rows, **missing, "locations": locations,
            "metadata": {"malformed_lines": len(malformed_lines), "malformed_examples": list(malformed_lines[:10]),
                         "bad_ids": bad_ids, "not_found": not_found, "warnings": list(warnings),
                         "undecodable_lines": len(undecodable_lines),
                         "undecodable_examples": list(undecodable_lines[:10])}}


def load_inputs(data_dir, features_dir, split: str, ids: np.ndarray, source: str, accept_missing: bool = False) -> Inputs:
    """One split's inputs, from one FEATURES folder or the blocks of several. More than MISSING_LIMIT of
    its photos missing (image rows with NaN or Inf) stops, unless `accept_missing`."""
    features = open_features(features_dir, split)
    rows = align(features, ids, source)
    meta = read_metadata(data_dir, ids)
    for warning in meta.warnings:
        say(f"warning: {warning}")
    where = grid.locate(meta.grid_reference)
    summary = inputs_summary(len(ids), missing_rows(split, features, rows, ids, accept_missing), where.summary(),
                             meta.malformed_lines, meta.bad_ids, meta.not_found, meta.warnings,
                             meta.undecodable_lines)
    return Inputs(ids, features, rows, grid.normalise(where.latlon), where.irish, summary)


def reuse_key(labels: Labels, holdout, fit_rows, test_ids, train: Inputs, test: Inputs) -> str:
    """The content of everything that reaches a variant: labels and their columns, the split, the rows of
    both splits' feature arrays (digested chunk by chunk) and their locations. Any change retrains."""
    arrays = content_digest(labels.ids, labels.y, np.frombuffer("|".join(labels.columns).encode(), np.uint8),
                            holdout, fit_rows, test_ids, train.rows, test.rows, train.location, train.irish,
                            test.location, test.irish)
    return f"{arrays}-{train.features.digest()[:16]}-{test.features.digest()[:16]}"


@dataclass
class Prepared:
    """Everything a run decides before training: inputs, the hold-out split, the rows to fit on."""

    data_dir: Path
    features_dir: Path | tuple[Path, ...]  # several with `run --features A --features B`
    labels: Labels
    test_ids: np.ndarray
    train: Inputs
    test: Inputs
    holdout: np.ndarray  # bool over labels.ids
    stop: np.ndarray  # bool over labels.ids: the hold-out rows that choose epochs (pipeline.honest)
    fit_rows: np.ndarray  # bool: not hold-out, not too many tags
    reuse_key: str  # of labels, split, stop rows and features: a saved variant is reused only when it matches
    labelled: IdNeighbours  # every labelled row's id and tag set (the neighbours test photos read)
    radius: np.ndarray  # int64 over labels.ids: each hold-out row ignores the labelled ids within it (0 elsewhere)
    far: np.ndarray  # bool over labels.ids: the far view's rows (hold-out rows reading no labelled neighbour)
    test_gaps: np.ndarray  # int64: each test photo's gap to its nearest labelled id
    memo: dict = field(default_factory=dict)  # what variants' inputs share, made once (pipeline.tensors: peers)

    @property
    def split_key(self) -> str:
        """Names the hold-out split; a variant trained with another split may have seen hold-out photos."""
        return content_digest(np.sort(self.labels.ids[self.holdout]))

    @property
    def y_holdout(self) -> np.ndarray:
        return self.labels.y[self.holdout]

    @property
    def select(self) -> np.ndarray:
        """Bool over the hold-out rows: those that choose no epoch, where every decoding decision is made."""
        return ~self.stop[self.holdout]


def _say_summary(name: str, s: dict) -> None:
    say(f"{name}: {s['rows']} photos, {s['missing_images']} missing images (NaN/Inf rows),"
        f" {s['missing_titles']} missing title embeddings (NaN/Inf rows), "
        f"{s['locations']['rows'] - s['locations']['known']} unknown locations "
        f"({s['locations']['empty']} empty, {s['locations']['malformed']} malformed grid references), "
        f"{s['metadata']['malformed_lines']} malformed metadata lines")


def prepare(data_dir, features_dir, out: str | Path, holdout_fraction: float = 0.2, seed: int = 0,
            max_tags: int = 5, accept_missing: bool = False) -> Prepared:
    """Read and check the inputs, locate the photos, and fix (and save in OUT) the hold-out split."""
    labels = read_train_labels(data_dir)
    respelt = list(labels.respelt)  # ids written non-canonically (data.ids): read, and said
    test_ids = read_test_ids(data_dir, respelt)
    for odd in respelt:
        say(f"warning: {odd}")
    train = load_inputs(data_dir, features_dir, "train", labels.ids, "train.csv", accept_missing)
    test = load_inputs(data_dir, features_dir, "test", test_ids, "test.csv", accept_missing)
    for warning in check_splits_agree(train.features, test.features):
        say(f"warning: {warning}")
    for name, part in (("train", train), ("test", test)):
        _say_summary(name, part.summary)
    holdout = holdout_mask(labels.ids, holdout_fraction, seed)
    stop = stop_rows(labels.ids, holdout, seed)
    fit_rows = ~holdout & (labels.y.sum(axis=1) <= max_tags)
    labelled = IdNeighbours.fit(labels.ids, labels.y)
    test_gaps, held = labelled.gaps(test_ids), labels.ids[holdout]
    radius = np.zeros(len(labels.ids), np.int64)
    radius[holdout] = matched_radius(held, labelled.gaps(held, k=MATCH_NEIGHBOURS), test_gaps, seed)
    far = far_view(labelled, labels.ids, holdout & ~stop, radius, seed)
    folder = RunFolder(out)
    folder.path.mkdir(parents=True, exist_ok=True)
    atomic_file(folder.split_npz, lambda h: np.savez(h, holdout_ids=labels.ids[holdout], seed=seed, fraction=holdout_fraction))
    key = reuse_key(labels, holdout, fit_rows, test_ids, train, test)
    if len(train.features.blocks) > 2:  # more than the two default blocks: which ones, from which encoders
        key += blocks_identity(train.features)
    key += stop_key(labels.ids, stop) + "-gaps:" + content_digest(radius, far)[:16]
    folders = feature_folders(features_dir)
    return Prepared(Path(data_dir), folders[0] if len(folders) == 1 else tuple(folders), labels, test_ids, train, test,
                    holdout, stop, fit_rows, key, labelled, radius, far, test_gaps)
