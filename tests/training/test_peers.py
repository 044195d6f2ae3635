"""Neighbours' predictions (training.peers): the first stage by id block and the peers' columns, leak-free."""
from dataclasses import dataclass

import numpy as np
import pytest

from geocontext.embedding.blocks import open_features
from geocontext.embedding.features import FeatureSet, align, save_features
from geocontext.training.inputs import FeatureSpec
from geocontext.training.peers import PeerSpec, Peers, fit_peers

T, RUN = 6, 8
SPEC = FeatureSpec(("image", "title"), peers=True)


@dataclass
class Split:
    ids: np.ndarray
    features: FeatureSet
    rows: np.ndarray
    location: np.ndarray
    irish: np.ndarray | None = None


def runs(n=4000, seed=0):
    """Runs of RUN consecutive ids share a random tag set (the upload-order signal in miniature)."""
    rng = np.random.default_rng(seed)
    start = np.cumsum(rng.integers(RUN + 1, RUN + 6, n // RUN))
    ids = (start[:, None] + np.arange(RUN)).ravel().astype(np.int64)
    sets = (rng.uniform(size=(n // RUN, T)) < 0.3).astype(np.uint8)
    sets[:, 0] |= ~sets.any(axis=1)
    return ids, np.repeat(sets, RUN, axis=0)


def splits(folder, ids, image, test):
    """Labelled and test Splits over one FEATURES folder (image given, title noise)."""
    title = np.random.default_rng(5).normal(size=image.shape).astype(np.float32)
    out = []
    for name, rows in (("train", ~test), ("test", test)):
        save_features(folder, name, ids[rows], image[rows], title[rows], {"encoder": "peers test", "synthetic": True})
        features = open_features(folder, name)
        out.append(Split(ids[rows], features, align(features, ids[rows], name),
                         np.full((int(rows.sum()), 2), np.nan, np.float32)))
    return out


def world(folder, seed, noise, n=4000):
    """Upload runs whose image is the tag set plus `noise`, a fifth of the photos test photos: (ids, labels,
    test mask, labelled Split, test Split, the seeded generator)."""
    ids, y = runs(n, seed)
    rng = np.random.default_rng(seed + 100)
    image = (y + rng.normal(0, noise, y.shape)).astype(np.float32)
    test = rng.uniform(size=len(ids)) < 0.2
    return (ids, y, test, *splits(folder, ids, image, test), rng)


def test_a_learners_own_label_never_reaches_its_peer_columns(tmp_path):
    """A label-revealing signal: the image IS the tag set (plus a little noise), so every first-stage model
    learns it from whatever labels it is given. Relabel every learner of one id block with the opposite
    tag set: had any score a learner of that block reads been made by a model fitted on those labels (a
    peer in another block, scored by a model that saw the block), its columns would change. They must be
    bit-identical; the hold-out rows of every block and the photos read across blocks may change."""
    ids, y, test, labelled, tested, rng = world(tmp_path, 0, 0.1)
    y_lab = y[~test]
    learn = rng.uniform(size=len(labelled.ids)) < 0.8  # the rest: hold-out rows, never learnt from
    radius = np.zeros(len(labelled.ids), np.int64)
    spec = PeerSpec(blocks=4, dropout=0.0)

    def columns(labels):
        peers = fit_peers(SPEC, labelled, labels, learn, tested, spec)
        return peers, peers.labelled_columns(labelled.ids, learn, radius, seed=0)

    peers, before = columns(y_lab)
    block = peers.first.block_of(labelled.ids)
    planted = y_lab.copy()
    mine = learn & (block == 1)
    planted[mine] = 1 - planted[mine]
    _, after = columns(planted)
    assert np.array_equal(before[mine], after[mine])  # nothing made with their labels reaches them
    changed = np.abs(before - after).max(axis=1) > 1e-3
    assert changed[learn & (block != 1)].any()  # the planted labels do change what other blocks' rows read
    assert changed[~learn].any()  # and the hold-out rows, which read every photo (no model saw their labels)


def test_hold_out_labels_never_reach_any_column(tmp_path):
    """The first stage learns from the learners only: relabelling the hold-out rows changes nothing."""
    ids, y, test, labelled, tested, rng = world(tmp_path, 2, 0.5)
    learn = rng.uniform(size=len(labelled.ids)) < 0.8
    y_lab, radius = y[~test], np.zeros(int((~test).sum()), np.int64)
    other = y_lab.copy()
    other[~learn] = 1 - other[~learn]
    got = [fit_peers(SPEC, labelled, labels, learn, tested, PeerSpec(blocks=4)) for labels in (y_lab, other)]
    assert np.array_equal(got[0].scores, got[1].scores)
    assert np.array_equal(got[0].labelled_columns(labelled.ids, learn, radius, 0),
                          got[1].labelled_columns(labelled.ids, learn, radius, 0))


def test_peers_say_what_a_run_looks_like(tmp_path):
    """A noisy image alone guesses a photo's tags poorly; its upload run's peers, averaged, much better,
    and a photo with no peer near it reads the no-information value (its block's tag shares)."""
    ids, y, test, labelled, tested, _ = world(tmp_path, 4, 1.2, n=8000)
    peers = fit_peers(SPEC, labelled, y[~test], np.ones(len(labelled.ids), bool), tested, PeerSpec(blocks=4))
    own = peers.scores[np.searchsorted(peers.ids, tested.ids)].astype(np.float32)
    cols = peers.columns(tested.ids)
    k4 = cols[:, 2 * (T + 1):3 * (T + 1) - 1]  # the 4 nearest peers' mean scores
    corr = lambda s: np.mean([np.corrcoef(s[:, j], y[test][:, j])[0, 1] for j in range(T)])  # noqa: E731
    assert corr(k4) > corr(own) + 0.1
    alone = peers.columns(tested.ids[:5], np.full(5, 1 << 20))
    block = peers.first.block_of(tested.ids[:5])
    assert np.allclose(alone[:, :T], peers.first.prior[block], atol=1e-6)


def test_a_batch_reads_its_own_photos_and_the_state_round_trips(tmp_path):
    """New photos (predict, the archive) are each other's peers; the saved state rebuilds the same columns."""
    import torch

    ids, y, test, labelled, tested, _ = world(tmp_path, 6, 0.5)
    peers = fit_peers(SPEC, labelled, y[~test], np.ones(len(labelled.ids), bool), tested, PeerSpec(blocks=4))
    path = tmp_path / "peers.pt"
    torch.save(peers.state(), path)
    again = Peers.from_state(torch.load(path, weights_only=True))
    assert np.array_equal(again.columns(tested.ids), peers.columns(tested.ids))
    far = ids[-50:] + 10_000_000  # an archive batch far from every photo of the run: it reads itself
    batch = again.with_photos(far, peers.scores[:50])
    assert (batch.gaps(far) < 10).all() and (again.gaps(far) > 1_000_000).all()
    with pytest.raises(ValueError):
        PeerSpec(blocks=1)


CONTENT = FeatureSpec(("image", "title"), peers="content")


def test_content_peers_read_no_label(tmp_path):
    """Lever 2 (peers="content"): the first stage is the inputs' principal components. Labels dealt out at
    random change no score and no column of any row, learner or not."""
    ids, y, test, labelled, tested, rng = world(tmp_path, 8, 0.5)
    learn = rng.uniform(size=len(labelled.ids)) < 0.8
    radius = np.zeros(len(labelled.ids), np.int64)
    noise = (rng.uniform(size=(len(labelled.ids), T)) < 0.5).astype(np.uint8)
    got = [fit_peers(CONTENT, labelled, labels, learn, tested) for labels in (y[~test], noise)]
    assert np.array_equal(got[0].scores, got[1].scores)
    for g in got:
        assert g.first.edges.size == 0 and g.n_tags == 2 * (T + 1)  # one block; every input dimension kept
    assert np.array_equal(got[0].labelled_columns(labelled.ids, learn, radius, 0),
                          got[1].labelled_columns(labelled.ids, learn, radius, 0))


def test_content_peers_say_what_a_run_looks_like(tmp_path):
    """A photo's image is its run's tag set plus much noise: the mean components of its 4 nearest peers
    follow the run's noise-free components far better than the photo's own do; a photo with no peer near
    reads zeros (the training rows' mean)."""
    ids, y, test, labelled, tested, _ = world(tmp_path, 10, 1.2, n=8000)
    peers = fit_peers(CONTENT, labelled, y[~test], np.ones(len(labelled.ids), bool), tested, PeerSpec(components=T))
    clean = y[test] / np.linalg.norm(y[test], axis=1, keepdims=True)
    truth = clean @ peers.first.weights[0][:T]  # the image block's share of each component, noise-free
    own = peers.scores[np.searchsorted(peers.ids, tested.ids)].astype(np.float32)
    k4 = peers.columns(tested.ids)[:, 2 * (T + 1):3 * (T + 1) - 1]
    corr = lambda s: np.mean([np.corrcoef(s[:, j], truth[:, j])[0, 1] for j in range(T)])  # noqa: E731
    assert corr(k4) > corr(own) + 0.1
    alone = peers.columns(tested.ids[:5], np.full(5, 1 << 20))
    assert np.array_equal(alone[:, :T], np.zeros((5, T)))


def test_the_feature_spec_names_each_kind_of_peers():
    assert FeatureSpec(peers="content").name.endswith("-prc") and FeatureSpec(peers=True).name.endswith("-pr")
    assert FeatureSpec(peers="scores") == FeatureSpec(peers=True)
    with pytest.raises(ValueError, match="features.peers"):
        FeatureSpec(peers="labels")
