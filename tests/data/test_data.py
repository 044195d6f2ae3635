import zipfile

import numpy as np
import pandas as pd
import pytest
from conftest import shared_file

from geocontext.competition import COLUMNS, image_path
from geocontext.data import readers as data
from geocontext.errors import DataError


def write_labels(path, rows, columns=("tag1", "tag2", "tag3")):
    pd.DataFrame(rows, columns=["gridimage_id", *columns]).to_csv(path, index=False)
    return path


def test_reads_labels_in_file_order(tmp_path):
    path = write_labels(tmp_path / "train.csv", [[5, 1, 0, 0], [3, 0, 1, 1]])
    labels = data.read_labels(path)
    assert labels.columns == ("tag1", "tag2", "tag3")
    assert labels.ids.tolist() == [5, 3] and labels.ids.dtype == np.int64
    assert labels.y.tolist() == [[1, 0, 0], [0, 1, 1]] and labels.y.dtype == np.uint8


def test_reads_zip_ignoring_macos_entries(tmp_path):
    csv = write_labels(tmp_path / "train.csv", [[5, 1, 0, 0]])
    with zipfile.ZipFile(tmp_path / "train.csv.zip", "w") as z:
        z.write(csv, "train.csv")
        z.writestr("__MACOSX/._train.csv", b"\x00\x05junk")
    csv.unlink()
    assert data.read_train_labels(tmp_path).ids.tolist() == [5]


