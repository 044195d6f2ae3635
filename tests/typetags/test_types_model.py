"""The model and its checkpoints: the published schema both ways, and the published checkpoints themselves."""
import numpy as np
import pytest
import torch
from conftest import shared_file
from torch import nn

from geocontext.errors import DataError
from geocontext.typetags.checkpoint import (
    load_checkpoint,
    save_checkpoint,
    thresholds_of,
)
from geocontext.typetags.classifier import TypeClassifier
from geocontext.typetags.classifier import type_probabilities as predict_proba
from geocontext.typetags.distance import DIST_MAP, distance_index
from geocontext.typetags.labels import CLASSES

PUBLISHED_KEYS = {"model_state_dict", "classes", "dist_map", "clip_dim", "dist_embed_dim", "epoch",
                  "optimizer_state_dict", "loss"}


def published_forward(ckpt: dict, clip: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """The published architecture rebuilt from torch.nn alone, as the published loader does: a table
    of len(dist_map) rows, image features first and the distance embedding last."""
    state = ckpt["model_state_dict"]
    emb = nn.Embedding(len(ckpt["dist_map"]), ckpt["dist_embed_dim"])
    fc = nn.Sequential(nn.Linear(ckpt["clip_dim"] + ckpt["dist_embed_dim"], 256), nn.ReLU(), nn.Dropout(0.2),
                       nn.Linear(256, len(ckpt["classes"])))
    emb.load_state_dict({"weight": state["dist_emb.weight"]})
    fc.load_state_dict({k[len("fc."):]: v for k, v in state.items() if k.startswith("fc.")})
    fc.eval()
    with torch.no_grad():
        return torch.sigmoid(fc(torch.cat([clip, emb(dist)], dim=1)))


def _inputs(n=230, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 512, generator=g) * 0.5, torch.arange(n) % 23


def test_checkpoint_round_trip_in_the_published_schema(tmp_path):
    torch.manual_seed(0)
    model = TypeClassifier()
    opt = torch.optim.AdamW(model.parameters())
    model(*_inputs(8)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "m.pth", model, epoch=3, optimizer_state=opt.state_dict(), loss=0.5,
                           thresholds=[0.3] * 7, config={"lr": 1e-3})
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) == PUBLISHED_KEYS | {"geocontext"}
    assert raw["classes"] == list(CLASSES) and raw["dist_map"] == DIST_MAP
    assert (raw["clip_dim"], raw["dist_embed_dim"], raw["epoch"], raw["loss"]) == (512, 16, 3, 0.5)
    assert set(raw["model_state_dict"]) == {"dist_emb.weight", "fc.0.weight", "fc.0.bias", "fc.3.weight", "fc.3.bias"}
    assert raw["model_state_dict"]["dist_emb.weight"].shape == (24, 16)

    clip, dist = _inputs()
    ours = predict_proba(model, clip.numpy(), dist.numpy())
    assert np.allclose(published_forward(raw, clip, dist).numpy(), ours, atol=1e-6)  # the published code reads ours
    loaded, ckpt = load_checkpoint(path)
    assert np.array_equal(predict_proba(loaded, clip.numpy(), dist.numpy()), ours)
    assert thresholds_of(ckpt) == [0.3] * 7 and ckpt["geocontext"]["config"] == {"lr": 1e-3}
    assert ckpt["optimizer_state_dict"]["state"][0]["step"] == 1


def test_bad_checkpoints_are_named(tmp_path):
    with pytest.raises(DataError, match="nothing.pth: checkpoint not found"):
        load_checkpoint(tmp_path / "nothing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="junk.pth: not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pth")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "head.pth")
    with pytest.raises(DataError, match="head.pth: not a type-classifier checkpoint"):
        load_checkpoint(tmp_path / "head.pth")
    torch.save({"model_state_dict": TypeClassifier(n_classes=5).state_dict(), "classes": list(CLASSES),
                "dist_map": DIST_MAP, "clip_dim": 512, "dist_embed_dim": 16, "epoch": 1}, tmp_path / "five.pth")
    with pytest.raises(DataError, match="five.pth: weights do not fit 7 classes"):
        load_checkpoint(tmp_path / "five.pth")


def test_a_checkpoint_with_other_classes_is_refused(tmp_path, capsys):
    """Issue 25: a checkpoint with an eighth class was accepted and tagged every photo with it."""
    from geocontext.cli import main

    eight = (*CLASSES, "Panorama")
    path = save_checkpoint(tmp_path / "eight.pth", TypeClassifier(n_classes=8), classes=eight)
    with pytest.raises(DataError, match=r"eight\.pth: classes \[.*'Panorama'\] are not Geograph's 7 type classes"
                                        r" .*\(unexpected \['Panorama'\], missing \[\]\)"):
        load_checkpoint(path)
    (tmp_path / "rows.jsonl").write_text("")
    assert main(["types", "predict", "--model", str(path), "--data", str(tmp_path / "rows.jsonl"),
                 "--out", str(tmp_path / "p.jsonl")]) == 2
    assert "eight.pth: classes" in capsys.readouterr().err and not (tmp_path / "p.jsonl").exists()
    renamed = (*CLASSES[:-1], "Drone")  # seven, one of them not a type
    with pytest.raises(DataError, match=r"unexpected \['Drone'\], missing \['From Drone'\]"):
        load_checkpoint(save_checkpoint(tmp_path / "renamed.pth", TypeClassifier(), classes=renamed))


def test_predict_proba_checks_its_inputs():
    model = TypeClassifier()
    with pytest.raises(ValueError, match="N x 512"):
        predict_proba(model, np.zeros((2, 511), np.float32), [0, 0])
    with pytest.raises(ValueError, match="0..23"):
        predict_proba(model, np.zeros((2, 512), np.float32), [0, 24])


@pytest.mark.parametrize("version", ["v1", "v2", "v2.3"])
def test_published_checkpoint(version):
    path = shared_file("reference-models", "type-classifier", f"best_geograph_model_{version}.pth")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["classes"] == list(CLASSES)
    assert raw["dist_map"] == DIST_MAP and list(raw["dist_map"]) == list(DIST_MAP)  # same keys, same order
    assert raw["model_state_dict"]["dist_emb.weight"].shape == (24, 16)

    model, ckpt = load_checkpoint(path)
    assert thresholds_of(ckpt) is None
    clip, _ = _inputs(600, seed=1)
    dist = torch.as_tensor(distance_index(np.array(list(DIST_MAP) * 25, dtype=object)[:600], ckpt["dist_map"]))
    assert set(dist.tolist()) == set(range(23))
    ours = predict_proba(model, clip.numpy(), dist.numpy())
    assert np.allclose(ours, published_forward(raw, clip, dist).numpy(), atol=1e-6)
    assert ours.std(axis=0).min() > 1e-3  # real outputs, not a constant

    # The concatenation order, read off the file itself: Adam's second moments for fc.0's input columns
    # are larger where the inputs are the unit-scale distance embedding. They are the last 16 columns.
    moments = raw["optimizer_state_dict"]["state"][1]["exp_avg_sq"].mean(dim=0).sqrt()
    assert moments[-16:].mean() > 2 * moments[:16].mean()
