"""Features from different encoder weights are never mixed silently: meta.json records each block's
encoder identity, and train against test, chunks of a split, and a run against the features given to it
are compared (a head reads features column by column: other weights give noise and a score of ~0)."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch
from conftest import TINY

from geocontext.cli import main
from geocontext.embedding.encoder import EncoderConfig, load_encoder
from geocontext.embedding.features import load_features
from geocontext.embedding.identity import check_same, compare
from geocontext.errors import DataError

A = {"model": "M", "weights": "file:" + "a" * 64, "weights_sha256": "1" * 64, "quick_gelu": True, "dim": 32,
     "image_size": 224, "precision": "fp32"}


def test_a_tag_and_a_file_of_the_same_weights_agree_and_other_weights_do_not():
    same_by_tag = {**A, "weights": "tag:openai"}
    assert check_same(A, same_by_tag, "train", "test", "advice") == []
    for change, said in (({"weights_sha256": "2" * 64}, "weights_sha256 111111111111 vs 222222222222"),
                         ({"quick_gelu": False}, "quick_gelu True vs False"), ({"image_size": 256}, "image_size 224 vs 256"),
                         ({"weights": "tag:laion", "weights_sha256": None}, "")):
        other = {k: v for k, v in {**A, **change}.items() if v is not None}
        if not said:  # no digest on one side: tag against file cannot be decided, two names can
            assert "cannot tell whether weights" in check_same(A, other, "train", "test", "advice")[0]
            with pytest.raises(DataError, match="weights 'tag:openai' vs 'tag:laion'|weights tag:openai vs tag:laion"):
                check_same({**other, "weights": "tag:openai"}, other, "train", "test", "advice")
            continue
        with pytest.raises(DataError) as err:
            check_same(A, other, "FEATURES/train: image@M", "FEATURES/test: image@M", "embed both with one encoder")
        message = str(err.value)
        assert said in message and message.startswith("FEATURES/train: image@M and FEATURES/test: image@M come from"
                                                       " different encoders") and "\n" not in message


def test_precision_is_told_and_missing_identities_compare_what_both_record():
    assert "other precisions (precision fp32 vs bf16)" in check_same(A, {**A, "precision": "bf16"}, "a", "b", "")[0]
    old = {k: A[k] for k in ("model", "weights", "quick_gelu", "dim")}  # a folder from before digests
    assert compare(old, {**A, "image_size": 999})[0] == []
    assert "records no encoder identity" in check_same(A, None, "run", "features", "")[0]
    assert check_same(None, None, "run", "features", "") == []
    differ, _ = compare({"blocks": ["x"], "image": A, "precision": "fp32"}, {"blocks": ["y"], "image": {**A, "dim": 64}})
    assert differ == [("image.dim", 32, 64)]  # nested (a job's parts), "blocks" lists are no identity


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A tiny open_clip config and two checkpoint files of it: the same weights (.pt and .safetensors)
    and other weights."""
    import open_clip
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("weights")
    config = root / "gc-tiny.json"
    config.write_text(json.dumps(TINY))
    open_clip.add_model_config(config)
    files = {}
    for seed, name in ((1, "a"), (2, "b")):
        torch.manual_seed(seed)
        state = open_clip.create_model("gc-tiny").state_dict()
        torch.save(state, root / f"{name}.pt")
        files[name] = root / f"{name}.pt"
    save_file({k: v.contiguous() for k, v in torch.load(files["a"], weights_only=True).items()}, str(root / "a.safetensors"))
    files["a2"] = root / "a.safetensors"
    return str(config), files


def test_the_encoder_records_its_whole_identity(tiny_weights, monkeypatch):
    import open_clip

    config, files = tiny_weights
    a = load_encoder(EncoderConfig(model=config, pretrained=str(files["a"]), precision="fp32")).identity()
    assert {"model", "weights", "weights_sha256", "quick_gelu", "dim", "image_size", "preprocess", "precision"} <= set(a)
    assert a["image_size"] in (32, [32, 32]) and a["precision"] == "fp32" and a["quick_gelu"] is False
    same = load_encoder(EncoderConfig(model=config, pretrained=str(files["a2"]), precision="fp32")).identity()
    assert same["weights"] != a["weights"] and same["weights_sha256"] == a["weights_sha256"]  # another file, same weights
    real = open_clip.get_pretrained_cfg
    monkeypatch.setattr(open_clip, "get_pretrained_cfg", lambda m, t: {"file": str(files["a"])} if t == "tag" else real(m, t))
    tagged = load_encoder(EncoderConfig(model=config, pretrained="tag", precision="fp32")).identity()
    assert check_same(a, tagged, "file", "tag", "") == []
    monkeypatch.setattr(open_clip, "get_pretrained_cfg", lambda m, t: {"file": str(files["a"]), "mean": (0.5, 0.5, 0.5),
                                                                       "std": (0.5, 0.5, 0.5)} if t == "tag" else real(m, t))
    normalised = load_encoder(EncoderConfig(model=config, pretrained="tag", precision="fp32")).identity()
    with pytest.raises(DataError, match=r"come from different encoders \(preprocess "):  # same weights, other photos
        check_same(a, normalised, "file", "tag", "")
    other = load_encoder(EncoderConfig(model=config, pretrained=str(files["b"]), precision="fp32")).identity()
    assert other["weights_sha256"] != a["weights_sha256"]


