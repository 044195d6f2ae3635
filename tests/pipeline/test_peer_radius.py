"""The hold-out reads its peers (training.peers) as far off as the test photos read theirs (pipeline.tensors)."""
from types import SimpleNamespace

import numpy as np

from geocontext.pipeline.tensors import peer_radius
from geocontext.training.peers import FirstStage, Peers


def pool(labelled_ids, test_ids):
    first = FirstStage(np.array([labelled_ids[len(labelled_ids) // 2]]), np.zeros((2, 3, 2)), np.zeros((2, 2)))
    ids = np.concatenate([labelled_ids, test_ids])
    return Peers(first, ids, np.zeros((len(ids), 2), np.float16))


def test_far_test_photos_give_the_hold_out_their_gaps():
    """Labelled photos at every id, test photos 40 ids apart far above them (an archive among itself): the
    hold-out's nearest other photo is 1 id off unless it ignores the photos within its matched radius."""
    labelled = np.arange(1, 50_001, dtype=np.int64)
    test = 10_000_000 + 40 * np.arange(3000, dtype=np.int64)
    held = np.random.default_rng(0).uniform(size=len(labelled)) < 0.2
    peers = pool(labelled, test)
    prep = SimpleNamespace(labels=SimpleNamespace(ids=labelled), holdout=held, test_ids=test)
    radius = peer_radius(prep, peers, seed=0)
    assert np.median(peers.gaps(labelled[held])) == 1
    assert np.median(peers.gaps(labelled[held], radius)) == 40 == np.median(peers.gaps(test))


def test_test_photos_among_the_labelled_leave_the_hold_out_as_it_is():
    rng = np.random.default_rng(1)
    ids = np.sort(rng.choice(np.arange(1, 400_000), 60_000, replace=False))
    test = rng.uniform(size=len(ids)) < 0.2
    held = rng.uniform(size=int((~test).sum())) < 0.2
    peers = pool(ids[~test], ids[test])
    prep = SimpleNamespace(labels=SimpleNamespace(ids=ids[~test]), holdout=held, test_ids=ids[test])
    assert (peer_radius(prep, peers, seed=0) == 0).mean() > 0.9


def test_the_hold_out_takes_the_test_photos_gap_bands_where_photos_come_in_sparse_trips():
    """Trips of 20 photos a few dozen ids apart, test photos beside them: each hold-out row skips to the peer
    whose gap is closest to its quantile, so the hold-out lands in the test's gap bands (skipping past every
    peer within the quantile instead overshoots into the far band)."""
    rng = np.random.default_rng(1)
    starts = np.sort(rng.choice(np.arange(5_000_000, dtype=np.int64), 3000, replace=False))
    labelled = np.unique((starts[:, None] + np.cumsum(rng.integers(1, 60, (3000, 20)), 1)).ravel())
    test = np.setdiff1d(np.unique(starts[rng.integers(0, 3000, 4000)] + rng.integers(0, 1200, 4000)), labelled)
    held = rng.uniform(size=len(labelled)) < 0.2
    peers = pool(labelled, test)
    prep = SimpleNamespace(labels=SimpleNamespace(ids=labelled), holdout=held, test_ids=test)
    radius = peer_radius(prep, peers, seed=0)
    bands = lambda g: np.array([(g <= 5).mean(), ((g > 5) & (g <= 100)).mean(), (g > 100).mean()])  # noqa: E731
    assert np.abs(bands(peers.gaps(labelled[held], radius)) - bands(peers.gaps(test))).max() < 0.008
