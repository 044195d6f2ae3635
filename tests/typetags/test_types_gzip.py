"""The published types data as shipped (.jsonl.gz): every `types` step reads it as it reads the plain file;
a truncated .gz stops with one line naming the file and the last good line; the unlabelled "unknown" file
goes through `types predict`."""
import gzip
import json
import shutil
import zipfile
import zlib

import numpy as np
import pytest
import torch

from geocontext.cli import main
from geocontext.synthetic.types_data import write_dataset, write_unknown
from geocontext.typetags.checkpoint import load_checkpoint
from geocontext.typetags.classifier import type_probabilities as predict_proba
from geocontext.typetags.distance import UNKNOWN_INDEX, distance_index
from geocontext.typetags.reader import read_types

TRAIN = ["--epochs", "3", "--tune-trials", "8", "--seed", "1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same generated dataset (with its bad lines) plain and gzipped, and a run trained on the plain one."""
    folder = tmp_path_factory.mktemp("types-gz")
    config = folder / "config.json"
    config.write_text(json.dumps({"min_steps_per_epoch": 4}))
    plain = write_dataset(folder / "types.jsonl", n=400, seed=4).path
    packed = write_dataset(folder / "types_dataset_1.jsonl.gz", n=400, seed=4).path
    assert packed.read_bytes()[:2] == b"\x1f\x8b" and gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    assert main(["types", "train", "--data", str(plain), "--out", str(folder / "run"), *TRAIN, "--config", str(config)]) == 0
    return folder, plain, packed, config


def _same_but_paths(a: dict, b: dict, paths=("data", "model", "confusion_png", "seconds", "train_seconds")) -> None:
    a, b = ({k: v for k, v in r.items() if k not in paths} for r in (a, b))
    for r in (a, b):
        r.get("read", {}).pop("path", None)
        for epoch in r.get("history", []):
            epoch.pop("seconds")
    assert a == b


def test_train_evaluate_predict_give_the_plain_files_results(files, tmp_path, capsys):
    folder, plain, packed, config = files
    # train: the same report (read, labels, splits, history, thresholds, scores) and the same weights
    assert main(["types", "train", "--data", str(packed), "--out", str(tmp_path / "run"), *TRAIN,
                 "--config", str(config)]) == 0
    shown = capsys.readouterr().out
    assert f"{packed}: 400 photos from" in shown and "skipped 8" in shown
    ours, theirs = (json.loads((f / "run" / "report.json").read_text()) for f in (tmp_path, folder))
    assert ours["read"]["rows"] == 400 and ours["tes"]["rows"] > 20
    _same_but_paths(ours, theirs)
    a = torch.load(tmp_path / "run" / "model.pth", weights_only=True)["model_state_dict"]
    b = torch.load(folder / "run" / "model.pth", weights_only=True)["model_state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    model = str(folder / "run" / "model.pth")
    for data in (plain, packed):  # evaluate: the same scores
        assert main(["types", "evaluate", "--model", model, "--data", str(data), "--split", "all",
                     "--out", str(tmp_path / f"eval-{data.name}")]) == 0
    _same_but_paths(*(json.loads((tmp_path / f"eval-{d.name}" / "report.json").read_text()) for d in (plain, packed)))
    assert main(["types", "evaluate", "--model", model, "--data", str(packed)]) == 0  # default folder: no ".jsonl"
    assert (folder / "run" / "evaluation-types_dataset_1-tes" / "report.json").is_file()

    for data in (plain, packed):  # predict: the same lines, byte for byte
        assert main(["types", "predict", "--model", model, "--data", str(data), "--out", str(tmp_path / f"{data.name}.out")]) == 0
    assert (tmp_path / "types_dataset_1.jsonl.gz.out").read_bytes() == (tmp_path / "types.jsonl.out").read_bytes()
    assert len((tmp_path / "types.jsonl.out").read_text().splitlines()) >= 400


def test_gzip_is_known_by_its_bytes_not_its_name(files, tmp_path):
    _, plain, packed, _ = files
    rows, report = read_types(plain)
    for name, source in (("renamed.jsonl", packed), ("unpacked.jsonl.gz", plain)):
        again, seen = read_types(shutil.copy(source, tmp_path / name))
        assert np.array_equal(again.ids, rows.ids) and np.array_equal(again.embeddings, rows.embeddings)
        assert list(again.line) == list(rows.line) and seen.summary().split(": ", 1)[1] == report.summary().split(": ", 1)[1]
    with zipfile.ZipFile(tmp_path / "types.jsonl.zip", "w") as archive:
        archive.write(plain, "types.jsonl")
    with pytest.raises(ValueError, match=r"types.jsonl.zip: a zip archive, not JSON lines; unpack it"):
        read_types(tmp_path / "types.jsonl.zip")


def _complete_lines(truncated: bytes) -> int:
    """Lines whole in what can be decompressed from a cut gzip file: the last good line."""
    return zlib.decompressobj(wbits=31).decompress(truncated).count(b"\n")


@pytest.mark.parametrize("step", ["train", "evaluate", "predict"])
def test_a_truncated_gz_stops_naming_the_file_and_the_last_good_line(files, tmp_path, capsys, step):
    folder, plain, packed, _ = files
    blob = packed.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(blob[: len(blob) * 6 // 10])
    last = _complete_lines(cut.read_bytes())
    rows, _ = read_types(plain)
    before = rows.line <= last
    assert 100 < last < 400 and 0 < before.sum() < len(rows)
    out = tmp_path / "preds.jsonl"
    argv = {"train": ["--out", str(tmp_path / "run"), *TRAIN],
            "evaluate": ["--model", str(folder / "run" / "model.pth"), "--split", "all", "--out", str(tmp_path / "e")],
            "predict": ["--model", str(folder / "run" / "model.pth"), "--out", str(out)]}[step]
    assert main(["types", step, "--data", str(cut), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {cut}: the gzip data ends early (truncated) after line {last}, the last line read"
                          f" whole (Compressed file ended before the end-of-stream marker was reached); read before it:"
                          f" {before.sum()} photos from {last} lines")
    assert not (tmp_path / "run").exists() and not out.exists()
    if step == "predict":  # what was tagged before the damage is kept, under its own name, and said
        part = tmp_path / "preds.jsonl.part"
        assert err.rstrip().endswith(f"; the {before.sum()} photos tagged before it are in {part}")
        tagged = {json.loads(line)["image_id"] for line in part.read_text().splitlines()}
        assert tagged == set(rows.ids[before].tolist())


def test_a_gz_damaged_before_its_first_line(tmp_path, capsys):
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(write_dataset(tmp_path / "t.jsonl.gz", n=20, seed=1).path.read_bytes()[:15])
    with pytest.raises(ValueError, match=rf"{cut}: the gzip data ends early \(truncated\) before its first line"):
        read_types(cut)


def test_the_unknown_file_goes_through_predict(files, tmp_path, capsys):
    """title and path, no types, no split, a distance on some rows: tagged like any other; gzipped or not."""
    folder, _, _, _ = files
    model = folder / "run" / "model.pth"
    plain = write_unknown(tmp_path / "unknown.jsonl", n=150, seed=9).path
    packed = write_unknown(tmp_path / "unknown.jsonl.gz", n=150, seed=9).path
    for data in (plain, packed):
        assert main(["types", "predict", "--model", str(model), "--data", str(data), "--out", str(tmp_path / f"{data.name}.out"),
                     "--threshold", "0.3"]) == 0
        shown = capsys.readouterr().out
        assert f"{data}: 150 photos from 150 lines; no line skipped\n" in shown  # nothing unusual either
    assert (tmp_path / "unknown.jsonl.out").read_bytes() == (tmp_path / "unknown.jsonl.gz.out").read_bytes()
    lines = [json.loads(line) for line in (tmp_path / "unknown.jsonl.out").read_text().splitlines()]
    rows, _ = read_types(plain)
    assert (rows.types == "").all() and (rows.split == "").all()
    assert {r["image_id"] for r in lines} == set(rows.ids.tolist())
    dist = distance_index(rows.distance)
    assert (dist == UNKNOWN_INDEX).sum() >= 75  # rows without a distance are read as Unknown
    net, _ = load_checkpoint(model)
    probs = dict(zip(rows.ids.tolist(), predict_proba(net, rows.embeddings, dist)))
    classes = list(torch.load(model, weights_only=True)["classes"])
    assert all(r["score"] == pytest.approx(float(probs[r["image_id"]][classes.index(r["label"])]), abs=1e-5)
               for r in lines)
    # train and evaluate need labels: one clear line, pointing at predict
    for argv in (["train", "--data", str(packed), "--out", str(tmp_path / "run")],
                 ["evaluate", "--model", str(model), "--data", str(packed)]):
        assert main(["types", *argv]) == 2
        err = capsys.readouterr().err
        assert f"{packed}: none of its 150 photos has `types`" in err and "types predict` tags it" in err
