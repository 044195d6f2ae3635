"""Training, evaluation, the labeller's output and the `types` commands, on a generated dataset."""
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, shared_file

from geocontext.cli import main
from geocontext.decoding.decoders import ThresholdDecoder
from geocontext.synthetic.types_data import write_dataset
from geocontext.typetags.checkpoint import load_checkpoint, thresholds_of
from geocontext.typetags.classifier import type_probabilities as predict_proba
from geocontext.typetags.distance import distance_index
from geocontext.typetags.predict import labeller_records
from geocontext.typetags.labels import CLASSES
from geocontext.typetags.reader import read_types
from geocontext.typetags.trainer import TypesTrainConfig
from geocontext.typetags.workflow import evaluate_file, load_labelled, train_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("types")
    data = write_dataset(folder / "types.jsonl", n=2500, seed=2)
    # few, larger batches: the same scores as the default 20 steps an epoch, and quick on a busy machine
    config = TypesTrainConfig(seed=0, tune_trials=40, min_steps_per_epoch=5, lr=3e-3)
    report = train_run(data.path, folder / "run", config)
    return data, folder / "run", report


def test_training_beats_chance_on_held_out_photos(trained):
    data, _, report = trained
    labelled = load_labelled(data.path)
    y = labelled.y[labelled.split == "tes"]
    sets, counts = np.unique(y, axis=0, return_counts=True)
    majority = np.repeat(sets[counts.argmax()][None], len(y), axis=0)  # chance: the commonest label set for all
    baseline_exact = (majority == y).all(axis=1).mean()
    scores = report["tes"]
    assert scores["rows"] == len(y) > 150
    assert scores["exact_match"] > baseline_exact + 0.2, (scores["exact_match"], baseline_exact)
    assert scores["macro_f1"] > 0.6
    assert all(s["f1"] > 0.3 for s in scores["per_class"].values()), scores["per_class"]
    assert report["best_epoch"] >= 1 and report["history"][report["best_epoch"]]["val_loss"] < report["history"][0]["val_loss"]


