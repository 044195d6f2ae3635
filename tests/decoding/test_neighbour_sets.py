"""The neighbour-set decoder (decoding.neighbour_sets): the upload neighbours' tag sets as candidates,
never the photo's own."""
import numpy as np

from geocontext.decoding.decoders import LabelSetDecoder
from geocontext.decoding.methods import decoder_from_dict
from geocontext.decoding.neighbour_sets import NeighbourSetDecoder
from geocontext.training.neighbours import IdNeighbours

T = 8


def labelled(n, runs: bool, seed=0):
    """ids 0..n-1 with tag sets from a vocabulary of 30: in runs of 5 consecutive ids (upload order), or
    each photo its own draw (ids say nothing)."""
    rng = np.random.default_rng(seed)
    vocab = (rng.uniform(size=(30, T)) < 0.25).astype(np.uint8)
    vocab[:, 0] |= ~vocab.any(axis=1)
    which = np.repeat(rng.integers(0, 30, n // 5), 5) if runs else rng.integers(0, 30, n)
    y = vocab[which]
    probs = np.clip(0.25 + 0.3 * (y - 0.25) + rng.normal(0, 0.25, y.shape), 0.01, 0.99)  # weakly informative
    return np.arange(n, dtype=np.int64), y, probs


def fitted(ids, y, probs, half):
    base = LabelSetDecoder.from_labels(y[half], 100).with_settings(0.0, None, 0.5)
    return base, NeighbourSetDecoder.fit(base, probs[half], y[half], ids[half], IdNeighbours.fit(ids, y), k=4)


def exact(a, b):
    return float((a == b).all(axis=1).mean())


def test_neighbour_sets_find_upload_runs_and_never_read_the_photo_itself():
    """With runs, the neighbours' sets are right far more often than the weak probabilities; with ids
    that say nothing, a decoder that read the photo's own row (every labelled photo is in the index)
    would still be nearly always right, so the plain decoder must come back instead."""
    ids, y, probs = labelled(6000, runs=True)
    half = ids % 2 == 0
    base, decoder = fitted(ids, y, probs, half)
    assert isinstance(decoder, NeighbourSetDecoder)
    other = ~half
    assert exact(decoder.decode(probs[other], ids[other]), y[other]) > exact(base.decode(probs[other]), y[other]) + 0.3

    ids, y, probs = labelled(6000, runs=False)
    base, decoder = fitted(ids, y, probs, half)
    plain = exact(base.decode(probs[other]), y[other])
    assert exact(decoder.decode(probs[other], ids[other]), y[other]) < plain + 0.02


def test_saved_and_rebuilt_with_the_runs_neighbours():
    ids, y, probs = labelled(3000, runs=True)
    half = ids % 2 == 0
    _, decoder = fitted(ids, y, probs, half)
    back = decoder_from_dict(decoder.to_dict(), T, IdNeighbours.fit(ids, y))
    assert np.array_equal(back.decode(probs, ids), decoder.decode(probs, ids))


def test_the_grid_search_scores_each_setting_as_decoding_would():
    """`fit` scores each setting from which candidate is right, not from decoded sets: on every setting of
    the grid that must equal the exact match of the sets `decode` gives, ties and no-neighbour rows included."""
    import itertools

    from geocontext.decoding import neighbour_sets as ns

    ids, y, probs = labelled(3000, runs=True, seed=3)
    ids = ids * np.random.default_rng(3).integers(1, 40, len(ids)).cumsum()  # uneven gaps
    half = ids % 2 == 0
    base = LabelSetDecoder.from_labels(y[half], 100).with_settings(0.0, None, 0.5)
    probe = NeighbourSetDecoder(base, 0.0, 0.0, 0.0, 0, 8, IdNeighbours.fit(ids[half], y[half]))
    scored = probe._scored(probs[~half], ids[~half])
    fast = scored.exact_match(y[~half])
    grid = list(itertools.product(ns.BONUS, ns.PER_LOG_GAP, ns.PER_AGREEING, ns.MAX_GAP))
    got = np.array([fast(*s) for s in grid])
    want = np.array([exact(scored.decode(*s), y[~half]) for s in grid])
    assert np.array_equal(got, want) and len(np.unique(want)) > 10
