"""Named feature blocks: added to a FEATURES folder without touching the others, read from several
folders at once, fused by name; folders made before blocks read as they always did."""
import json

import numpy as np
import pytest

from geocontext.cli import main
from geocontext.decoding.select import DecodeConfig
from geocontext.embedding.blocks import open_features, write_blocks
from geocontext.embedding.features import load_features, save_features
from geocontext.errors import DataError
from geocontext.pipeline.config import RunConfig
from geocontext.pipeline.evaluate import evaluate
from geocontext.pipeline.predict import predict
from geocontext.pipeline.run import run
from geocontext.training.config import TrainConfig, VariantConfig
from geocontext.training.inputs import FeatureSpec, fuse
from geocontext.training.variant import Variant


def _extra_title_block(demo_features, folder, name="title@bge-small", dim=12, seed=7):
    """A second folder holding one named title block for the same ids (an informative projection of the
    first folder's titles plus noise, as another text encoder would give)."""
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        fs = load_features(demo_features, split)
        proj = np.random.default_rng(seed).normal(size=(fs.title.shape[1], dim)).astype(np.float32)
        block = np.asarray(fs.title) @ proj + rng.normal(scale=0.1, size=(len(fs), dim)).astype(np.float32)
        write_blocks(folder, split, fs.ids, {name: (block, {"kind": "title", "encoder": "synthetic text"})},
                     {"encoder": "synthetic text"})
    return folder


def test_a_block_is_added_beside_the_others_which_stay_untouched(demo_features, tmp_path):
    folder = tmp_path / "f"
    fs = load_features(demo_features, "test")
    save_features(folder, "test", fs.ids, fs.image, fs.title, {"model": "ViT-B-32", "encoder": "clip"})
    before = {p.name: p.read_bytes() for p in (folder / "test").glob("*.npy")}
    legacy = load_features(folder, "test")
    assert set(legacy.blocks) == {"image@ViT-B-32", "title@ViT-B-32"}  # a folder from before blocks
    extra = np.arange(len(fs) * 3, dtype=np.float32).reshape(len(fs), 3)
    write_blocks(folder, "test", fs.ids, {"title@bge-small": (extra, {"kind": "title", "encoder": "bge"})}, {})
    for name, data in before.items():
        assert (folder / "test" / name).read_bytes() == data, name
    got = load_features(folder, "test")
    assert list(got.blocks) == ["image@ViT-B-32", "title@ViT-B-32", "title@bge-small"]
    assert got.meta["encoder"] == "clip" and got.meta["blocks"]["title@bge-small"]["file"] == "title@bge-small.npy"
    np.testing.assert_array_equal(got.title, fs.title)  # the default title block is still title.npy
    np.testing.assert_array_equal(got.block("title@bge-small").array, extra)
    assert got.block("title") is got.blocks["title@ViT-B-32"]
    with pytest.raises(DataError, match="holds image@ViT-B-32, title@ViT-B-32 for another id list"):
        write_blocks(folder, "test", fs.ids[1:], {"title@bge-small": (extra[1:], {"kind": "title"})}, {})
    with pytest.raises(DataError, match="no feature block 'title@minilm'.*blocks here: image@ViT-B-32"):
        got.block("title@minilm")


def test_spec_fuses_named_blocks_in_order_and_the_default_spec_is_unchanged(demo_features, tmp_path):
    extra = _extra_title_block(demo_features, tmp_path / "extra")
    both = open_features([demo_features, extra], "test")
    one = load_features(demo_features, "test")
    rows, loc = np.arange(len(one))[::-1].copy(), np.zeros((len(one), 2))
    default = FeatureSpec()
    assert "blocks" not in default.to_dict()  # saved variants from before blocks still compare equal
    np.testing.assert_array_equal(fuse(default, both, rows, loc), fuse(default, one, rows, loc))
    spec = FeatureSpec(("title", "location"), blocks=("title@bge-small", "title"))
    x = fuse(spec, both, rows, loc)
    assert x.shape == (len(one), 12 + 1 + 32 + 1 + 3) and spec.name == "txt@bge-small-txt-loc"  # a flag after each block
    block = np.asarray(both.block("title@bge-small").array)[rows]
    np.testing.assert_allclose(x[:, :12], block / np.linalg.norm(block, axis=1, keepdims=True), rtol=1e-5)
    assert not x[:, 12].any()  # the bge block's "missing" flag: every row finite
    assert FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(ValueError, match="each of those modalities needs a block"):
        FeatureSpec(blocks=("image@ViT-B-32",))


def test_several_folders_default_variants_fuse_every_block_and_predict_needs_them(demo_data, demo_features, tmp_path):
    extra = _extra_title_block(demo_features, tmp_path / "extra")
    config = RunConfig(variants=[VariantConfig("all", train=TrainConfig(epochs=4)),
                                 VariantConfig("clip-only", FeatureSpec(blocks=("image", "title")), TrainConfig(epochs=4)),
                                 VariantConfig("bge", FeatureSpec(blocks=("image", "title@bge-small")),
                                               TrainConfig(head="mlp", epochs=4))],
                       decode=DecodeConfig(decoders=("0.5", "global"), global_trials=5))
    out = tmp_path / "run"
    report = run(demo_data, [demo_features, extra], out, config)
    saved = Variant.load(out / "variants" / "all")
    assert saved.features.blocks == ("image", "title@bge-small", "title") or \
        saved.features.blocks == ("image", "title", "title@bge-small")
    assert saved.in_dim == 33 + 33 + 13 + 3  # each image and title block with its "missing" flag
    assert any(set(c["members"]) == {"all", "clip-only", "bge"} for c in report["candidates"].values())
    assert json.loads((out / "run.json").read_text())["features"] == [str(demo_features), str(extra)]
    # predict reads the same folders and gives the run's tags; without the extra folder it says what is missing
    assert main(["predict", "--run", str(out), "--data", str(demo_data), "--features", str(demo_features),
                 "--features", str(extra), "--out", str(tmp_path / "again.csv.zip")]) == 0
    assert evaluate(tmp_path / "again.csv.zip", demo_data / "solution.csv") == \
        evaluate(out / "submission.csv.zip", demo_data / "solution.csv")
    if any(m in ("all", "bge") for m in report["final"]["members"]):
        with pytest.raises(DataError, match="no feature block 'title@bge-small'"):
            predict(out, demo_data, demo_features, tmp_path / "short.csv.zip")


def test_folders_with_other_ids_or_the_same_block_are_refused(demo_features, tmp_path):
    fs = load_features(demo_features, "test")
    other = tmp_path / "other"
    write_blocks(other, "test", fs.ids[::-1], {"title@x": (np.zeros((len(fs), 2), np.float32), {"kind": "title"})}, {})
    with pytest.raises(DataError, match="other ids than"):
        open_features([demo_features, other], "test")
    with pytest.raises(DataError, match="block 'image' is in both"):
        open_features([demo_features, demo_features], "test")
