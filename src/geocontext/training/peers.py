"""Neighbours' predictions, labelled or not (issue 32): what the photos uploaded just before and after a
photo look like, whichever split they are in.

A test photo's nearest photo is often another test photo: its tags are unknown, but its image and title
are not. Two stages:

1. `FirstStage`: a ridge regression from a photo's own content (the variant's image, title and location
   inputs and Fourier features; no column made from labels) to its tag vector, one per *id block*. The
   ids are cut into `PeerSpec.blocks` contiguous ranges holding equal numbers of training rows (`edges`),
   and block b's model is fitted on the training rows of the other blocks only. Every photo of any split
   (training, hold-out, test, an archive batch) is scored by its own block's model: its *scores* (float16).
2. `Peers.columns`: for each k in `nearest`, the gap-weighted mean score vector of a photo's k nearest
   other photos of any split (weights 1 / (1 + gap / tau), shrunk toward the block model's training rows'
   tag shares with `strength` pseudo-photos), plus log(1 + gap) of the k-th: beside the id-neighbour
   block's labelled sets (training.neighbours) in a second-stage head.

Lever 2, "what the neighbours look like" (FeatureSpec.peers == "content"): the first stage is no model of
the tags but the principal components of the own-content inputs (`FirstStage.principal`, one block, no
label read at all), so the same pool and columns carry the neighbours' image and title, summarised in
`PeerSpec.components` columns, to the photos of Geograph's archive, whose labelled neighbours are far.

Leak-free by construction: a photo's scores never come from a model that saw a label of its own block. A
*learner* (a row a head is trained on) reads only the photos of its own block (`own_block`), so no score
it reads was made with its label; hold-out and test photos read any photo (no first-stage model saw their
labels). The refit's learners read their own block too, so the first stage is fitted once, on the run's
training rows, and never refitted. Half the learners are given a hashed exclusion radius (`dropout`,
log-uniform up to `radius_max`), so heads also learn photos whose peers are far.

`Peers` holds the pool of scored photos (every labelled and test photo of the run) and the first stage:
`state()` is tensors and numbers only. `predict` and the archive labeller score the photos they are given
and read the pool with those photos added (`with_photos`): a batch's photos are each other's peers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Protocol

import numpy as np
import torch

from ..embedding.features import FeatureSet
from ..hashing import content_digest
from .inputs import FeatureSpec, extra_columns, fuse
from .neighbours import nearest_gaps, nearest_sorted, training_radius

_CHUNK = 32_768  # rows fused or read at a time
_DROP_SEED = 0x2545F491  # added to the run's seed: the learners' peer radius is hashed apart from the label block's


@dataclass(frozen=True)
class PeerSpec:
    """How the first stage is fitted and what its peers' columns are (see the module)."""

    nearest: tuple[int, ...] = (1, 2, 4)
    blocks: int = 8  # contiguous id blocks: block b's model never saw a label of block b
    ridge: float = 1e-3  # penalty per training row on the standardised coefficients
    strength: float = 1.0  # pseudo-photos each mean is shrunk with
    tau: float = 16.0  # gap at which a peer weighs half
    dropout: float = 0.5  # share of learners given an exclusion radius
    radius_max: float = 4096.0  # their radius: log-uniform in [1, radius_max]
    components: int = 48  # principal components kept by the content first stage (lever 2)

    def __post_init__(self):
        object.__setattr__(self, "nearest", tuple(sorted(int(k) for k in self.nearest)))
        if not self.nearest or min(self.nearest) < 1 or self.blocks < 2:
            raise ValueError("peers: at least one nearest count >= 1 and at least 2 id blocks")
        if not (self.ridge > 0 and self.strength > 0 and self.tau > 0 and 0 <= self.dropout <= 1
                and self.radius_max >= 1 and self.components >= 1):
            raise ValueError("peers: ridge, strength and tau must be > 0, dropout in [0, 1], radius_max and"
                             " components >= 1")

    def to_state(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def own_spec(spec: FeatureSpec) -> FeatureSpec:
    """The first stage's input: the spec's own-content columns only (no priors, no neighbour blocks)."""
    return replace(spec, priors=False, neighbours=False, peers=False)


def own_inputs(spec: FeatureSpec, features: FeatureSet, rows: np.ndarray, location: np.ndarray,
               irish: np.ndarray | None):
    """Yield (start, float32 [own-content columns, 1]) for `features` rows `rows`, chunk by chunk."""
    own = own_spec(spec)
    for s in range(0, len(rows), _CHUNK):
        part = slice(s, s + _CHUNK)
        extra = extra_columns(own, location[part], None if irish is None else irish[part])
        x = fuse(own, features, rows[part], location[part], None if irish is None else irish[part], extra)
        yield s, np.concatenate([x, np.ones((len(x), 1), np.float32)], axis=1)


def block_edges(ids: np.ndarray, blocks: int) -> np.ndarray:
    """int64 (blocks - 1) ids cutting the sorted `ids` into `blocks` runs of about equal size."""
    ids = np.sort(np.asarray(ids, np.int64))
    if len(ids) < blocks:
        raise ValueError(f"peers: {len(ids)} training rows cannot fill {blocks} id blocks")
    return ids[(np.arange(1, blocks) * len(ids)) // blocks]


class FirstStage:
    """One ridge model per id block (see the module): `scores` of any photos from their own block's model."""

    def __init__(self, edges: np.ndarray, weights: np.ndarray, prior: np.ndarray):
        self.edges = np.asarray(edges, np.int64)
        self.weights = np.asarray(weights, np.float32)  # (blocks, inputs + 1, tags)
        self.prior = np.asarray(prior, np.float32)  # (blocks, tags): each model's training rows' tag shares

    def block_of(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, np.asarray(ids, np.int64), "right")

    @classmethod
    def fit(cls, chunks, ids: np.ndarray, y: np.ndarray, spec: PeerSpec) -> "FirstStage":
        """From `chunks` (start, [x, 1]) of the training rows `ids` with labels `y` (the rows in order)."""
        edges = block_edges(ids, spec.blocks)
        block = np.searchsorted(edges, np.asarray(ids, np.int64), "right")
        gram = cross = None
        for s, xa in chunks:
            b, t = block[s:s + len(xa)], torch.from_numpy(xa)
            yy = torch.from_numpy(np.asarray(y[s:s + len(xa)], np.float32))
            if gram is None:
                gram = np.zeros((spec.blocks, xa.shape[1], xa.shape[1]))
                cross = np.zeros((spec.blocks, xa.shape[1], yy.shape[1]))
            for k in np.unique(b):
                sel = torch.from_numpy(np.flatnonzero(b == k))
                part = t[sel]
                gram[k] += (part.T @ part).double().numpy()
                cross[k] += (part.T @ yy[sel]).double().numpy()
        total_g, total_c = gram.sum(axis=0), cross.sum(axis=0)
        weights, prior = [], []
        for k in range(spec.blocks):
            g, c = total_g - gram[k], total_c - cross[k]
            n = g[-1, -1]
            mean = g[-1, :-1] / n
            var = np.maximum(np.diag(g)[:-1] / n - mean**2, 0.0)
            penalty = np.r_[spec.ridge * n * (var + 1e-4), 0.0]  # the intercept is not penalised
            weights.append(np.linalg.solve(g + np.diag(penalty), c))
            prior.append(c[-1] / n)
        return cls(edges, np.stack(weights), np.stack(prior))

    @classmethod
    def principal(cls, chunks, components: int) -> "FirstStage":
        """Lever 2: the top `components` principal components of the inputs in `chunks` (start, [x, 1]),
        centred; one block (no edges), so every photo reads every other. No label is read."""
        gram = None
        for _, xa in chunks:
            t = torch.from_numpy(xa).double()
            gram = t.T @ t if gram is None else gram + t.T @ t
        g = gram.numpy()
        n, mean = g[-1, -1], g[-1, :-1] / g[-1, -1]
        _, vectors = np.linalg.eigh(g[:-1, :-1] / n - np.outer(mean, mean))  # ascending eigenvalues
        top = vectors[:, ::-1][:, :min(components, len(mean))]
        weights = np.concatenate([top, -(mean @ top)[None]], axis=0)  # the ones column centres the inputs
        return cls(np.empty(0, np.int64), weights[None], np.zeros((1, top.shape[1])))

    def scores(self, chunks, ids: np.ndarray) -> np.ndarray:
        """float16 (N, tags): photos `ids` (chunks (start, [x, 1]) of their inputs, in order), each from its
        block's model."""
        block = self.block_of(ids)
        out = np.empty((len(ids), self.weights.shape[2]), np.float16)
        w = torch.from_numpy(self.weights)
        for s, xa in chunks:
            b, t = block[s:s + len(xa)], torch.from_numpy(xa)
            for k in np.unique(b):
                sel = np.flatnonzero(b == k)
                out[s + sel] = (t[torch.from_numpy(sel)] @ w[k]).numpy().astype(np.float16)
        return out


class Peers:
    """The pool of scored photos (sorted by id) and the first stage that scored them (see the module)."""

    def __init__(self, first: FirstStage, ids: np.ndarray, scores: np.ndarray, spec: PeerSpec = PeerSpec()):
        order = np.argsort(ids, kind="stable")
        self.first, self.spec = first, spec
        self.ids, self.scores = np.asarray(ids, np.int64)[order], np.asarray(scores, np.float16)[order]
        if len(self.ids) > 1 and not (np.diff(self.ids) > 0).all():
            raise ValueError("peers: the pool's ids must be unique")

    @property
    def n_tags(self) -> int:
        return self.scores.shape[1]

    @property
    def dim(self) -> int:
        return len(self.spec.nearest) * (self.n_tags + 1)

    def with_photos(self, ids: np.ndarray, scores: np.ndarray) -> "Peers":
        """The pool with photos `ids` (scored `scores`) added; those already in it keep their pool scores."""
        ids = np.asarray(ids, np.int64)
        new = ~np.isin(ids, self.ids)
        if not new.any():
            return self
        return Peers(self.first, np.concatenate([self.ids, ids[new]]),
                     np.concatenate([self.scores, np.asarray(scores, np.float16)[new]]), self.spec)

    def gaps(self, ids: np.ndarray, radius: np.ndarray | None = None, k: int = 1) -> np.ndarray:
        """int64 gap from each photo to its nearest other photo of the pool beyond `radius`; (N, k) for k > 1."""
        return nearest_gaps(self.ids, ids, k, radius)

    def _encode(self, lo: int, hi: int, q: np.ndarray, r: np.ndarray, prior: np.ndarray) -> np.ndarray:
        s = self.spec
        idx, gap = nearest_sorted(self.ids[lo:hi], q, s.nearest[-1], r)
        w = np.where(idx >= 0, 1.0 / (1.0 + gap / s.tau), 0.0).astype(np.float32)
        if hi > lo:
            peer = self.scores[lo:hi][np.maximum(idx, 0)].astype(np.float32)
        else:  # nobody to read: every weight is 0
            peer = np.zeros((len(q), s.nearest[-1], self.n_tags), np.float32)
        sums, mass = np.cumsum(w[:, :, None] * peer, axis=1), np.cumsum(w, axis=1)
        parts = []
        for k in s.nearest:
            mean = (sums[:, k - 1] + s.strength * prior) / (mass[:, k - 1, None] + s.strength)
            parts.append(np.concatenate([mean, np.log1p(gap[:, k - 1:k]).astype(np.float32)], axis=1))
        return np.concatenate(parts, axis=1)

    def columns(self, ids: np.ndarray, radius: np.ndarray | None = None, own_block: bool = False) -> np.ndarray:
        """float32 (N, dim): each photo's peers' columns from the pool (its own id never counted), ignoring
        photos within its `radius`; with `own_block` (learners) only the photos of its own id block."""
        q = np.asarray(ids, np.int64)
        r = np.zeros(len(q), np.int64) if radius is None else np.asarray(radius, np.int64)
        block = self.first.block_of(q)
        out = np.empty((len(q), self.dim), np.float32)
        cuts = np.searchsorted(self.ids, self.first.edges, "left")
        bounds = np.r_[0, cuts, len(self.ids)]
        for b in np.unique(block):
            rows = np.flatnonzero(block == b)
            lo, hi = (bounds[b], bounds[b + 1]) if own_block else (0, len(self.ids))
            for s in range(0, len(rows), _CHUNK):
                part = rows[s:s + _CHUNK]
                out[part] = self._encode(lo, hi, q[part], r[part], self.first.prior[b])
        return out

    def labelled_columns(self, ids: np.ndarray, learn: np.ndarray, radius: np.ndarray, seed: int) -> np.ndarray:
        """Columns of labelled photos `ids`: the learners (`learn`, bool) read their own id block only, so
        no score they read was made with their label, `dropout` of them beyond a hashed radius
        (log-uniform in [1, radius_max]); the others read every photo beyond their `radius`."""
        ids, learn = np.asarray(ids, np.int64), np.asarray(learn, bool)
        out = np.empty((len(ids), self.dim), np.float32)
        far = training_radius(ids[learn], self.spec.dropout, self.spec.radius_max, seed + _DROP_SEED)
        out[learn] = self.columns(ids[learn], far, own_block=True)
        out[~learn] = self.columns(ids[~learn], np.asarray(radius, np.int64)[~learn])
        return out

    def digest(self) -> str:
        return content_digest(self.ids, self.scores, self.first.edges, self.first.weights,
                              np.array([*self.spec.nearest, self.spec.tau, self.spec.strength], np.float64))

    def state(self) -> dict:
        """Tensors and numbers only: saved beside a head, loaded with weights_only=True."""
        return {"ids": torch.from_numpy(self.ids.copy()), "scores": torch.from_numpy(self.scores.copy()),
                "edges": torch.from_numpy(self.first.edges.copy()), "weights": torch.from_numpy(self.first.weights.copy()),
                "prior": torch.from_numpy(self.first.prior.copy()), "spec": self.spec.to_state()}

    @classmethod
    def from_state(cls, d: dict) -> "Peers":
        spec = PeerSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["spec"].items()})
        first = FirstStage(d["edges"].numpy(), d["weights"].numpy(), d["prior"].numpy())
        return cls(first, d["ids"].numpy(), d["scores"].numpy(), spec)