def test_run_folder(trained):
    _, run, report = trained
    assert (run / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((run / "report.json").read_text())
    assert saved["tes"]["exact_match"] == report["tes"]["exact_match"]
    assert saved["read"]["skipped"]["wrong-length vector"] == 1
    _, ckpt = load_checkpoint(run / "model.pth")
    assert thresholds_of(ckpt) == list(report["thresholds"].values())
    assert len(set(thresholds_of(ckpt))) > 1  # tuned per class
    assert ckpt["epoch"] == report["best_epoch"]


def test_evaluate_reproduces_the_training_report(trained, tmp_path):
    data, run, report = trained
    again = evaluate_file(run / "model.pth", data.path, "tes", tmp_path / "eval")
    assert again["exact_match"] == report["tes"]["exact_match"]
    assert again["per_class"] == report["tes"]["per_class"]
    assert (tmp_path / "eval" / "confusion.png").exists() and (tmp_path / "eval" / "report.json").exists()


def test_labeller_records_format():
    probs = np.array([[0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],  # one class passes
                      [0.1, 0.15, 0.05, 0.1, 0.1, 0.1, 0.1],  # none passes: the top one, low confidence
                      [0.3, 0.1, 0.1, 0.1, 0.25, 0.1, 0.1]], dtype=np.float32)
    records = labeller_records([7, 8, 9], probs, CLASSES, ThresholdDecoder(0.2))
    assert records.to_dict("records") == [
        {"image_id": 7, "label": "Aerial", "score": 0.5, "low_confidence": False},
        {"image_id": 8, "label": "Close Look", "score": 0.15, "low_confidence": True},
        {"image_id": 9, "label": "Aerial", "score": 0.3, "low_confidence": False},
        {"image_id": 9, "label": "Geograph", "score": 0.25, "low_confidence": False}]


def test_cli_predict_writes_the_labeller_output(trained, tmp_path):
    data, run, _ = trained
    out = tmp_path / "preds.jsonl"
    assert main(["types", "predict", "--model", str(run / "model.pth"), "--data", str(data.path), "--out", str(out),
                 "--threshold", "0.3"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(set(r) == {"image_id", "label", "score", "low_confidence"} and r["label"] in CLASSES for r in lines)
    rows, _ = read_types(data.path)
    assert sorted({r["image_id"] for r in lines}) == sorted(rows.ids.tolist())  # every usable photo, no other
    model, _ = load_checkpoint(run / "model.pth")
    probs = predict_proba(model, rows.embeddings, distance_index(rows.distance))
    by_id = {gid: p for gid, p in zip(rows.ids.tolist(), probs)}
    per_photo = {}
    for r in lines:
        per_photo.setdefault(r["image_id"], []).append(r)
    low = 0
    for gid, recs in per_photo.items():
        p = by_id[gid]
        if (p >= 0.3).any():
            assert {r["label"] for r in recs} == {CLASSES[j] for j in np.flatnonzero(p >= 0.3)}
            assert not any(r["low_confidence"] for r in recs)
        else:
            low += 1
            assert recs == [{"image_id": gid, "label": CLASSES[int(p.argmax())], "score": pytest.approx(float(p.max()), abs=1e-6),
                             "low_confidence": True}]
    assert low > 0


def test_cli_train_and_evaluate(tmp_path, capsys):
    data = write_dataset(tmp_path / "small.jsonl", n=300, seed=4)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"min_steps_per_epoch": 4, "distance_dropout": {"unknown_share": 0.5}}))
    assert main(["types", "train", "--data", str(data.path), "--out", str(tmp_path / "run"), "--epochs", "2",
                 "--tune-trials", "0", "--config", str(config)]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert len(report["history"]) == 2 and report["config"]["epochs"] == 2
    assert report["config"]["min_steps_per_epoch"] == 4 and report["config"]["distance_dropout"]["unknown_share"] == 0.5
    assert set(report["thresholds"].values()) == {0.5}
    assert main(["types", "evaluate", "--model", str(tmp_path / "run" / "model.pth"), "--data", str(data.path),
                 "--split", "all", "--threshold", "0.4", "--out", str(tmp_path / "eval")]) == 0
    shown = capsys.readouterr().out
    assert "exact match" in shown and "confusion.png" in shown
    assert json.loads((tmp_path / "eval" / "report.json").read_text())["thresholds"] == [0.4] * 7
    # bad input: a clear message and exit status 2, not a traceback
    assert main(["types", "evaluate", "--model", str(tmp_path / "nope.pth"), "--data", str(data.path)]) == 2
    assert "nope.pth: checkpoint not found" in capsys.readouterr().err
    assert main(["types", "evaluate", "--model", str(tmp_path / "run" / "model.pth"), "--data", str(data.path),
                 "--split", "test"]) == 2
    assert "no labelled photo with split 'test'" in capsys.readouterr().err
    config.write_text(json.dumps({"learning_rate": 0.1}))
    assert main(["types", "train", "--data", str(data.path), "--out", str(tmp_path / "run2"), "--config", str(config)]) == 2
    assert "config.json: not a valid types training configuration (unknown types training option(s) ['learning_rate']" \
        in capsys.readouterr().err


def test_cli_entry_point_help():
    result = subprocess.run([sys.executable, "-m", "geocontext", "types", "--help"], capture_output=True, text=True,
                            cwd=REPO, env={"PYTHONPATH": str(REPO / "src"), "PATH": ""})
    assert result.returncode == 0 and all(step in result.stdout for step in ("train", "evaluate", "predict"))


def test_evaluate_a_published_checkpoint(trained, tmp_path):
    path = shared_file("reference-models", "type-classifier", "best_geograph_model_v2.3.pth")
    data, _, _ = trained
    report = evaluate_file(path, data.path, "tes", tmp_path)  # generated data: the scores mean nothing here
    assert report["thresholds"] == [0.5] * 7 and report["rows"] > 150


def test_a_full_disk_stops_types_in_one_line_and_leaves_nothing_partial(trained, tmp_path, monkeypatch, capsys):
    """Issue 25, item 5, for `types train` and `types predict` (simulated: the writes raise ENOSPC)."""
    import errno
    import re

    import torch

    from geocontext.typetags import predict as predict_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    data, run, _ = trained
    small = write_dataset(tmp_path / "small.jsonl", n=300, seed=4)
    with monkeypatch.context() as m:
        m.setattr(torch, "save", full)
        assert main(["types", "train", "--data", str(small.path), "--out", str(tmp_path / "run"), "--epochs", "1",
                     "--tune-trials", "0"]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"^error: {re.escape(str(tmp_path / 'run'))}: no space left on the disk while writing the"
                     r" checkpoint \(.* free there\)", err) and err.count("\n") == 1, err
    assert not list((tmp_path / "run").glob("*model.pth*"))

    class FullText:
        def __init__(self, path, *args, **kwargs):
            self.handle = open(path, *args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, text):
            self.handle.write(text[:10])
            full()

        def close(self):
            self.handle.close()

    out = tmp_path / "preds.jsonl"
    with monkeypatch.context() as m:
        m.setattr(predict_module, "open", FullText, raising=False)
        assert main(["types", "predict", "--checkpoint", str(run / "model.pth"), "--data", str(data.path),
                     "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"^error: {re.escape(str(tmp_path))}: no space left on the disk while writing preds\.jsonl", err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "small.jsonl"]  # no preds.jsonl(.part)
