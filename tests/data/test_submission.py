import zipfile

import numpy as np
import pytest

from geocontext.data.submission import (
    read_submission,
    to_frame,
    validate,
    write_submission,
)
from geocontext.errors import SubmissionError

COLS = ("tag1", "tag2", "tag3")
IDS = np.array([4, 2, 9])


def tags():
    return np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1]], dtype=np.uint8)


def test_writes_one_csv_in_a_zip(tmp_path):
    path = write_submission(tmp_path / "s.csv.zip", IDS, tags(), COLS, IDS)
    with zipfile.ZipFile(path) as z:
        assert z.namelist() == ["submission.csv"]
        assert z.read("submission.csv").decode().splitlines()[:2] == ["gridimage_id,tag1,tag2,tag3", "4,1,0,0"]
    back = read_submission(path)  # ids as written: Kaggle matches them as text
    assert back["gridimage_id"].tolist() == ["4", "2", "9"] and back[list(COLS)].to_numpy().tolist() == tags().tolist()


@pytest.mark.parametrize("ids, values, columns, message", [
    (np.array([4, 2]), tags()[:2], COLS, r"1 test id\(s\) missing \(e.g. \[9\]\)"),
    (np.array([4, 2, 9, 11]), np.vstack([tags(), [[1, 0, 0]]]), COLS, r"1 id\(s\) not in test.csv \(e.g. \[11\]\)"),
    (np.array([4, 2, 2]), tags(), COLS, "gridimage_id 2 appears 2 times"),
    (IDS, np.array([[1, 0, 0], [0, 2, 1], [0, 0, 1]]), COLS, "gridimage_id 2 has tag2=2"),
])
def test_refuses_what_kaggle_would_reject(tmp_path, ids, values, columns, message):
    with pytest.raises(SubmissionError, match=message):
        write_submission(tmp_path / "s.csv.zip", ids, values, columns, IDS)
    assert not (tmp_path / "s.csv.zip").exists()


def test_columns_are_judged_by_name():
    frame = to_frame(IDS, tags(), COLS)
    validate(frame[["gridimage_id", "tag2", "tag1", "tag3"]], IDS, COLS)  # Kaggle joins columns by name
    with pytest.raises(SubmissionError, match=r"missing \['tag3'\]"):
        validate(frame.drop(columns="tag3"), IDS, COLS)


def test_unreadable_submission(tmp_path):
    (tmp_path / "bad.csv.zip").write_bytes(b"garbage")
    with pytest.raises(SubmissionError, match="bad.csv.zip: cannot read the submission"):
        read_submission(tmp_path / "bad.csv.zip")
