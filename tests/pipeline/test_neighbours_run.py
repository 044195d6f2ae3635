"""Issue 23 end to end: a competition whose photos come in upload runs (consecutive ids, one tag set per
run) and whose features say little. The id-neighbour block and the neighbour-set decoder must find the
runs, `predict` must rebuild both from the run folder alone, and with the ids dealt out at random the
run must not do worse than without them."""
import numpy as np
import pandas as pd
import pytest

from geocontext.competition import COLUMNS, ID
from geocontext.decoding.select import DecodeConfig
from geocontext.embedding.features import save_features
from geocontext.pipeline.config import RunConfig
from geocontext.pipeline.evaluate import evaluate
from geocontext.pipeline.predict import predict
from geocontext.pipeline.run import run
from geocontext.pipeline.run_folder import RunFolder
from geocontext.training.config import TrainConfig, VariantConfig
from geocontext.training.inputs import FeatureSpec

N, TEST, RUN = 4000, 1000, 6


def uploads(folder, shuffled: bool, seed: int = 0):
    """DATA + FEATURES + solution.csv: runs of RUN consecutive ids share one of 40 tag sets; the image
    embedding hints at each photo's set through heavy noise (about a third right alone)."""
    rng = np.random.default_rng(seed)
    vocab = np.zeros((40, len(COLUMNS)), np.uint8)
    for s in vocab:
        s[rng.choice(len(COLUMNS), rng.integers(1, 4), replace=False)] = 1
    runs = (N + TEST) // RUN
    start = np.cumsum(rng.integers(RUN + 1, RUN + 5, runs))
    ids = (start[:, None] + np.arange(RUN)).ravel()
    which = np.repeat(rng.integers(0, len(vocab), runs), RUN)
    y = vocab[which]
    image = (np.eye(len(vocab), 16, dtype=np.float32)[which % 16] * 1.0 + rng.normal(0, 1.0, (len(ids), 16))).astype(np.float32)
    if shuffled:
        ids = rng.permutation(ids)
    test = rng.uniform(size=len(ids)) < TEST / (N + TEST)
    data, features = folder / "data", folder / "features"
    data.mkdir(parents=True)
    frame = pd.DataFrame(y, columns=list(COLUMNS))
    frame.insert(0, ID, ids)
    frame[~test].to_csv(data / "train.csv", index=False)
    frame[test].to_csv(folder / "solution.csv", index=False)
    frame[[ID]][test].to_csv(data / "test.csv", index=False)
    pd.DataFrame({ID: ids, "title": "", "grid_reference": ""}).to_csv(data / "metadata.csv", index=False)
    title = rng.normal(0, 1, (len(ids), 16)).astype(np.float32)  # says nothing
    for split, rows in (("train", ~test), ("test", test)):
        save_features(features, split, ids[rows], image[rows], title[rows], {"encoder": "test uploads", "synthetic": True})
    return data, features, folder / "solution.csv"


def config(decoders=("0.5", "label_set", "neighbour_sets")) -> RunConfig:
    spec = FeatureSpec(("image", "title"))
    train = TrainConfig(head="linear", epochs=12, lr=3e-2)
    return RunConfig(variants=[VariantConfig("linear-nb", FeatureSpec(("image", "title"), neighbours=True), train),
                               VariantConfig("linear", spec, train)],
                     decode=DecodeConfig(decoders=decoders, global_trials=6, label_sets=60, ensemble=False))


@pytest.fixture(scope="module")
def real_order(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uploads")
    data, features, solution = uploads(folder, shuffled=False)
    report = run(data, features, folder / "run", config())
    return folder, data, features, solution, report


def test_the_block_and_the_decoder_find_the_uploads(real_order):
    folder, data, features, solution, report = real_order
    cands = report["candidates"]
    with_block = cands["linear-nb / label_set"]["exact_match"]
    without = cands["linear / label_set"]["exact_match"]
    assert with_block > without + 0.2  # neighbours carry the run's set; the noisy image a third of it
    assert cands["linear / neighbour_sets"]["exact_match"] > without + 0.2  # the decoder alone finds them too
    assert report["final"]["name"].startswith("linear-nb")
    hidden = evaluate(folder / "run" / "submission.csv.zip", solution)["exact_match"]
    assert hidden > 0.8 and abs(hidden - report["final"]["exact_match"]) < 0.1


def test_predict_rebuilds_block_and_decoder_from_the_run_folder(real_order, tmp_path):
    folder, data, features, _, report = real_order
    out = RunFolder(folder / "run")
    assert out.neighbours_npz.exists()
    predict(out.path, data, features, tmp_path / "again.csv.zip")
    assert pd.read_csv(tmp_path / "again.csv.zip").equals(pd.read_csv(out.submission))


def test_ids_that_say_nothing_cost_nothing(tmp_path):
    data, features, solution = uploads(tmp_path, shuffled=True)
    report = run(data, features, tmp_path / "run", config(decoders=("label_set", "neighbour_sets")))
    cands = report["candidates"]
    plain = cands["linear / label_set"]["exact_match"]
    assert cands["linear / neighbour_sets"]["exact_match"] >= plain - 0.01  # no bonus helps: the plain decoder
    assert cands["linear-nb / label_set"]["exact_match"] >= plain - 0.03
