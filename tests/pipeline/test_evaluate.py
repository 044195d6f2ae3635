import json

import numpy as np
import pandas as pd
import pytest

from geocontext.cli import main
from geocontext.data.submission import write_submission
from geocontext.errors import SubmissionError
from geocontext.pipeline.evaluate import evaluate

COLS = ("tag1", "tag2")


@pytest.fixture
def solution(tmp_path):
    frame = pd.DataFrame({"gridimage_id": [1, 2, 3, 4], "tag1": [1, 0, 1, 1], "tag2": [0, 1, 1, 0],
                          "Usage": ["Public", "Public", "Private", "Private"]})
    frame.to_csv(tmp_path / "solution.csv", index=False)
    return tmp_path / "solution.csv"


def test_scores_public_and_private(tmp_path, solution):
    ids = np.array([4, 3, 2, 1])  # any row order
    tags = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])  # right, wrong, right, wrong
    sub = write_submission(tmp_path / "s.csv.zip", ids, tags, COLS, ids)
    result = evaluate(sub, solution)
    assert result["exact_match"] == 0.5 and result["public"] == 0.5 and result["private"] == 0.5
    assert result["macro_f1"] == pytest.approx(np.mean([2 * 2 / (3 + 2), 2 * 1 / (2 + 2)]))


def test_mismatched_ids_are_an_error_not_a_score(tmp_path, solution):
    ids = np.array([1, 2, 3, 5])
    sub = write_submission(tmp_path / "s.csv.zip", ids, np.ones((4, 2), np.uint8), COLS, ids)
    with pytest.raises(SubmissionError, match=r"1 test id\(s\) missing \(e.g. \[4\]\)"):
        evaluate(sub, solution)


def test_cli_prints_json_last_and_fails_cleanly(tmp_path, solution, capsys):
    ids = np.array([1, 2, 3, 4])
    sub = write_submission(tmp_path / "s.csv.zip", ids, np.array([[1, 0], [0, 1], [1, 1], [1, 0]]), COLS, ids)
    assert main(["evaluate", "--submission", str(sub), "--solution", str(solution)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["exact_match"] == 1.0 and last["public"] == 1.0 and last["private"] == 1.0
    assert main(["evaluate", "--submission", str(tmp_path / "nope.csv.zip"), "--solution", str(solution)]) == 2
    assert "nope.csv.zip: file not found" in capsys.readouterr().err
