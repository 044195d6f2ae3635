"""`label context` against the queue stand-in serving the demo photos: the worker's probabilities and
chosen tags equal `embed` + `predict --probs` on the same photos (tiny random-weight open_clip model)."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, small_config

from geocontext.cli import main
from geocontext.competition import ID
from geocontext.data.readers import read_metadata, read_tag_names, read_test_ids
from geocontext.embedding.features import load_features
from geocontext.labeller.standin import QueueStandIn
from geocontext.pipeline.run import run

FAST = ["--retry-base", "0.01", "--retry-cap", "0.05", "--timeout", "5", "--unique-number", "3"]


@pytest.fixture(scope="module")
def setup(demo_data, tmp_path_factory):
    """A run trained on the tiny model's 32-d features of the demo photos, and predict's answer. (The
    worker's encoder must be the one the run's features came from: another is refused, test below.)"""
    work = tmp_path_factory.mktemp("label-context")
    tiny = work / "gc-tiny.json"
    tiny.write_text(json.dumps(TINY))
    run_dir = work / "run"
    encoder = ["--model", str(tiny), "--random-weights", "--seed", "4", "--device", "cpu", "--precision", "fp32"]
    assert main(["embed", "--data", str(demo_data), "--out", str(work / "features"), "--workers", "0",
                 "--accept-missing", *encoder]) == 0
    run(demo_data, work / "features", run_dir, small_config(), accept_missing=True)
    assert main(["predict", "--run", str(run_dir), "--data", str(demo_data), "--features", str(work / "features"),
                 "--out", str(work / "sub.csv.zip"), "--probs", str(work / "probs.npy"), "--accept-missing"]) == 0
    return run_dir, encoder, work


def rows_for(data_dir, ids, with_grid: bool) -> list[dict]:
    meta = read_metadata(data_dir, ids)
    rows = []
    for i, title, ref in zip(ids, meta.title, meta.grid_reference):
        row = {"gridimage_id": int(i), "title": title, "fullpath": f"test_images/{i // 10000:05d}/{i}.jpg"}
        if with_grid:
            row["grid_reference"] = ref
        rows.append(row)
    return rows


def label(queue, run_dir, encoder, *extra) -> int:
    return main(["label", "context", "--endpoint", queue.endpoint("clip"), "--run", str(run_dir), "--threshold", "0",
                 "--limit", "25", "--loops", "3", *encoder, *FAST, *extra])


def test_context_worker_equals_embed_and_predict(setup, demo_data):
    run_dir, encoder, work = setup
    ids = read_test_ids(demo_data)
    rows = rows_for(demo_data, ids, with_grid=True)
    replies = [{"rows": rows[:25], "prefix": "PREFIX"}, {"rows": rows[25:], "prefix": "PREFIX"}]
    with QueueStandIn(replies, photos=demo_data, post_statuses=[200, 500]) as queue:  # the first labels post fails
        for reply in queue.replies:
            reply["prefix"] = f"{queue.base}/photos/"
        assert label(queue, run_dir, encoder) == 0
    labels = [r for body in queue.posts for r in body if "label" in r]
    vectors = [r for body in queue.posts for r in body if "embeddings" in r]
    assert len(queue.posts) == 4  # labels and embeddings for each batch, the failed post sent again once
    features = load_features(work / "features", "test")
    probs = np.load(work / "probs.npy")
    submission = pd.read_csv(work / "sub.csv.zip").set_index(ID)
    names = read_tag_names(demo_data)
    columns = list(submission.columns)
    by_id = {}
    for record in labels:
        by_id.setdefault(record["image_id"], []).append(record)
    assert sorted(by_id) == sorted(ids.tolist())  # every photo answered exactly once
    missing, damaged = int(ids[-1]), int(ids[-2])  # build_dataset: the last photo lost, the one before damaged
    for bad in (missing, damaged):
        assert by_id[bad] == [{"image_id": bad, "label": "Failed", "score": -1}]
    row_of = {int(i): k for k, i in enumerate(features.ids)}
    worst = 0.0
    for image_id in ids[:-2].tolist():
        got = {r["label"]: r for r in by_id[image_id]}
        want = probs[row_of[image_id]]
        assert len(got) == len(columns)  # threshold 0: every tag posted
        scores = np.array([got[names[c]]["score"] for c in columns])
        worst = max(worst, float(np.abs(scores - want).max()))
        chosen = {c for c in columns if got[names[c]].get("chosen")}
        assert chosen == {c for c in columns if submission.loc[image_id, c] == 1}
    assert worst < 2e-3
    image = {r["image_id"]: r for r in vectors if r["type"] == "image"}
    title = {r["image_id"]: r for r in vectors if r["type"] == "title"}
    assert sorted(image) == sorted(title) == sorted(ids[:-2].tolist())  # no vectors for failed photos
    for image_id in ids[:-2].tolist():
        for got, want in ((image, features.image), (title, features.title)):
            vector = np.frombuffer(base64.b64decode(got[image_id]["embeddings"]), dtype="<f4")
            np.testing.assert_allclose(vector, want[row_of[image_id]], atol=1e-4)


def test_without_grid_references_the_location_is_unknown_as_in_predict(setup, demo_data, tmp_path):
    """The protocol sends no grid reference: the worker equals predict on metadata with blank references."""
    run_dir, encoder, work = setup
    blank = tmp_path / "data"
    blank.mkdir()
    for name in ("train.csv", "test.csv", "tags-top.csv"):
        (blank / name).write_bytes((demo_data / name).read_bytes())
    meta = pd.read_csv(demo_data / "metadata.csv", on_bad_lines="skip").assign(grid_reference="")
    meta.to_csv(blank / "metadata.csv", index=False)
    assert main(["predict", "--run", str(run_dir), "--data", str(blank), "--features", str(work / "features"),
                 "--out", str(tmp_path / "s.csv.zip"), "--probs", str(tmp_path / "p.npy"), "--accept-missing"]) == 0
    ids = read_test_ids(demo_data)[:10]
    with QueueStandIn([{"rows": rows_for(demo_data, ids, with_grid=False)}], photos=demo_data) as queue:
        queue.replies[0]["prefix"] = f"{queue.base}/photos/"
        assert label(queue, run_dir, encoder, "--precision", "bf16") == 0
    features = load_features(work / "features", "test")
    row_of = {int(i): k for k, i in enumerate(features.ids)}
    probs = np.load(tmp_path / "p.npy")
    names = read_tag_names(demo_data)
    columns = list(pd.read_csv(tmp_path / "s.csv.zip").columns[1:])
    got = {}
    labels, vectors = queue.posts  # labels are posted before embeddings
    for r in labels:
        got.setdefault(r["image_id"], {})[r["label"]] = r["score"]
    scores = np.array([[got[int(i)][names[c]] for c in columns] for i in ids])
    # bf16 weights: the tags stay close, and the vectors still go out as 32-d little-endian float32
    assert np.abs(scores - probs[[row_of[int(i)] for i in ids]]).max() < 0.05
    sizes = {len(base64.b64decode(r["embeddings"])) for r in vectors}
    assert sizes == {32 * 4}


def test_a_worker_with_other_weights_than_the_runs_features_is_refused(setup, capsys):
    """Issue 25: the run's heads read features column by column; another encoder's would give noise."""
    run_dir, encoder, _ = setup
    other = [a if a != "4" else "5" for a in encoder]  # --seed 5: other random weights, same model and width
    with QueueStandIn([{"rows": []}]) as queue:
        capsys.readouterr()
        assert label(queue, run_dir, other) == 2
    err = capsys.readouterr().err
    assert re.search(r"run: variant '[\w-]+' \(trained on image\) and image@gc-tiny come from different encoders"
                     r" \(weights random:4 vs random:5\)", err), err
    assert err.count("\n") == 1 and not queue.posts
