import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from geocontext.decoding.metrics import exact_match, macro_f1, per_tag_f1, scores


def test_agrees_with_scikit_learn():
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=(500, 12)) < 0.2).astype(np.uint8)
    p = np.where(rng.uniform(size=y.shape) < 0.9, y, 1 - y)
    p[:, 5] = 0
    y[:, 5] = 0  # a tag neither present nor predicted scores 0, as scikit-learn's default
    assert exact_match(y, p) == accuracy_score(y, p)
    assert np.allclose(per_tag_f1(y, p), f1_score(y, p, average=None, zero_division=0))
    assert macro_f1(y, p) == f1_score(y, p, average="macro", zero_division=0)


def test_exact_match_needs_every_bit():
    y = np.array([[1, 0, 1], [0, 1, 0]])
    assert exact_match(y, [[1, 0, 1], [0, 1, 1]]) == 0.5
    report = scores(y, y, ["a", "b", "c"])
    assert report["exact_match"] == 1.0 and report["per_tag_f1"] == {"a": 1.0, "b": 1.0, "c": 1.0}
