import numpy as np
import torch

from geocontext.training.location import LocationPriors


def clustered(n=6000, seed=0):
    """Tag 0 lives north of 56 N; tag 1 anywhere; a few unknown locations."""
    rng = np.random.default_rng(seed)
    latlon = np.c_[rng.uniform(50, 58, n), rng.uniform(-6, 1, n)]
    y = (rng.uniform(size=(n, 2)) < 0.2).astype(np.uint8)
    y[:, 0] = (latlon[:, 0] > 56) & (rng.uniform(size=n) < 0.9)
    latlon[:20] = np.nan
    return latlon, y


def test_priors_say_where_a_tag_lives_and_unknown_gets_the_global_share():
    latlon, y = clustered()
    priors = LocationPriors.fit(latlon[:5000], y[:5000])
    f = priors.features(latlon[5000:])
    coarse = f[:, 2 * 3]  # 100 km scale, tag 0 (each scale: 2 tag logits, then log photo count)
    north = latlon[5000:, 0] > 56.5
    assert coarse[north].mean() > 0.5 > -1.0 > coarse[latlon[5000:, 0] < 55.5].mean()
    unknown = priors.features(np.full((1, 2), np.nan))
    rate = y[:5000, 0].mean()
    assert np.allclose(unknown[0, [0, 3, 6]], np.log(rate / (1 - rate)), atol=1e-4)
    assert np.all(unknown[0, [2, 5, 8]] == 0)


def test_out_of_fold_priors_never_count_the_row_itself():
    """A photo alone in its 1 km cell: with its own label counted, the prior would echo it."""
    latlon, y = clustered()
    latlon[100] = [49.2, -7.9]  # a cell nobody else is in
    fold = np.arange(len(y)) % 5
    priors = LocationPriors.fit(latlon, y)
    oof = priors.out_of_fold(latlon, y, fold)
    assert oof[100, 2] == 0  # no other photo in its 1 km cell
    assert priors.features(latlon[100:101])[0, 2] > 0  # while all rows count it
    same = LocationPriors.fit(latlon[fold != 0], y[fold != 0]).features(latlon[fold == 0])
    assert np.allclose(oof[fold == 0], same, atol=1e-5)


def test_priors_state_round_trips_through_torch_weights_only(tmp_path):
    latlon, y = clustered()
    priors = LocationPriors.fit(latlon, y)
    torch.save({"priors": priors.state()}, tmp_path / "p.pt")
    back = LocationPriors.from_state(torch.load(tmp_path / "p.pt", weights_only=True)["priors"])
    assert np.array_equal(back.features(latlon), priors.features(latlon))
