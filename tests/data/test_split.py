import numpy as np

from geocontext.data.split import folds, holdout_mask


def test_holdout_depends_only_on_id_and_seed():
    ids = np.arange(1, 200_001) * 7
    mask = holdout_mask(ids, 0.2, seed=0)
    assert abs(mask.mean() - 0.2) < 0.005
    perm = np.random.default_rng(1).permutation(len(ids))
    assert (holdout_mask(ids[perm], 0.2, 0) == mask[perm]).all()  # order-free
    assert (holdout_mask(ids[:1000], 0.2, 0) == mask[:1000]).all()  # stable as the data grows
    assert (holdout_mask(ids, 0.2, seed=1) != mask).mean() > 0.2  # the seed changes it


def test_folds_are_balanced():
    f = folds(np.arange(100_000), 2, seed=0)
    assert set(np.unique(f)) == {0, 1} and abs(f.mean() - 0.5) < 0.01
