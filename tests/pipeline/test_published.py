"""Published CLIP-the-Landscape heads: import, predict with their exact input convention, refuse bad files."""
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import shared_file
from torch import nn

from geocontext.cli import main
from geocontext.competition import COLUMNS
from geocontext.data import grid
from geocontext.data import readers as data
from geocontext.data.submission import read_submission, validate
from geocontext.decoding.select import DecodeConfig
from geocontext.embedding.features import load_features, save_features
from geocontext.errors import DataError
from geocontext.pipeline.config import RunConfig
from geocontext.pipeline.predict import predict
from geocontext.pipeline.published import import_heads, parse_name, read_log
from geocontext.pipeline.run import run
from geocontext.synthetic.world import (
    World,
    grid_references,
    sample_labels,
    synthesize_features,
)
from geocontext.training.config import TrainConfig, VariantConfig
from geocontext.training.inputs import FeatureSpec

PUBLISHED = ("linear-img", "linear-txt", "linear-img-txt-loc", "linear-img-txt-loc-mixup",
             "mlp-img-txt-loc", "mlp-img-txt-loc-mixup")
TINY_DECODE = DecodeConfig(decoders=("0.5", "global"), global_trials=4, label_sets=50)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A DATA folder (labels, ids, metadata) and raw 512-d FEATURES; the test photos include squares on
    the Irish Grid, blank and garbled references, and missing photos, the cases the convention covers."""
    root = tmp_path_factory.mktemp("published")
    world, rng = World.create(7, 512), np.random.default_rng(7)
    n_train, n_test = 200, 60
    ids = rng.permutation(np.arange(100_000, 100_000 + n_train + n_test))
    y = sample_labels(world, len(ids), rng)
    refs = grid_references(world, y, rng)
    refs[n_train:n_train + 6] = ["O1534", "J3374", "", "XY12", "NT2573", "SV9010"]
    dirs = root / "data"
    dirs.mkdir()
    labels = pd.DataFrame(y, columns=list(COLUMNS))
    labels.insert(0, "gridimage_id", ids)
    labels[:n_train].to_csv(dirs / "train.csv", index=False)
    labels[["gridimage_id"]][n_train:].to_csv(dirs / "test.csv", index=False)
    pd.DataFrame({"gridimage_id": ids, "title": "a view", "grid_reference": refs}).to_csv(dirs / "metadata.csv", index=False)
    image, title = synthesize_features(world, y, rng, missing=0.0)
    image[[n_train + 1, n_train + 7]] = np.nan  # missing photos: an Irish square and a British one
    feats = root / "features"
    for split, part in (("train", slice(0, n_train)), ("test", slice(n_train, None))):
        save_features(feats, split, ids[part], image[part], title[part], {"encoder": "synthetic"})
    return dirs, feats


def published_input(name: str, dirs, feats) -> np.ndarray:
    """The published model input for the test split, built here from the files, independently of fuse():
    raw embeddings (a missing photo as zeros), then the location block the notebooks really fed: [0, 0]
    for every photo (their square lookup with a 0-d tensor id always raised KeyError, caught by a bare
    except). What they meant to feed (the square's centre, min-max normalised) is computed and checked
    to be non-zero, so the test would see the difference."""
    ids = np.load(feats / "test" / "ids.npy")
    blocks = []
    if "img" in name:
        blocks.append(np.nan_to_num(np.load(feats / "test" / "image.npy"), nan=0.0))
    if "txt" in name:
        blocks.append(np.load(feats / "test" / "title.npy"))
    if "loc" in name:
        refs = data.read_metadata(dirs, ids).grid_reference
        latlon = grid.locate(refs).latlon
        loc = np.column_stack([(latlon[:, 0] - 49.9) / 12.0, (latlon[:, 1] + 8.6) / 10.7])
        british = np.array([bool(re.fullmatch(r"[A-HJ-Z]{2}\d+", str(r).replace(" ", "").upper())) for r in refs])
        loc[~british | np.isnan(loc).any(axis=1)] = 0.0
        assert (~british & (loc == 0).all(axis=1)).sum() >= 4 and (loc != 0).all(axis=1).sum() > 40
        blocks.append(np.zeros_like(loc))
    return np.concatenate(blocks, axis=1).astype(np.float32)


def direct_probs(path, name: str, x: np.ndarray) -> np.ndarray:
    """The published architecture rebuilt with torch.nn, loaded strictly, in eval mode."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if name.startswith("linear"):
        net = nn.Linear(x.shape[1], 49)
    else:
        hidden = state["0.weight"].shape[0]
        net = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, 49))
    net.load_state_dict(state)
    net.eval()
    with torch.no_grad():
        return torch.sigmoid(net(torch.from_numpy(x))).numpy()


