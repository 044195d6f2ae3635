"""The id-neighbour block (training.neighbours) and the upload-order facts (data.upload_order)."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import shared_file
from geocontext.data.split import folds
from geocontext.data.upload_order import upload_order_facts
from geocontext.training import neighbours as nb
from geocontext.training.neighbours import GAP_CAP, IdNeighbours, NeighbourSpec, fit_neighbours, training_radius

T = 6


def runs(n=6000, seed=0, run=8):
    """Photos uploaded in runs of `run` consecutive ids that share one random tag set, the runs a few ids
    apart: the upload-order signal in miniature."""
    rng = np.random.default_rng(seed)
    start = np.cumsum(rng.integers(run + 1, run + 20, n // run))
    ids = (start[:, None] + np.arange(run)).ravel()
    sets = (rng.uniform(size=(n // run, T)) < 0.3).astype(np.uint8)
    sets[:, 0] |= ~sets.any(axis=1)  # every photo has a tag
    return ids.astype(np.int64), np.repeat(sets, run, axis=0)


def no_information(block: IdNeighbours) -> np.ndarray:
    """The columns of a photo with no labelled id anywhere near: global shares, zero counts, capped gaps."""
    g = np.clip(block.global_rate, 1e-4, 1 - 1e-4)
    logit = np.log(g / (1 - g))
    parts = [np.r_[logit, 0.0] for _ in block.spec.windows] + [np.r_[logit, np.log1p(GAP_CAP)] for _ in block.spec.nearest]
    return np.concatenate(parts).astype(np.float32)


SPECS = (NeighbourSpec(), NeighbourSpec(windows=(2, 32), nearest=(1, 4)))  # the default, and one with id windows


def first_columns(spec: NeighbourSpec) -> list[int]:
    """Where each group of T tag columns starts: each window's, then each nearest count's."""
    return [i * (T + 1) for i in range(len(spec.windows) + len(spec.nearest))]


@pytest.mark.parametrize("spec", SPECS)
def test_block_reads_the_neighbours_and_never_the_row_itself(spec):
    """Independent random labels at consecutive ids: nothing about a photo's tags is in its neighbours', so
    if the photo's own label were counted, its columns would echo it."""
    rng = np.random.default_rng(1)
    ids, y = np.arange(20_000, dtype=np.int64), (rng.uniform(size=(20_000, T)) < 0.3).astype(np.uint8)
    block = IdNeighbours.fit(ids, y, spec)
    for cols in (block.features(ids), block.out_of_fold(ids, y, folds(ids, 5, 0))):
        for j in range(T):
            for start in first_columns(spec):
                echo = np.corrcoef(cols[:, start + j], y[:, j])[0, 1]
                assert abs(echo) < 0.04, (j, start, echo)  # noise: ~0.007; the row counted: ~0.3


@pytest.mark.parametrize("spec", SPECS)
def test_out_of_fold_never_counts_the_rows_own_fold(spec):
    """Each fold's photos carry a tag no other fold has: out of fold, no photo may see that tag nearby."""
    spec = replace(spec, dropout=0.0)  # every row reads its neighbours (the dropout has its own test)
    ids = np.arange(5000, dtype=np.int64) * 3
    fold = folds(ids, 5, 7)
    y = np.zeros((len(ids), T), np.uint8)
    y[np.arange(len(ids)), fold] = 1
    block = IdNeighbours.fit(ids, y, spec)
    oof = block.out_of_fold(ids, y, fold)
    rows = np.arange(len(ids))
    for start in first_columns(spec):
        own, other = oof[rows, start + fold], oof[rows, start + (fold + 1) % 5]
        assert (own < np.log(0.2 / 0.8) - 0.5).all()  # below the global share: no photo of its fold counted
        assert other.mean() > own.mean() + 1.0
    for k in range(5):
        rest = IdNeighbours.fit(ids[fold != k], y[fold != k], spec)
        assert np.allclose(oof[fold == k], rest.features(ids[fold == k]), atol=1e-5)


def test_fit_neighbours_out_of_fold_for_fit_rows_and_from_fit_rows_for_the_others():
    ids, y = runs()
    fit = np.random.default_rng(2).uniform(size=len(ids)) < 0.8
    block, cols = fit_neighbours(ids, y, fit, seed=3)
    assert np.array_equal(block.ids, np.sort(ids[fit]))
    assert np.allclose(cols[~fit], block.features(ids[~fit]))
    assert np.allclose(cols[fit], block.out_of_fold(ids[fit], y[fit], folds(ids[fit], block.spec.folds, 3), 3))


def test_neighbours_say_the_tags_of_a_run_and_nothing_when_ids_are_shuffled():
    ids, y = runs()
    rng = np.random.default_rng(4)
    test = rng.uniform(size=len(ids)) < 0.2

    def agreement(ids_used):
        block = IdNeighbours.fit(ids_used[~test], y[~test], NeighbourSpec(windows=(), nearest=(1,)))
        guess = block.features(ids_used[test])[:, :T] > np.log(0.3 / 0.7)  # nearest neighbour's tags
        return (guess == y[test].astype(bool)).all(axis=1).mean()

    assert agreement(ids) > 0.9
    assert agreement(rng.permutation(ids)) < 0.1  # ids that say nothing: near the chance of a random set


