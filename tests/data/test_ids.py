"""Issue 31, item 1: ids written oddly (`0020016158`, `+22283040`) are read as the number they spell by every
DATA reader, counted and named as written; a submission is held to Kaggle's spelling, the same rule for all."""
import re

import numpy as np
import pandas as pd
import pytest

from geocontext.data import ids as id_rule
from geocontext.data import readers
from geocontext.data.submission import read_submission, to_frame, validate
from geocontext.errors import DataError, SubmissionError

COLS = ("tag1", "tag2")


@pytest.mark.parametrize("written, value", [("0020016158", 20016158), ("+22283040", 22283040), (" 7 ", 7),
                                            ("12.0", 12), ("00", 0)])
def test_other_spellings_of_a_whole_number_are_read_and_named(written, value):
    column = id_rule.parse(pd.Series(["5", written, "0", written]), "train.csv")
    assert column.ids.tolist() == [5, value, 0, value] and column.ok.all()
    r = column.respelt
    assert (r.count, r.line, r.written, r.read_as) == (2, 3, written, value)
    assert str(r).startswith(f"train.csv: 2 id(s) written non-canonically, first {written!r} at line 3; read as {value}")


@pytest.mark.parametrize("written", ["abc", "-5", "2.2e7", "12.5", "", "1234567890123456789", "1 2"])
def test_what_spells_no_whole_number_is_no_id(written):
    column = id_rule.parse(pd.Series(["5", written]), "test.csv")
    assert column.first_bad() == (3, written) and column.respelt is None


def test_canonical_ids_say_nothing():
    assert id_rule.parse(pd.Series(["1", "0", "22283040"]), "x").respelt is None


def test_readers_keep_the_text_of_train_test_and_metadata_ids(tmp_path):
    (tmp_path / "train.csv").write_text("gridimage_id,tag1\n20016159,0\n0020016158,1\n0000000003,1\n")
    (tmp_path / "test.csv").write_text("gridimage_id\n22283041\n+22283040\n")
    (tmp_path / "metadata.csv").write_text("gridimage_id,title,grid_reference\n20016159,A,SX1\n020016158,B,SX2\n"
                                           "22283040.0,C,SX3\n")
    labels = readers.read_train_labels(tmp_path)
    assert labels.ids.tolist() == [20016159, 20016158, 3]
    assert [(r.count, r.line, r.written) for r in labels.respelt] == [(2, 3, "0020016158")]
    respelt: list = []
    assert readers.read_test_ids(tmp_path, respelt).tolist() == [22283041, 22283040]
    assert [(r.line, r.written, r.read_as) for r in respelt] == [(3, "+22283040", 22283040)]
    meta = readers.read_metadata(tmp_path, np.array([20016158, 22283040]))
    assert meta.title.tolist() == ["B", "C"]
    assert any(w.startswith("metadata.csv: 2 id(s) written non-canonically, first '020016158' at line 3")
               for w in meta.warnings), meta.warnings
    streamed = [part[4] for part in readers.iter_metadata(tmp_path, chunk_bytes=16)]  # a chunk a line, lines the file's
    assert [(r.count, r.line, r.written) for r in streamed if r] == [(1, 3, "020016158"), (1, 4, "22283040.0")]


def test_a_label_file_id_that_is_no_number_stops_naming_line_and_text(tmp_path):
    (tmp_path / "train.csv").write_text("gridimage_id,tag1\n1,0\n-5,1\n")
    with pytest.raises(DataError, match=r"train\.csv, line 3: gridimage_id '-5' is not an id"):
        readers.read_train_labels(tmp_path)


@pytest.mark.parametrize("written", ["0000000004", "+4", "4.0", " 4"])
def test_a_submission_is_held_to_one_spelling_whatever_the_oddity(tmp_path, written):
    """`+4` was refused while `0000000004` passed, because pandas had already read it as 4."""
    path = tmp_path / "s.csv"
    path.write_text(f"gridimage_id,tag1,tag2\n2,1,0\n{written},0,1\n")
    frame = read_submission(path)
    with pytest.raises(SubmissionError, match=rf"s\.csv, line 3: gridimage_id '{re.escape(written)}' is not written as Kaggle"
                       r" writes ids .*1 id\(s\) written so\); Kaggle matches ids as text, so write it as 4$"):
        validate(frame, np.array([2, 4]), COLS, source=str(path))
    path.write_text("gridimage_id,tag1,tag2\n2,1,0\n4,0,1\n")
    validate(read_submission(path), np.array([2, 4]), COLS, source=str(path))  # the plain spelling passes


def test_in_memory_frames_are_canonical_unless_negative():
    validate(to_frame(np.array([2, 4]), np.eye(2), COLS), np.array([2, 4]), COLS)
    with pytest.raises(SubmissionError, match=r"line 2: gridimage_id -2 is not an id"):
        validate(to_frame(np.array([-2, 4]), np.eye(2), COLS), np.array([-2, 4]), COLS)
