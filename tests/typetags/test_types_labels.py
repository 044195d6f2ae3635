"""Label rules, sample weights and distance dropout: the published rules, vectorised."""
import numpy as np
import pytest

from geocontext.typetags.dropout import DistanceDropout, id_uniform
from geocontext.typetags.labels import (
    CLASSES,
    WeightRules,
    label_matrix,
    sample_weights,
)

CASES = [  # raw types, stored distance, expected classes, expected weight (no row weight)
    ("Geograph", "128", {"Geograph"}, 1.0),
    ("Geograph", "512", {"Geograph"}, 0.2),
    ("Geograph", "Unknown", {"Geograph"}, 0.2),
    ("Geograph", "", {"Geograph"}, 1.0),  # "" is 0 m, not unknown
    ("Cross Grid", "1024", {"Cross Far"}, 1.0),
    ("Cross Grid", "256", {"Geograph"}, 0.5),  # 256 m is not over 256 m
    ("Cross Grid", "0", {"Geograph"}, 0.5),
    ("Cross Grid", "Unknown", {"Geograph"}, 1.0),
    ("Cross Grid,Inside", "64", {"Inside"}, 0.5),  # near and not alone: dropped
    (" Inside , Cross Grid ", "2048", {"Inside", "Cross Far"}, 1.0),
    ("From Above", "32", {"From Drone"}, 1.0),
    ("From Drone,From Above", "32", {"From Drone"}, 1.0),
    ("Geograph,Cross Grid", "8", {"Geograph"}, 0.5),
    ("Geograph,Cross Grid", "4096", {"Geograph", "Cross Far"}, 0.2),
    ("Close Look,Extra,Aerial", "300", {"Close Look", "Extra", "Aerial"}, 1.0),
    ("Selfie", "8", set(), 1.0),
    ("", "8", set(), 1.0),
]


def test_label_rules():
    types, distance, expected, _ = zip(*CASES)
    y, report = label_matrix(list(types), list(distance))
    got = [{CLASSES[j] for j in np.flatnonzero(row)} for row in y]
    assert got == list(expected)
    assert y.dtype == np.uint8 and y.shape == (len(CASES), 7)
    assert report.no_class == 2 and report.unknown_names == {"Selfie": 1}
    assert "'Selfie' (1)" in report.summary()


def test_weights():
    types, distance, _, expected = zip(*CASES)
    assert sample_weights(list(types), list(distance)).tolist() == pytest.approx(list(expected))


def test_row_weight_replaces_only_the_default():
    types = ["Geograph", "Geograph", "Cross Grid"]
    distance = ["64", "Unknown", "8"]
    given = [0.7, 0.7, 0.7]
    assert sample_weights(types, distance, given).tolist() == pytest.approx([0.7, 0.2, 0.5])
    assert sample_weights(types, distance, [np.nan] * 3).tolist() == pytest.approx([1.0, 0.2, 0.5])
    rules = WeightRules(use_row_weight=False, geograph_far_or_unknown=0.1)
    assert sample_weights(types, distance, given, rules).tolist() == pytest.approx([1.0, 0.1, 0.5])


def test_id_uniform_is_a_function_of_the_id_alone():
    ids = np.arange(20_000, dtype=np.int64) * 37 + 11
    u = id_uniform(ids)
    perm = np.random.default_rng(0).permutation(len(ids))
    assert np.array_equal(id_uniform(ids[perm]), u[perm])
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert not np.array_equal(id_uniform(ids, seed=1), u) and not np.array_equal(id_uniform(ids, stream=1), u)


def test_distance_dropout_is_deterministic_per_photo():
    rng = np.random.default_rng(1)
    ids = rng.choice(10_000_000, size=20_000, replace=False)
    dist = rng.integers(10, 22, size=len(ids))
    cross_far = rng.uniform(size=len(ids)) < 0.2
    dropout = DistanceDropout()
    out = dropout.apply(ids, dist, cross_far)
    perm = rng.permutation(len(ids))
    assert np.array_equal(dropout.apply(ids[perm], dist[perm], cross_far[perm]), out[perm])  # row order is irrelevant
    withheld = out == 22
    assert abs(withheld.mean() - 0.3) < 0.015
    assert np.all(out[cross_far & ~withheld] <= 9)  # every kept Cross Far distance is now short
    assert np.bincount(out[cross_far & ~withheld], minlength=10).min() > 150  # spread over 0..9
    assert np.array_equal(out[~cross_far & ~withheld], dist[~cross_far & ~withheld])
    other = DistanceDropout(seed=1).apply(ids, dist, cross_far)
    assert (other != out).any()
    none = DistanceDropout(unknown_share=0.0, cross_far_share=0.0).apply(ids, dist, cross_far)
    assert np.array_equal(none, dist)


def test_distance_dropout_checks_its_settings():
    with pytest.raises(ValueError, match="unknown_share"):
        DistanceDropout(unknown_share=1.5)
    with pytest.raises(ValueError, match="short_max_index"):
        DistanceDropout(short_max_index=22)
