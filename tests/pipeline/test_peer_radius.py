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