def test_far_or_no_neighbours_give_the_no_information_columns():
    ids, y = runs(2000)
    block = IdNeighbours.fit(ids, y)
    blank = no_information(block)
    far_id = np.array([ids.max() + GAP_CAP + 5, ids.min() - GAP_CAP - 5])
    assert np.allclose(block.features(far_id), blank, atol=1e-6)
    excluded = block.features(ids[:3] + 1, radius=np.full(3, GAP_CAP))  # every labelled id within the radius
    assert np.allclose(excluded, blank, atol=1e-6)
    empty = IdNeighbours(np.zeros(0, np.int64), np.zeros(0, np.int64), T, block.global_rate)
    assert np.allclose(empty.features(ids[:4]), blank, atol=1e-6)
    near = block.features(ids[:1] + 1)  # a labelled id one away: not blank
    assert not np.allclose(near, blank, atol=1e-2)


def test_training_radius_is_seeded_by_id_and_drops_the_share_asked():
    ids = np.arange(100_000, dtype=np.int64)
    r = training_radius(ids, 0.2, GAP_CAP, seed=5)
    assert np.array_equal(r, training_radius(ids[::-1], 0.2, GAP_CAP, seed=5)[::-1])  # the id decides
    assert abs((r > 0).mean() - 0.2) < 0.01 and set(np.unique(r)) == {0, GAP_CAP}
    jitter = training_radius(ids, 0.5, 1000.0, seed=5)
    assert jitter.max() <= 1000 and 0.2 < (jitter[jitter > 0] < 32).mean() < 0.8  # log-uniform in [1, 1000]
    assert not np.array_equal(jitter, training_radius(ids, 0.5, 1000.0, seed=6))
    # rows given the radius get the no-information columns out of fold
    y = np.random.default_rng(0).integers(0, 2, (len(ids[:5000]), T)).astype(np.uint8)
    block = IdNeighbours.fit(ids[:5000], y, NeighbourSpec(windows=(2,), nearest=(1,), dropout=0.2))
    oof = block.out_of_fold(ids[:5000], y, folds(ids[:5000], 5, 0), seed=5)
    dropped = training_radius(ids[:5000], 0.2, GAP_CAP, 5) > 0
    assert np.allclose(oof[dropped][:, [T, 2 * T + 1]], [0.0, np.log1p(GAP_CAP)])  # no photo, no gap
    kept = oof[~dropped]  # others see the other folds' photos 1-2 ids away
    assert (kept[:, T] > 0).mean() > 0.95 and (kept[:, 2 * T + 1] <= np.log1p(2) + 1e-6).mean() > 0.9


def test_state_round_trips_through_torch_weights_only(tmp_path):
    ids, y = runs()
    block = IdNeighbours.fit(ids, y, NeighbourSpec(windows=(4, 64), nearest=(1, 3), strength=2.0, dropout=0.1))
    torch.save({"neighbours": block.state()}, tmp_path / "n.pt")
    back = IdNeighbours.from_state(torch.load(tmp_path / "n.pt", weights_only=True)["neighbours"])
    probe = np.r_[ids[::7] + 1, ids.max() + 40, 0]
    assert back.spec == block.spec and back.dim == block.dim == 2 * (T + 1) + 2 * (T + 1)
    assert np.array_equal(back.features(probe), block.features(probe))
    assert back.digest() == block.digest()
    assert IdNeighbours.fit(ids, 1 - y, block.spec).digest() != block.digest()


def test_features_in_chunks_equal_one_call(monkeypatch):
    """The archive is streamed in slices: the columns must not depend on how the ids are cut."""
    ids, y = runs()
    block = IdNeighbours.fit(ids[::2], y[::2])
    whole = block.features(ids)
    monkeypatch.setattr(nb, "_CHUNK", 97)
    assert np.array_equal(np.concatenate([block.features(ids[:1000]), block.features(ids[1000:])]), whole)


def test_candidates_are_the_nearest_sets():
    ids, y = runs()
    block = IdNeighbours.fit(ids[::2], y[::2])
    codes, gaps = block.candidates(ids[1::2], 2)
    assert (gaps >= 1).all() and (gaps[:, 0] <= gaps[:, 1]).all()
    assert (codes[:, 0] == nb.tag_codes(y[1::2])).mean() > 0.8
    assert np.array_equal(nb.tag_sets(nb.tag_codes(y), T), y)


def test_upload_order_facts_by_hand():
    ids = np.array([10, 11, 12, 20, 40])
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0]])
    facts = upload_order_facts(ids, y, np.array([13, 30, 100]))
    # nearest: 10->11 same, 11->10 same (a tie goes to the lower id), 12->11 differ, 20->12 same, 40->20 differ
    assert facts["nearest_same_set"] == pytest.approx(3 / 5)
    assert facts["random_pair_same_set"] == pytest.approx((3 * 2 + 2 * 1) / (5 * 4))
    assert facts["pairs_same_set_at_gap_1"] == pytest.approx(1 / 2)
    assert facts["labelled_gap"]["median"] == 1 and facts["test_gap"]["median"] == 10
    assert facts["test_gap"]["within_1"] == pytest.approx(1 / 3)


def test_upload_order_facts_on_the_real_files():
    """The issue's figures, from the competition's own files."""
    from geocontext.competition import COLUMNS
    from geocontext.data.readers import read_labels, read_test_ids

    labels = read_labels(shared_file("kaggle-competition", "train.csv.zip"), columns=COLUMNS)
    facts = upload_order_facts(labels.ids, labels.y, read_test_ids(shared_file("kaggle-competition")))
    assert round(facts["nearest_same_set"], 3) == 0.159 and round(facts["random_pair_same_set"], 4) == 0.0064
    assert round(facts["pairs_same_set_at_gap_1"], 3) == 0.194 and round(facts["pairs_same_set_within_gap_10"], 3) == 0.170
    assert facts["test_gap"]["median"] == 3
    assert round(facts["test_gap"]["within_1"], 2) == 0.29 and round(facts["test_gap"]["within_5"], 2) == 0.77