def published_layout(name: str, hidden: int = 256, seed: int = 0) -> dict:
    """A state dict in a published file's layout, random weights (stands in where ../shared is absent)."""
    torch.manual_seed(seed)
    d = sum({"img": 512, "txt": 512, "loc": 2}[m] for m in ("img", "txt", "loc") if m in name.split("-"))
    net = nn.Linear(d, 49) if name.startswith("linear") else nn.Sequential(
        nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, 49))
    return {k: v * 3 for k, v in net.state_dict().items()}  # wider than the default init: varied outputs


def head_file(tmp_path, which: str):
    """A published file from ../shared ("shared:NAME", skipped when absent) or a generated one."""
    if which.startswith("shared:"):
        return shared_file("reference-models", "clip-the-landscape", which.split(":")[1] + ".pth")
    path = tmp_path / f"{which}.pth"
    torch.save(published_layout(which, hidden=64), path)
    return path


@pytest.mark.parametrize("which", ["linear-img-txt-loc", "mlp-txt-loc-mixup", *(f"shared:{n}" for n in PUBLISHED)])
def test_imported_head_predicts_like_the_published_architecture(which, case, tmp_path):
    dirs, feats = case
    path = head_file(tmp_path, which)
    import_heads([path], tmp_path / "run")
    result = predict(tmp_path / "run", dirs, feats, tmp_path / "x.csv.zip", tmp_path / "p.npy", accept_missing=True)
    expected = direct_probs(path, path.stem, published_input(path.stem, dirs, feats))
    probs = np.load(tmp_path / "p.npy")
    assert probs.shape == expected.shape == (60, 49)
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    assert probs.std() > 0.01  # not a comparison of saturated outputs
    submission = read_submission(tmp_path / "x.csv.zip")
    validate(submission, data.read_test_ids(dirs), COLUMNS)  # raises if Kaggle would reject it
    tags = (expected > 0.5).astype(np.uint8)  # the published decoder is strict
    tags[~tags.any(axis=1), expected[~tags.any(axis=1)].argmax(axis=1)] = 1  # the at-least-one-tag rule
    assert (submission[list(COLUMNS)].to_numpy() == tags).all() and result["rows"] == 60


def test_published_logs_and_variant_folder(tmp_path):
    path = shared_file("reference-models", "clip-the-landscape", "mlp-img-txt-loc.pth")
    import_heads([path], tmp_path / "run")
    variant = json.loads((tmp_path / "run" / "variants" / "mlp-img-txt-loc" / "variant.json").read_text())
    assert FeatureSpec.from_dict(variant["features"]) == FeatureSpec(("image", "title", "location"),
                                                                     l2_normalize=False, unknown="zero", irish_grid=False,
                                                                     zero_location=True)
    assert variant["head"] == "mlp" and variant["hidden"] == 256 and variant["in_dim"] == 1026
    assert variant["columns"] == list(COLUMNS) and variant["embeddings"] == "raw"
    log = variant["published"]["log"]
    # The log closes with "Best epoch 56" (where early stopping ended); the score was first reached at 46.
    assert log["best_val_exact_match"] == 0.3249 and log["best_epoch"] == 46 and log["stated_best"]["epoch"] == 56
    assert variant["published"]["learnt_from_location"] is False
    state = torch.load(tmp_path / "run" / "variants" / "mlp-img-txt-loc" / "model.pt", weights_only=True)
    assert (state["scaler"]["mean"] == 0).all() and (state["scaler"]["std"] == 1).all()  # identity standardiser