def _embed(data, out, config, weights, split, *extra):
    return main(["embed", "--data", str(data), "--out", str(out), "--split", split, "--model", config,
                 "--pretrained", str(weights), "--workers", "0", "--accept-missing", "--precision", "fp32", *extra])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from geocontext.synthetic.demo import build_dataset

    return build_dataset(tmp_path_factory.mktemp("identity") / "data", n_train=40, n_test=10, seed=6)


def test_train_and_test_from_other_weights_stop_check_and_run(data_dir, tiny_weights, tmp_path, capsys):
    """The issue's case: one FEATURES folder, train with one set of weights, test with another (the same
    model and width), or with --quick-gelu forgotten: `check` and `run` stop in one line naming both."""
    config, files = tiny_weights
    feats = tmp_path / "features"
    assert _embed(data_dir, feats, config, files["a"], "train") == 0
    capsys.readouterr()
    assert _embed(data_dir, feats, config, files["b"], "test") == 0  # said at once, refused where they meet
    assert re.search(r"warning: .*features/train: image@gc-tiny and the image@gc-tiny embedded now come from different"
                     r" encoders \(weights_sha256 \w{12} vs \w{12}\); embed train with this encoder too", capsys.readouterr().out)
    assert main(["check", "--data", str(data_dir), "--features", str(feats), "--accept-missing"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"error: a run would stop: .*features/train: image@gc-tiny and .*features/test: image@gc-tiny"
                     r" come from different encoders \(weights_sha256 \w{12} vs \w{12}\)", err), err
    out = tmp_path / "run"
    assert main(["run", "--data", str(data_dir), "--features", str(feats), "--out", str(out), "--accept-missing"]) == 2
    said = capsys.readouterr()
    assert "come from different encoders" in said.err and said.err.count("\n") == 1 and "training " not in said.out
    assert not (out / "split.npz").exists()
    shutil.rmtree(feats / "chunks" / "test")  # its chunks are refused to another encoder (as the error says)
    assert _embed(data_dir, feats, config, files["a"], "test", "--quick-gelu") == 0  # right weights, wrong activation
    capsys.readouterr()
    assert main(["check", "--data", str(data_dir), "--features", str(feats), "--accept-missing"]) == 2
    assert "quick_gelu False vs True" in capsys.readouterr().err
    shutil.rmtree(feats / "chunks" / "test")
    assert _embed(data_dir, feats, config, files["a2"], "test") == 0  # the same weights from another file: fine
    capsys.readouterr()
    assert main(["check", "--data", str(data_dir), "--features", str(feats), "--accept-missing"]) == 0
    meta = load_features(feats, "test").blocks["image@gc-tiny"].info["identity"]
    assert meta["weights_sha256"] == load_features(feats, "train").blocks["image@gc-tiny"].info["identity"]["weights_sha256"]


def test_an_old_folder_without_identity_fields_still_runs_with_a_warning(data_dir, tiny_weights, tmp_path, capsys):
    """meta.json from before identities were complete: what both sides record is compared."""
    config, files = tiny_weights
    feats = tmp_path / "features"
    assert _embed(data_dir, feats, config, files["a"], "all") == 0
    meta_path = feats / "test" / "meta.json"
    meta = json.loads(meta_path.read_text())
    for block in meta["blocks"].values():
        block.pop("identity")
    meta_path.write_text(json.dumps(meta))
    capsys.readouterr()
    assert main(["check", "--data", str(data_dir), "--features", str(feats), "--accept-missing"]) == 0
    assert "features/test: image@gc-tiny records no encoder identity" in capsys.readouterr().out
    assert np.isfinite(load_features(feats, "test").title).all()
