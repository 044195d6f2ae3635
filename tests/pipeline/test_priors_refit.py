"""Location priors as a run input, and the final heads refitted on every labelled row."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from geocontext.competition import COLUMNS, ID
from geocontext.data.readers import read_labels
from geocontext.decoding.select import DecodeConfig
from geocontext.embedding.features import load_features, save_features
from geocontext.pipeline.config import RunConfig
from geocontext.pipeline.evaluate import evaluate
from geocontext.pipeline.predict import predict
from geocontext.pipeline.run import run
from geocontext.synthetic.world import format_osgb
from geocontext.training.config import TrainConfig, VariantConfig
from geocontext.training.inputs import FeatureSpec
from geocontext.training.location import FOURIER_DIM
from geocontext.training.loop import fit
from geocontext.training.variant import Variant

N_TRAIN, N_TEST = 2400, 600


@pytest.fixture(scope="module")
def xor_competition(tmp_path_factory):
    """Tags set by place alone, in a pattern no straight line in (lat, lon) separates: tag 0 in the
    south-west and north-east 100 km blocks, tag 1 in the other two. Image and title are pure noise."""
    root = tmp_path_factory.mktemp("xor")
    rng = np.random.default_rng(5)
    n = N_TRAIN + N_TEST
    ids = rng.choice(np.arange(10_000, 900_000), size=n, replace=False)
    east = rng.uniform(300_000, 500_000, n)
    north = rng.uniform(200_000, 400_000, n)
    first = (east < 400_000) == (north < 300_000)
    y = np.zeros((n, len(COLUMNS)), dtype=np.uint8)
    y[first, 0], y[~first, 1] = 1, 1
    data = root / "data"
    data.mkdir()
    frame = pd.DataFrame(y, columns=list(COLUMNS))
    frame.insert(0, ID, ids)
    frame[:N_TRAIN].to_csv(data / "train.csv", index=False)
    frame[[ID]][N_TRAIN:].to_csv(data / "test.csv", index=False)
    frame[N_TRAIN:].to_csv(data / "solution.csv", index=False)
    refs = format_osgb(east.astype(np.int64), north.astype(np.int64))
    pd.DataFrame({ID: ids, "title": "", "grid_reference": refs}).to_csv(data / "metadata.csv", index=False)
    features = root / "features"
    for split, part in (("train", slice(0, N_TRAIN)), ("test", slice(N_TRAIN, n))):
        noise = rng.standard_normal((n, 8)).astype(np.float32)[part]
        save_features(features, split, ids[part], noise, noise[:, ::-1].copy(), {"encoder": "noise"})
    return data, features


def location_only(priors: bool, refit: bool = False, fourier: bool = False) -> RunConfig:
    spec = FeatureSpec(("location",), priors=priors, fourier=fourier)
    return RunConfig(variants=[VariantConfig("loc", spec, TrainConfig(head="linear", epochs=12, lr=5e-2))],
                     refit=refit, decode=DecodeConfig(decoders=("0.5",), singles=True, ensemble=False))


def test_priors_and_fourier_features_say_what_a_linear_head_on_lat_lon_cannot(xor_competition, tmp_path):
    data, features = xor_competition
    scores = {}
    for name, config in (("raw", location_only(False)), ("priors", location_only(True)),
                         ("fourier", location_only(False, fourier=True))):
        run(data, features, tmp_path / name, config)
        scores[name] = evaluate(tmp_path / name / "submission.csv.zip", data / "solution.csv")["exact_match"]
    assert scores["priors"] > 0.9 and scores["fourier"] > 0.9 and scores["raw"] < 0.75, scores


def test_fourier_features_alone_need_no_saved_state_and_predict_gives_the_run_tags(xor_competition, tmp_path):
    data, features = xor_competition
    out = tmp_path / "run"
    run(data, features, out, location_only(False, fourier=True))
    variant = Variant.load(out / "variants" / "loc")
    assert variant.priors is None and variant.in_dim == 3 + FOURIER_DIM
    predict(out, data, features, tmp_path / "again.csv")
    ran = pd.read_csv(out / "submission.csv.zip").sort_values(ID).reset_index(drop=True)
    again = pd.read_csv(tmp_path / "again.csv").sort_values(ID).reset_index(drop=True)
    pd.testing.assert_frame_equal(ran, again)


def test_a_run_with_priors_saves_them_and_predict_gives_its_tags(xor_competition, tmp_path):
    data, features = xor_competition
    out = tmp_path / "run"
    run(data, features, out, location_only(True, fourier=True))
    variant = Variant.load(out / "variants" / "loc")
    assert variant.priors is not None and variant.in_dim == 3 + variant.priors.dim + FOURIER_DIM
    state = torch.load(out / "variants" / "loc" / "model.pt", weights_only=True)
    assert "priors" in state
    predict(out, data, features, tmp_path / "again.csv")
    ran = pd.read_csv(out / "submission.csv.zip").sort_values(ID).reset_index(drop=True)
    again = pd.read_csv(tmp_path / "again.csv").sort_values(ID).reset_index(drop=True)
    pd.testing.assert_frame_equal(ran, again)
    test = load_features(features, "test")
    nowhere = np.full((len(test.ids), 2), np.nan, dtype=np.float32)
    unknown = variant.predict_proba(test, np.arange(len(test.ids)), nowhere)
    assert np.allclose(unknown, unknown[0], atol=1e-6)  # no place: every photo gets the same answer


def test_refit_trains_the_chosen_heads_on_every_labelled_row(xor_competition, tmp_path):
    data, features = xor_competition
    out = tmp_path / "refit"
    report = run(data, features, out, location_only(True, refit=True))
    info = json.loads((out / "variants" / "loc" / "variant.json").read_text())
    labelled = read_labels(data / "train.csv")
    assert info["refit"]["rows"] == len(labelled.ids) > report["rows"]["train_used"]
    assert info["refit"]["epochs"] == info["best_epoch"] + 1
    assert report["variants"]["loc"]["refit"] == info["refit"] and "refit" in report["timings_s"]
    # the saved head is the refitted one: predict gives the submission's tags
    predict(out, data, features, tmp_path / "again.csv")
    ran = pd.read_csv(out / "submission.csv.zip").sort_values(ID).reset_index(drop=True)
    again = pd.read_csv(tmp_path / "again.csv").sort_values(ID).reset_index(drop=True)
    pd.testing.assert_frame_equal(ran, again)
    test_probs = np.load(out / "variants" / "loc" / "test_probs.npy")
    stopped = tmp_path / "stopped"
    run(data, features, stopped, location_only(True, refit=False))
    assert not np.allclose(test_probs, np.load(stopped / "variants" / "loc" / "test_probs.npy"))
    assert np.array_equal(np.load(out / "variants" / "loc" / "holdout_probs.npy"),
                          np.load(stopped / "variants" / "loc" / "holdout_probs.npy"))  # scores stay honest


def test_fit_with_a_fixed_epoch_count_runs_exactly_that_many():
    x, y = torch.randn(300, 4), (torch.rand(300, 3) < 0.3).float()
    result = fit(x, y, None, None, TrainConfig(head="linear", epochs=10, patience=1), epochs=3)
    assert len(result.history) == 3 and result.best_epoch == 2
    with pytest.raises(ValueError, match="fixed number of epochs"):
        fit(x, y, None, None, TrainConfig(head="linear"))