def test_several_heads_give_their_mean_at_one_half(case, tmp_path):
    dirs, feats = case
    paths = [head_file(tmp_path, "linear-img"), head_file(tmp_path, "mlp-img-txt-loc")]
    report = import_heads(paths, tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["final"]["name"] == "mean(2) / 0.5" and info["final"]["weights"] == [0.5, 0.5]
    assert info["variants"] == ["linear-img", "mlp-img-txt-loc"] and info["columns"] == list(COLUMNS)
    assert report["holdout"] is None and "no hold-out scores" in report["note"]
    predict(tmp_path / "run", dirs, feats, tmp_path / "x.csv.zip", tmp_path / "p.npy", accept_missing=True)
    each = [direct_probs(p, p.stem, published_input(p.stem, dirs, feats)) for p in paths]
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), (each[0] + each[1]) / 2, rtol=1e-5, atol=1e-6)


def test_import_with_data_chooses_on_the_holdout_and_run_with_uses_it(case, tmp_path):
    dirs, feats = case
    paths = [head_file(tmp_path, "linear-img-txt-loc"), head_file(tmp_path, "mlp-img")]
    (tmp_path / "c.json").write_text(json.dumps({"decode": TINY_DECODE.to_dict()}))
    code = main(["heads", "import", *map(str, paths), "--out", str(tmp_path / "imported"), "--data", str(dirs),
                 "--features", str(feats), "--config", str(tmp_path / "c.json"), "--accept-missing"])
    assert code == 0
    report = json.loads((tmp_path / "imported" / "report.json").read_text())
    assert set(report["variants"]) == {"linear-img-txt-loc", "mlp-img"}
    assert report["final"]["name"] in report["candidates"] and "exact_match" in report["final"]
    assert report["rows"]["holdout"] == 40 and any("optimistic" in w for w in report["warnings"])
    assert (tmp_path / "imported" / "submission.csv.zip").exists()
    assert json.loads((tmp_path / "imported" / "run.json").read_text())["config"]["variants"] == []

    config = RunConfig(variants=[VariantConfig("ours", train=TrainConfig(head="linear", epochs=2))], decode=TINY_DECODE)
    ours = run(dirs, feats, tmp_path / "ours", config, with_runs=[tmp_path / "imported"], accept_missing=True)
    assert set(ours["variants"]) == {"ours", "linear-img-txt-loc", "mlp-img"}  # every imported head, not just the final
    assert {"linear-img-txt-loc / 0.5", "mlp-img / global", "ensemble(3) / 0.5"} <= set(ours["candidates"])
    carried = json.loads((tmp_path / "ours" / "variants" / "mlp-img" / "variant.json").read_text())
    assert carried["features"]["l2_normalize"] is False and carried["embeddings"] == "raw"  # the convention travels


def test_normalised_features_are_refused(case, tmp_path):
    dirs, feats = case
    import_heads([head_file(tmp_path, "linear-img")], tmp_path / "run")
    fs = load_features(feats, "test")
    image = np.nan_to_num(np.asarray(fs.image), nan=1.0)
    unit = image / np.linalg.norm(image, axis=1, keepdims=True)
    save_features(tmp_path / "f", "test", fs.ids, unit, unit, {"normalized": True})
    with pytest.raises(DataError, match=r"f/test: variant 'linear-img' needs raw \(un-normalised\) embeddings.*"
                                        "meta.json says normalized: true"):
        predict(tmp_path / "run", dirs, tmp_path / "f", tmp_path / "x.csv.zip")
    assert not (tmp_path / "x.csv.zip").exists()


