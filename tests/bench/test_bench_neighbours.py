"""bench.neighbours' decoder table reads the kit's own neighbour-set decoder (no copy of it): near photos
gain from their upload neighbours, photos with none near score as the plain label-set decoder."""
import numpy as np

from geocontext.bench.neighbours import World, decoders, neighbour_indexes

T = 8


def world(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    vocab = (rng.uniform(size=(30, T)) < 0.25).astype(np.uint8)
    vocab[:, 0] |= ~vocab.any(axis=1)
    y = vocab[np.repeat(rng.integers(0, 30, n // 5), 5)]  # runs of 5 ids tagged alike
    probs = np.clip(0.25 + 0.3 * (y - 0.25) + rng.normal(0, 0.25, y.shape), 0.01, 0.99).astype(np.float32)
    ids = np.arange(n, dtype=np.int64)
    labelled = ids % 5 != 0
    hold = labelled & (ids % 5 == 1)
    learn = labelled & ~hold
    w = World("runs", ids, y, np.zeros((n, 0), np.float32), labelled, learn, np.zeros(n, bool), hold)
    return w, probs


def test_decoder_table_uses_the_neighbours_and_nothing_beyond_the_radius():
    w, probs = world()
    far = 1 << 20
    p_test = probs[w.test]
    scores = decoders(w, probs[w.select], {"test": p_test, f"far{far}": p_test}, neighbour_indexes(w, [far]))
    assert scores["settings"]["neighbour_sets"] is not None
    assert scores["test"]["label-set+nb"] > scores["test"]["label-set"] + 0.3
    assert scores[f"far{far}"]["label-set+nb"] == scores[f"far{far}"]["label-set"]