@pytest.mark.parametrize("content, message", [
    ("id,tag1\n1,0\n", "missing column 'gridimage_id'"),
    ("gridimage_id,tag1\n1,0\n1,1\n", "gridimage_id 1 appears 2 times (lines 2, 3)"),
    ("gridimage_id,tag1,tag2\n1,0,1\n2,,1\n", "line 3: gridimage_id 2 has no value for tag1 (NaN label)"),
    ("gridimage_id,tag1\n1,0\n2,2\n", "line 3: gridimage_id 2 has tag1=2"),
    ("gridimage_id,tag1\n1,0\nx7,1\n", "line 3: gridimage_id 'x7' is not an id"),
    ("gridimage_id,title\n1,a\n", "no tag columns"),
])
def test_bad_labels_name_the_line_and_id(tmp_path, content, message):
    (tmp_path / "train.csv").write_text(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        data.read_labels(tmp_path / "train.csv")
    assert "train.csv" in str(err.value)


def test_unreadable_zip_is_named(tmp_path):
    (tmp_path / "train.csv.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"train.csv.zip: not a readable zip"):
        data.read_train_labels(tmp_path)


def test_missing_train_file_says_what_is_expected(tmp_path):
    with pytest.raises(DataError, match="none of train.csv, train.csv.zip found"):
        data.read_train_labels(tmp_path)


def test_train_extra_is_appended_in_train_column_order(tmp_path):
    write_labels(tmp_path / "train.csv", [[1, 1, 0, 0]])
    extra = pd.DataFrame({"gridimage_id": [2], "tag3": [1], "tag1": [0], "tag2": [1], "tags": ["River, Road"]})
    extra.to_csv(tmp_path / "train-extra.csv", index=False)
    labels = data.read_train_labels(tmp_path)
    assert labels.ids.tolist() == [1, 2]
    assert labels.y.tolist() == [[1, 0, 0], [0, 1, 1]]


def test_train_extra_must_not_repeat_ids(tmp_path):
    write_labels(tmp_path / "train.csv", [[1, 1, 0, 0]])
    write_labels(tmp_path / "train-extra.csv", [[1, 0, 1, 0]])
    with pytest.raises(DataError, match="gridimage_id 1 is also in train.csv"):
        data.read_train_labels(tmp_path)


def test_metadata_skips_and_counts_malformed_lines(tmp_path):
    (tmp_path / "metadata.csv").write_text(
        "gridimage_id,title,grid_reference,imagetaken\n"
        "1,River Tamar,SX4356,2001\n"
        "2,an, unquoted, comma,SX1,2002\n"
        "three,Bad id,SX1234,2003\n"
        '4,"Quoted, fine",NT2673,2004\n')
    (tmp_path / "metadata-extra.csv").write_bytes("gridimage_id,title,grid_reference\n5,Caf\xe9 view,O1534\n".encode("latin-1"))
    meta = data.read_metadata(tmp_path, np.array([4, 1, 5, 9]))
    assert meta.title.tolist() == ["Quoted, fine", "River Tamar", "Café view", ""]
    assert meta.grid_reference.tolist() == ["NT2673", "SX4356", "O1534", ""]
    assert meta.malformed_lines == ("metadata.csv:3 (id 2)",)
    assert meta.bad_ids == 1 and meta.not_found == 1


def test_metadata_extra_is_cp1252_and_undecodable_bytes_are_counted_by_line(tmp_path):
    """Issue 25: metadata-extra.csv's en dashes and curly quotes (cp1252 0x80-0x9f) were read as latin-1
    control characters; a cp1252 byte in the UTF-8 metadata.csv became U+FFFD without a word."""
    (tmp_path / "metadata.csv").write_bytes(b"gridimage_id,title,grid_reference\n1,River Tamar,SX4356\n"
                                            b"2,Caf\xe9 by the quay,SX1234\n3,Ok \xc3\xa9t\xc3\xa9,SX1\n")
    (tmp_path / "metadata-extra.csv").write_bytes(b"gridimage_id,title,grid_reference\n"
                                                  b"5,\x93Old\x94 bridge \x96 east,O1534\n6,Odd \x81 byte,O1\n")
    meta = data.read_metadata(tmp_path, np.array([1, 2, 3, 5, 6]))
    assert meta.title.tolist() == ["River Tamar", "Caf\ufffd by the quay", "Ok été", "\u201cOld\u201d bridge \u2013 east",
                                   "Odd \ufffd byte"]
    assert meta.undecodable_lines == ("metadata.csv:3 (id 2)", "metadata-extra.csv:3 (id 6)")
    assert any(w.startswith("2 metadata line(s) hold bytes that are not text in their file's encoding") and
               "metadata.csv:3 (id 2), metadata-extra.csv:3 (id 6)" in w for w in meta.warnings), meta.warnings
    streamed = [part for part in data.iter_metadata(tmp_path, chunk_bytes=40)]  # the streamed reader says the same
    assert [line for part in streamed for line in part[3]] == list(meta.undecodable_lines)


def test_metadata_absent_means_everything_unknown(tmp_path):
    meta = data.read_metadata(tmp_path, np.array([1, 2]))
    assert meta.not_found == 2 and meta.title.tolist() == ["", ""]


def test_test_ids_and_image_paths(tmp_path):
    (tmp_path / "test.csv").write_text("gridimage_id\n14090\n36357\n")
    assert data.read_test_ids(tmp_path).tolist() == [14090, 36357]
    assert image_path(tmp_path, "test", 1234567) == tmp_path / "test_images" / "00123" / "1234567.jpg"


def test_tag_names_fall_back_to_the_kits_table(tmp_path):
    assert data.read_tag_names(tmp_path)["tag787"] == "Coastal"
    (tmp_path / "tags-top.csv").write_text("\ntag_id,prefix,tag,col,grouping,description\n787,top,Seaside,tag787,Topography,x\n")
    assert data.read_tag_names(tmp_path)["tag787"] == "Seaside"


def test_real_competition_labels():
    path = shared_file("kaggle-competition", "train.csv.zip")
    labels = data.read_labels(path)
    assert labels.y.shape == (609_822, 49)
    assert labels.columns == COLUMNS  # the kit's own column table matches the real file
    assert labels.respelt == ()  # Kaggle writes every id canonically (data.ids)
    counts = np.bincount(labels.y.sum(axis=1))
    assert counts[0] == 0 and counts[1] == 264_660  # every photo has a tag; 43.4% have one
    test_ids = data.read_test_ids(shared_file("kaggle-competition"))
    assert len(test_ids) == 135_489 and not np.isin(test_ids, labels.ids).any()
    names = data.read_tag_names(shared_file("kaggle-competition"))
    assert names["tag48483"] == "Rocks, Scree, Cliffs"
