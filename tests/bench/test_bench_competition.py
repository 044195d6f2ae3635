"""The simulated competition on the real label matrix (bench.competition) at a tiny size."""
import json

import numpy as np
import pytest
from conftest import shared_file

from geocontext.bench import competition
from geocontext.bench.competition_data import build, score_submission
from geocontext.competition import COLUMNS
from geocontext.data import grid
from geocontext.data.readers import read_labels, read_metadata, read_test_ids
from geocontext.data.submission import write_submission
from geocontext.pipeline.check import check
from geocontext.synthetic.families import osgb_references

LABELLED, TEST = 1500, 400


@pytest.fixture(scope="module")
def shared():
    return shared_file("kaggle-competition", "train.csv.zip").parent


@pytest.fixture(scope="module", params=["world", "clusters"])
def comp(request, shared, tmp_path_factory):
    return build(request.param, 0, LABELLED, TEST, shared=shared, cache=tmp_path_factory.mktemp("competition"))


def test_folders_are_a_valid_competition_with_hidden_test_labels(comp, shared):
    summary = check(comp.data, comp.features)
    assert summary["ok"]
    assert sum(s["features"]["nonfinite_image_rows"] for s in summary["splits"].values()) > 0  # missing photos
    train = read_labels(comp.data / "train.csv", columns=COLUMNS)
    test_ids = read_test_ids(comp.data)
    assert len(train) == LABELLED and len(test_ids) == TEST
    assert not set(train.ids) & set(test_ids)
    real = read_labels(shared / "train.csv.zip", columns=COLUMNS)
    pos = np.searchsorted(real.ids, train.ids, sorter=np.argsort(real.ids))
    assert (real.ids[np.argsort(real.ids)][pos] == train.ids).all()  # real ids with their real labels
    assert (real.y[np.argsort(real.ids)][pos] == train.y).all()
    assert not any("tag" in c for c in (comp.data / "test.csv").read_text().splitlines()[0].split(","))
    assert not (comp.data / "solution.csv").exists() and comp.solution.exists()  # hidden from a run
    ids = np.concatenate([train.ids, test_ids])
    known = grid.locate(read_metadata(comp.data, ids).grid_reference).known
    assert known.mean() > 0.9 and not known.all()  # some references are blank, as in the real metadata


def test_a_perfect_submission_scores_one_and_a_wrong_row_costs_one_row(comp, tmp_path):
    solution = read_labels(comp.solution, columns=COLUMNS)
    perfect = write_submission(tmp_path / "perfect.csv.zip", solution.ids, solution.y, COLUMNS, solution.ids)
    assert score_submission(comp, perfect) == 1.0
    wrong = solution.y.copy()
    wrong[7] = 1 - wrong[7]
    order = np.arange(TEST)[::-1]  # joined by id, not by row order
    shuffled = write_submission(tmp_path / "wrong.csv.zip", solution.ids[order], wrong[order], COLUMNS, solution.ids)
    assert score_submission(comp, shuffled) == pytest.approx(1 - 1 / TEST)


def test_grid_references_come_from_latitude_and_longitude():
    refs = osgb_references(np.array([[51.5007, -0.1246], [48.8584, 2.2945], [np.nan, np.nan]]))
    assert refs[0] == "TQ3079" and refs[1] == refs[2] == ""  # Westminster; Paris is off the grid
    back = grid.locate(refs[:1]).latlon[0]
    assert abs(back[0] - 51.5007) < 0.01 and abs(back[1] + 0.1246) < 0.015


def test_the_bench_scores_published_and_configured_runs(shared, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"variants": [{"name": "linear", "train": {"head": "linear", "epochs": 3, "lr": 0.05}}],
                                  "decode": {"decoders": ["0.5", "global"], "global_trials": 4}}))
    out = tmp_path / "bench.json"
    assert competition.main(["--labelled", str(LABELLED), "--test", str(TEST), "--seeds", "1", "--generators", "world",
                             "--epochs", "2", "--no-default-run", "--config", f"tiny={config}", "--shared", str(shared),
                             "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    world = json.loads(out.read_text())["results"]["world"]
    rows = world["seeds"][0]["rows"]
    assert set(rows) == {"published linear", "published mlp", "best published", "run tiny"}
    best = max(("linear", "mlp"), key=lambda h: rows[f"published {h}"]["holdout"])
    assert rows["best published"]["test"] == rows[f"published {best}"]["test"]
    assert 0 < rows["run tiny"]["test"] <= 1 and rows["run tiny"]["final"]
    assert world["summary"]["run tiny"]["gain"] == pytest.approx(rows["run tiny"]["test"] - rows["best published"]["test"])


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert competition.main(["--generators", "world,moon"]) == 2
    assert "unknown 'moon'" in capsys.readouterr().err
    assert competition.main(["--config", "default=x.json"]) == 2
    (tmp_path / "bad.json").write_text('{"nonsense": 1}')
    assert competition.main(["--config", f"x={tmp_path / 'bad.json'}"]) == 2
    assert "unknown field 'nonsense'" in capsys.readouterr().err
