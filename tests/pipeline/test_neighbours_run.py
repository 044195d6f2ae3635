"""Issue 23 end to end: a competition whose photos come in upload runs (consecutive ids, one tag set per
run) and whose features say little. The id-neighbour block and the neighbour-set decoder must find the
runs, `predict` must rebuild both from the run folder alone, and with the ids dealt out at random the
run must not do worse than without them."""
from dataclasses import replace

import pandas as pd
import pytest

from geocontext.pipeline.evaluate import evaluate
from geocontext.pipeline.predict import predict
from geocontext.pipeline.run import run
from geocontext.pipeline.run_folder import RunFolder
from geocontext.training.config import TrainConfig, VariantConfig
from geocontext.training.inputs import FeatureSpec
from upload_runs import config, uploads

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


@pytest.mark.parametrize("peers", [True, "content"])
def test_predict_rebuilds_the_peers_from_the_run_folder(tmp_path, peers):
    """A run whose only variant reads its peers' columns (training.peers; their scores or their content):
    `predict` scores the test photos with the saved first stage, reads the saved pool with them and gives
    the submission's tags."""
    data, features, solution = uploads(tmp_path, shuffled=False)
    train = TrainConfig(head="linear", epochs=12, lr=3e-2)
    spec = FeatureSpec(("image", "title"), peers=peers)
    settings = replace(config(decoders=("0.5", "label_set")), variants=[VariantConfig("linear-pr", spec, train)])
    report = run(data, features, tmp_path / "run", settings)
    assert report["final"]["name"].startswith("linear-pr")
    out = RunFolder(tmp_path / "run")
    predict(out.path, data, features, tmp_path / "again.csv.zip")
    assert pd.read_csv(tmp_path / "again.csv.zip").equals(pd.read_csv(out.submission))