class Split(Protocol):
    """One split's photos as the first stage reads them (pipeline.prepare.Inputs meets it)."""

    ids: np.ndarray
    features: FeatureSet
    rows: np.ndarray
    location: np.ndarray
    irish: np.ndarray | None


def fit_peers(spec: FeatureSpec, labelled: Split, y: np.ndarray, learn: np.ndarray, test: Split,
              settings: PeerSpec = PeerSpec()) -> Peers:
    """The first stage fitted on the `labelled` rows `learn` (bool) with labels `y` (`spec.peers` True) or
    the principal components of their inputs ("content", `y` unread), and the pool of every labelled and
    test photo scored by it."""
    rows = np.flatnonzero(learn)
    irish = None if labelled.irish is None else labelled.irish[rows]
    chunks = own_inputs(spec, labelled.features, labelled.rows[rows], labelled.location[rows], irish)
    if spec.peers == "content":
        first = FirstStage.principal(chunks, settings.components)
    else:
        first = FirstStage.fit(chunks, labelled.ids[rows], np.asarray(y)[rows], settings)
    scored = [first.scores(own_inputs(spec, s.features, s.rows, s.location, s.irish), s.ids) for s in (labelled, test)]
    return Peers(first, np.concatenate([labelled.ids, test.ids]), np.concatenate(scored), settings)


def new_photo_columns(peers: Peers, spec: FeatureSpec, features: FeatureSet, rows: np.ndarray,
                      location: np.ndarray, irish: np.ndarray | None, ids: np.ndarray) -> np.ndarray:
    """Peers' columns of photos `ids` (`predict`, the archive labeller): scored by the first stage, added to
    the pool (a batch's photos are each other's peers), read from all of it."""
    scores = peers.first.scores(own_inputs(spec, features, rows, location, irish), ids)
    return peers.with_photos(ids, scores).columns(ids)
