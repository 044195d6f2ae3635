"""A feature spec's model inputs for a run, as tensors: location priors, id-neighbour block and
standardiser fitted on the rows a head learns from, then the training rows it asks for and the test rows,
standardised (with the spec's extra columns: priors, Fourier features, peers, neighbours). Hold-out rows
read their neighbours from their matched radius (prep.radius); the far view's rows read none.

Peers (training.peers): the first stage is fitted once per run on its training rows (prep.fit_rows) and
kept in prep.memo; the refit reuses it. Rows a head learns from read their own id block only (and half of
them a hashed exclusion radius); hold-out rows read every photo beyond a radius matched, as issue 30's, so
that their gaps to the nearest other photo follow the test photos' (`peer_radius`); test photos read all."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..training.inputs import (
    FeatureSpec,
    Standardizer,
    extra_columns,
    fuse_chunks,
    located,
    standardised_tensors,
)
from ..training.location import LocationPriors, fit_priors
from ..training.neighbours import GAP_CAP, IdNeighbours, fit_neighbours
from ..training.peers import Peers, fit_peers, own_spec
from .honest import MATCH_NEIGHBOURS, matched_radius
from .prepare import Prepared


@dataclass
class SpecInputs:
    priors: LocationPriors | None
    neighbours: IdNeighbours | None
    scaler: Standardizer
    train: dict[str, torch.Tensor]  # one per named selection asked for
    test: torch.Tensor  # float32: probabilities always come from float32 inputs, as `predict` computes them
    far: torch.Tensor | None  # float32: the far view's rows reading no labelled neighbour (specs with the block)
    peers: Peers | None = None


def run_peers(prep: Prepared, spec: FeatureSpec) -> Peers:
    """The run's first stage on `spec`'s own-content inputs and its pool (fitted once, on prep.fit_rows)."""
    key = ("peers", spec.peers, own_spec(spec))
    if key not in prep.memo:
        prep.memo[key] = fit_peers(spec, prep.train, prep.labels.y, prep.fit_rows, prep.test)
    return prep.memo[key]


def peer_radius(prep: Prepared, peers: Peers, seed: int) -> np.ndarray:
    """int64 over the hold-out rows: each ignores the photos within it, so that the hold-out's gaps to the
    nearest other photo of any split follow the test photos' (pipeline.honest.matched_radius)."""
    held = prep.labels.ids[prep.holdout]
    return matched_radius(held, peers.gaps(held, k=MATCH_NEIGHBOURS), peers.gaps(prep.test_ids), seed)


def spec_inputs(prep: Prepared, spec: FeatureSpec, learn: np.ndarray,
                selections: dict[str, tuple[np.ndarray, torch.dtype]], seed: int) -> SpecInputs:
    """Priors and id-neighbour block (out of fold on the `learn` rows, from all of them for the other
    labelled rows and the test photos) and the standardiser fitted on the training rows `learn` (bool over
    labels), then one tensor per named (row mask, dtype) of `selections` and the test tensor."""
    train, test = prep.train, prep.test
    priors = prior_train = prior_test = None
    if spec.priors:
        priors, prior_train = fit_priors(located(spec, train.location, train.irish), prep.labels.y, learn,
                                         prep.labels.ids, seed)
        prior_test = priors.columns(located(spec, test.location, test.irish))
    peers = peer_train = peer_test = None
    if spec.peers:
        peers = run_peers(prep, spec)
        radius = np.zeros(len(prep.labels.ids), np.int64)
        radius[prep.holdout] = peer_radius(prep, peers, seed)
        peer_train = peers.labelled_columns(prep.labels.ids, learn, radius, seed)
        peer_test = peers.columns(test.ids)
    neighbours = near_train = near_test = extra_far = None
    far = prep.far & ~learn
    if spec.neighbours:
        neighbours, near_train = fit_neighbours(prep.labels.ids, prep.labels.y, learn, seed, radius=prep.radius)
        near_test = neighbours.features(test.ids)
    extra_train = extra_columns(spec, train.location, train.irish, prior_train, near_train, peer_train)
    extra_test = extra_columns(spec, test.location, test.irish, prior_test, near_test, peer_test)
    if spec.neighbours and far.any():  # the block is last among the extra columns
        extra_far = extra_train[far].copy()
        extra_far[:, -neighbours.dim:] = neighbours.features(prep.labels.ids[far], np.full(int(far.sum()), GAP_CAP))
    del prior_train, prior_test, near_train, near_test, peer_train, peer_test

    def train_chunks():
        return fuse_chunks(spec, train.features, train.rows, train.location, train.irish, extra=extra_train)

    dim = spec.width(train.features, 0 if extra_train is None else extra_train.shape[1])
    scaler = Standardizer.fit_blocks(block[learn[s:s + len(block)]] for s, block in train_chunks())
    built = standardised_tensors(train_chunks(), scaler, list(selections.values()), dim)
    (x_test,) = standardised_tensors(
        fuse_chunks(spec, test.features, test.rows, test.location, test.irish, extra=extra_test), scaler,
        [(np.ones(len(test.ids), dtype=bool), torch.float32)], dim)
    x_far = None
    if extra_far is not None:
        rows = np.flatnonzero(far)
        (x_far,) = standardised_tensors(
            fuse_chunks(spec, train.features, train.rows[rows], train.location[rows], train.irish[rows], extra=extra_far),
            scaler, [(np.ones(len(rows), dtype=bool), torch.float32)], dim)
    return SpecInputs(priors, neighbours, scaler, dict(zip(selections, built)), x_test, x_far, peers)
