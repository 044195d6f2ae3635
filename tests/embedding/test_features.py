import json

import numpy as np
import pytest

from geocontext.embedding.features import (
    align,
    load_features,
    looks_normalised,
    save_features,
)
from geocontext.errors import DataError
from geocontext.training.inputs import FeatureSpec, fuse, fuse_chunks


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(4, 3)).astype(np.float32)
    image[2] = np.nan  # a missing photo
    title = rng.normal(size=(4, 3)).astype(np.float32)
    save_features(tmp_path, "train", [10, 11, 12, 13], image, title, {"encoder": "test"})
    return tmp_path


def test_round_trip_and_meta(folder):
    fs = load_features(folder, "train")
    assert fs.ids.tolist() == [10, 11, 12, 13] and fs.meta["dim"] == 3 and fs.meta["encoder"] == "test"
    assert fs.meta["normalized"] is False and fs.missing_images.tolist() == [False, False, True, False]
    assert not list(folder.glob(".train.tmp*"))  # written atomically, no leftovers


@pytest.mark.parametrize("breakage, message", [
    (lambda p: (p / "title.npy").unlink(), "title.npy: missing"),
    (lambda p: np.save(p / "title.npy", np.zeros((3, 3), np.float32)), "expected a float array of 4 rows"),
    (lambda p: np.save(p / "ids.npy", np.array([1, 2, 2, 3])), "gridimage_id 2 appears more than once"),
    (lambda p: np.save(p / "ids.npy", np.array(["a", "b", "c", "d"])), "expected a 1-D integer array"),
    (lambda p: (p / "meta.json").write_text(json.dumps({"dim": 5})), "3 columns but meta.json says dim 5"),
    (lambda p: (p / "meta.json").write_text("{"), "meta.json: not valid JSON"),
])
def test_contract_errors_name_the_file(folder, breakage, message):
    breakage(folder / "train")
    with pytest.raises(DataError, match=message):
        load_features(folder, "train")


def test_align_reorders_and_reports_absent_ids(folder):
    fs = load_features(folder, "train")
    assert align(fs, np.array([13, 10]), "test.csv").tolist() == [3, 0]
    with pytest.raises(DataError, match=r"2 gridimage_id\(s\) listed in test.csv have no features, e.g. 99, 7"):
        align(fs, np.array([10, 99, 7]), "test.csv")


def test_fuse_layout_with_flags(folder):
    fs = load_features(folder, "train")
    loc = np.array([[0.5, 0.25], [np.nan, np.nan], [0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
    x = fuse(FeatureSpec(), fs, np.array([0, 1, 2, 3]), loc)
    assert x.shape == (4, 3 + 1 + 3 + 1 + 2 + 1)
    assert np.allclose(np.linalg.norm(x[[0, 1, 3], :3], axis=1), 1)  # image rows L2-normalised
    assert x[2, :3].tolist() == [0, 0, 0] and x[:, 3].tolist() == [0, 0, 1, 0]  # missing photo flagged
    assert np.allclose(np.linalg.norm(x[:, 4:7], axis=1), 1) and x[:, 7].tolist() == [0, 0, 0, 0]  # titles there
    assert x[0, 8:].tolist() == [0.5, 0.25, 0] and x[1, 8:].tolist() == [0, 0, 1]  # unknown square flagged


def test_fuse_published_convention_and_row_order(folder):
    fs = load_features(folder, "train")
    loc = np.array([[np.nan, np.nan], [0.1, 0.2]], dtype=np.float32)
    spec = FeatureSpec(("image", "title", "location"), l2_normalize=False, unknown="zero")
    x = fuse(spec, fs, np.array([3, 0]), loc)
    assert x.shape == (2, 8)
    assert np.allclose(x[0, :3], fs.image[3]) and np.allclose(x[1, 3:6], fs.title[0])  # raw, in row order
    assert x[0, 6:].tolist() == [0, 0]  # the published [0, 0] for an unknown square


@pytest.mark.parametrize("rows", [[1, 2, 3], [3, 1, 0, 2], [2, 2, 0], [0, 2, 3]])
def test_fuse_and_its_chunks_agree_for_any_row_order(folder, rows):
    """A contiguous run of rows is read as a slice, anything else by index: both give the same rows."""
    fs = load_features(folder, "train")
    rows = np.array(rows)
    loc = np.linspace(0, 1, 2 * len(rows)).reshape(-1, 2)
    x = fuse(FeatureSpec(), fs, rows, loc)
    direct = np.nan_to_num(fs.image[rows])
    assert np.allclose(x[:, :3] * np.linalg.norm(direct, axis=1, keepdims=True), direct, atol=1e-6)
    chunks = [block for _, block in fuse_chunks(FeatureSpec(), fs, rows, loc, chunk=2)]
    np.testing.assert_array_equal(np.concatenate(chunks), x)


def test_fuse_can_leave_irish_grid_squares_unknown(folder):
    fs = load_features(folder, "train")
    loc = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
    spec = FeatureSpec(("location",), l2_normalize=False, unknown="zero", irish_grid=False)
    with pytest.raises(ValueError, match="pass `irish`"):
        fuse(spec, fs, np.array([0, 1]), loc)
    irish = np.array([True, False])
    assert fuse(spec, fs, np.array([0, 1]), loc, irish).tolist() == [[0, 0], loc[1].tolist()]
    keep = FeatureSpec(("location",), unknown="zero")  # the default keeps Irish squares
    assert fuse(keep, fs, np.array([0, 1]), loc, irish).tolist() == loc.tolist()


def test_looks_normalised_reads_meta_then_rows(folder):
    fs = load_features(folder, "train")
    assert not looks_normalised(fs)
    unit = np.eye(3, dtype=np.float32)
    save_features(folder, "unit", [1, 2, 3, 4], unit[[0, 1, 2, 0]], unit[[1, 2, 0, 1]], {"normalized": True})
    assert looks_normalised(load_features(folder, "unit"))
    meta = json.loads((folder / "unit" / "meta.json").read_text())
    del meta["normalized"]
    (folder / "unit" / "meta.json").write_text(json.dumps(meta))
    assert looks_normalised(load_features(folder, "unit"))  # meta silent: unit-norm rows give it away
    meta = json.loads((folder / "train" / "meta.json").read_text())
    del meta["normalized"]
    (folder / "train" / "meta.json").write_text(json.dumps(meta))
    assert not looks_normalised(load_features(folder, "train"))


def test_spec_validation_and_names():
    assert FeatureSpec(("image", "location")).name == "img-loc"
    assert FeatureSpec(("title",)).dim(512) == 513 and FeatureSpec().dim(512) == 1029
    assert FeatureSpec(("title",), unknown="zero").dim(512) == 512
    with pytest.raises(ValueError, match="keep the order"):
        FeatureSpec(("title", "image"))
    with pytest.raises(ValueError, match="subset of"):
        FeatureSpec(("sound",))