@pytest.mark.parametrize("name, saved, message", [
    ("linear-img-txt-loc.pth", nn.Linear(512, 49).state_dict(),
     r"weight has shape \(49, 512\), but the name says a linear head on img-txt-loc \(512 image \+ 512 title"
     r" \+ 2 location = 1026 inputs\) for 49 tags: expected \(49, 1026\)"),
    ("linear-img.pth", nn.Linear(512, 10).state_dict(), r"weight has shape \(10, 512\).*expected \(49, 512\)"),
    ("mlp-img-txt-loc.pth", nn.Sequential(nn.Linear(1024, 256), nn.ReLU(), nn.Dropout(), nn.Linear(256, 49)).state_dict(),
     r"0.weight has shape \(256, 1024\).*expected \(256, 1026\)"),
    ("mlp-img.pth", nn.Linear(512, 49).state_dict(),
     r"an MLP head has parameters \['0.bias', '0.weight', '3.bias', '3.weight'\], this file has \['bias', 'weight'\]"),
    ("linear-img.pth", nn.Linear(512, 49), r"refused: not a plain PyTorch state dict that loads with weights_only=True"),
    ("linear-img.pth", [torch.zeros(49, 512), torch.zeros(49)], r"holds a list, not a state dict"),
    ("linear-img.pth", {"epoch": 3, "state_dict": nn.Linear(512, 49).state_dict()},
     r"not a plain state dict: \{'epoch': 'int', 'state_dict': '(Ordered)?[dD]ict'\} are not tensors"),
    ("linear-img.pth", {"weight": torch.full((49, 512), float("nan")), "bias": torch.zeros(49)},
     r"weight is not a finite floating-point tensor"),
    ("heads.pth", nn.Linear(512, 49).state_dict(), r"the name does not say which head this is"),
    ("linear-loc-img.pth", nn.Linear(514, 49).state_dict(), r"modalities must appear once each, in the order img-txt-loc \(got loc-img\)"),
    ("linear-img-img.pth", nn.Linear(1024, 49).state_dict(), r"modalities must appear once each.*\(got img-img\)"),
])
def test_bad_files_are_refused_clearly_and_nothing_is_written(name, saved, message, tmp_path, capsys):
    good = tmp_path / "good" / "linear-txt.pth"
    good.parent.mkdir()
    torch.save(published_layout("linear-txt"), good)
    bad = tmp_path / name
    torch.save(saved, bad)
    with pytest.raises(DataError, match=re.escape(str(bad)) + ": " + message):
        import_heads([good, bad], tmp_path / "run")
    assert not (tmp_path / "run").exists()  # every file is checked before anything is written
    assert main(["heads", "import", str(bad), "--out", str(tmp_path / "run")]) == 2
    assert str(bad) in capsys.readouterr().err


def test_not_a_torch_file_and_missing_file(tmp_path):
    text = tmp_path / "linear-img.pth"
    text.write_text("weight,bias\n1,2\n")
    with pytest.raises(DataError, match="linear-img.pth: refused: not a plain PyTorch state dict"):
        import_heads([text], tmp_path / "run")
    with pytest.raises(DataError, match="mlp-img.pth: no such file"):
        import_heads([tmp_path / "mlp-img.pth"], tmp_path / "run")


def test_import_refuses_to_overwrite_a_trained_run_and_duplicate_names(tmp_path):
    a, b = tmp_path / "a" / "linear-img.pth", tmp_path / "b" / "linear-img.pth"
    for p in (a, b):
        p.parent.mkdir()
        torch.save(published_layout("linear-img"), p)
    with pytest.raises(DataError, match="a head named 'linear-img' is already imported"):
        import_heads([a, b], tmp_path / "run")
    (tmp_path / "trained").mkdir()
    (tmp_path / "trained" / "run.json").write_text(json.dumps({"final": {}}))
    with pytest.raises(DataError, match="already holds a run that `heads import` did not write"):
        import_heads([a], tmp_path / "trained")
    import_heads([a], tmp_path / "run")
    import_heads([a], tmp_path / "run")  # importing again into its own folder is fine
    with pytest.raises(ValueError, match="give both --data and --features"):
        import_heads([a], tmp_path / "run", data_dir=tmp_path)


def test_names_and_logs_parse(tmp_path):
    name = parse_name("some/dir/mlp-img-txt-loc-mixup.pth")
    assert (name.head, name.modalities, name.mixup, name.in_dim) == ("mlp", ("image", "title", "location"), True, 1026)
    assert parse_name("linear-txt.pth").in_dim == 512 and not parse_name("linear-txt.pth").mixup
    log = tmp_path / "x.log.txt"
    log.write_text("Epoch 00 \t train_loss 0.2 \t val_acc 0.1000 \t macro_f1 0.2\n"
                   "Epoch 01 \t train_loss 0.1 \t val_acc 0.3000 \t macro_f1 0.4\n"
                   "Epoch 02 \t train_loss 0.1 \t val_acc 0.2000 \t macro_f1 0.5\n"
                   "======\nBest epoch 02 \t val_acc 0.3000 \t macro_f1 0.4======\n")
    assert read_log(log) | {"file": None} == {
        "file": None, "epochs_run": 3, "best_epoch": 1, "best_val_exact_match": 0.3, "best_val_macro_f1": 0.4,
        "stated_best": {"epoch": 2, "val_exact_match": 0.3, "val_macro_f1": 0.4}}
    assert read_log(tmp_path / "absent.log.txt") is None
    log.write_text("nothing useful")
    assert "error" in read_log(log)
