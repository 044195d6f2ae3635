"""`geocontext label`: the queue workers against a loopback stand-in of Geograph's queue (queue_standin)."""
from __future__ import annotations

import base64
import hashlib
import os
import signal

import numpy as np
import pytest
import torch

from geocontext.cli import main
from geocontext.labeller.queue import (
    QueueClient,
    RetryPolicy,
    Stopper,
    instance_id,
    unique_number,
    with_query,
)
from geocontext.labeller.records import decode_vector, label_records
from geocontext.labeller.standin import QueueStandIn, Script
from geocontext.labeller.worker import Answer, serve
from geocontext.typetags.checkpoint import save_checkpoint
from geocontext.typetags.classifier import TypeClassifier, type_probabilities
from geocontext.typetags.distance import distance_index

FAST = ["--retry-base", "0.01", "--retry-cap", "0.05", "--timeout", "1", "--unique-number", "7"]


def b64(vector) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


@pytest.fixture(scope="module")
def types_model(tmp_path_factory):
    torch.manual_seed(0)
    model = TypeClassifier(clip_dim=512).eval()
    return save_checkpoint(tmp_path_factory.mktemp("types") / "model.pth", model), model


def labels_by_id(body: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for record in body:
        out.setdefault(record["image_id"], []).append(record)
    return out


def test_types_worker_labels_good_vectors_and_fails_bad_ones_after_a_timeout_and_a_500(types_model, capsys):
    path, model = types_model
    rng = np.random.default_rng(0)
    good = rng.normal(size=(3, 512)).astype(np.float32)
    nan = good[0].copy()
    nan[5] = np.nan
    rows = [{"gridimage_id": 11, "embeddings": b64(good[0]), "distance": "64"},
            {"gridimage_id": 12, "embeddings": b64(good[1]), "distance": "Unknown"},
            {"gridimage_id": 13, "embeddings": b64(good[2]), "distance": ""},
            {"gridimage_id": 21, "embeddings": "not*base64!", "distance": "8"},
            {"gridimage_id": 22, "embeddings": b64(good[0][:100]), "distance": "8"},
            {"gridimage_id": 23, "embeddings": b64(nan), "distance": "8"},
            {"gridimage_id": 24, "distance": "8"}]
    replies = [Script({"rows": rows}, delay=1.5), {"rows": rows}]  # the first reply comes after the client gave up
    with QueueStandIn(replies, post_statuses=[500]) as queue:
        code = main(["label", "types", "--endpoint", queue.endpoint("types"), "--model", str(path), "--loops", "2", *FAST])
    assert code == 0
    assert queue.post_attempts == 2 and len(queue.posts) == 1  # the 500 was retried once, not dropped, not resent
    by_id = labels_by_id(queue.posts[0])
    assert sorted(by_id) == [11, 12, 13, 21, 22, 23, 24]  # each photo answered once
    for bad in (21, 22, 23, 24):
        assert by_id[bad] == [{"image_id": bad, "label": "Failed", "score": -1}]
    expected = type_probabilities(model, good, distance_index(["64", "Unknown", ""]))
    classes = list(torch.load(path, weights_only=True)["classes"])
    for r, image_id in enumerate((11, 12, 13)):
        got = {rec["label"]: rec["score"] for rec in by_id[image_id]}
        want = {classes[c]: float(expected[r, c]) for c in np.flatnonzero(expected[r] > 0.2)}
        assert got.keys() == want.keys() or (not want and list(got) == ["None"])
        assert all(abs(got[k] - want[k]) < 1e-5 for k in want)
    assert queue.queries[0] == {"model": "types", "limit": "250", "unique_number": "7", "embeddings": "1"}
    out = capsys.readouterr().out
    assert "photos/s" in out and "fetch" in out and "post" in out and "retry" in out


def test_nothing_passing_is_posted_as_none(types_model):
    records = label_records([5, 6], np.array([[0.1, 0.3], [0.05, 0.2]]), ["A", "B"], 0.2)
    assert records == [{"image_id": 5, "label": "B", "score": 0.3}, {"image_id": 6, "label": "None", "score": 0}]
    chosen = label_records([6], np.array([[0.05, 0.15]]), ["A", "B"], 0.2, chosen=np.array([[0, 1]]))
    assert chosen == [{"image_id": 6, "label": "B", "score": 0.15, "chosen": True}]


@pytest.mark.parametrize("text, why", [("@@@", "base64"), (b64(np.ones(2)), "bytes"),
                                        (b64([np.inf, 1, 2]), "NaN or infinity"), (None, "no embeddings")])
def test_bad_vectors_are_refused_never_zeroed(text, why):
    vector, reason = decode_vector(text, 3)
    assert vector is None and why in reason
    assert decode_vector(b64([1, 2, 3]), 3)[0].tolist() == [1, 2, 3]


def test_empty_replies_wait_honour_sleep_and_repeats_are_not_answered_twice(types_model):
    path, _ = types_model
    row = {"gridimage_id": 31, "embeddings": b64(np.ones(512)), "distance": "2"}
    replies = [Script(body=b""), {"rows": [], "sleep": 0.05}, {"rows": [row, row]}, {"rows": [row]}, {}]
    with QueueStandIn(replies) as queue:
        main(["label", "types", "--endpoint", queue.endpoint("types"), "--model", str(path), "--loops", "5", *FAST])
    assert len(queue.queries) == 5
    assert len(queue.posts) == 1 and [r["image_id"] for r in queue.posts[0]] == [31] * len(queue.posts[0])


def test_sigterm_finishes_the_batch_post_then_stops():
    calls = []

    def answer(reply, rows):
        calls.append(len(rows))
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the batch is being worked on
        return Answer([[{"image_id": r["gridimage_id"], "label": "None", "score": 0} for r in rows]])

    rows = [{"gridimage_id": i} for i in range(3)]
    with QueueStandIn([{"rows": rows}, {"rows": rows}], post_statuses=[503]) as queue:
        stopper = Stopper().install()
        try:
            client = QueueClient(queue.endpoint("clip"), 1, RetryPolicy(0.01, 0.05, 1.0), stopper)
            totals = serve(client, answer, limit=3, loops=0)
        finally:
            stopper.uninstall()
    assert calls == [3] and totals["batches"] == 1
    assert len(queue.posts) == 1 and len(queue.posts[0]) == 3  # posted (after a 503) before stopping


def test_unique_number_comes_from_a_stable_instance_id():
    assert instance_id({"KUBERNETES_POD_UID": "abc", "KUBERNETES_POD_NAME": "p"}) == "k8s-uid-abc"
    assert instance_id({"KUBERNETES_POD_NAME": "worker-1"}) == "k8s-pod-worker-1"
    assert unique_number("k8s-uid-abc") == int(hashlib.sha256(b"k8s-uid-abc").hexdigest(), 16) % 32
    assert unique_number() == unique_number()  # the container hostname: the same for the container's life
    assert with_query("http://h/l.php?model=clip&limit=9", limit=250) == "http://h/l.php?model=clip&limit=250"


def test_bad_endpoint_and_slot_are_clear_errors(types_model, capsys):
    path, _ = types_model
    assert main(["label", "types", "--endpoint", "ftp://x", "--model", str(path)]) == 2
    assert "http(s) URL" in capsys.readouterr().err
    assert main(["label", "types", "--endpoint", "http://127.0.0.1:9/q", "--model", str(path),
                 "--unique-number", "40"]) == 2
    assert "0..31" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, said", [
    ("--retry-base", "0", "--retry-base must be a positive finite number"),  # 0 s between empty replies: a spin
    ("--retry-base", "-1", "--retry-base must be a positive finite number"),
    ("--retry-cap", "nan", "--retry-cap must be a positive finite number"),
    ("--retry-cap", "0.001", "--retry-cap (0.001) must be at least --retry-base"),
    ("--timeout", "inf", "--timeout must be a positive finite number"),  # was an OverflowError traceback
    ("--threshold", "nan", "--threshold must be a probability"),  # was: every photo posted "None"
    ("--threshold", "1.5", "--threshold must be a probability"),
    ("--limit", "0", "--limit must be >= 1"),
    ("--loops", "-1", "--loops >= 0"),
    ("--workers", "0", "--workers must be >= 1"),  # was taken as one worker
])
def test_bad_numbers_are_refused_before_asking_the_queue(types_model, capsys, option, value, said):
    path, _ = types_model
    extra = [] if option == "--loops" else ["--loops", "1"]
    with QueueStandIn() as queue:  # nothing to label: a worker that took the option would run one idle round
        code = main(["label", "types", "--endpoint", queue.endpoint("types"), "--model", str(path), *FAST, *extra,
                     option, value])
        assert queue.queries == []
    err = capsys.readouterr().err
    assert code == 2 and said in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("option", ["--photo-max-mb", "--photo-deadline"])
def test_infinite_photo_bounds_are_refused_at_start(tmp_path, capsys, option):
    code = main(["label", "context", "--endpoint", "http://127.0.0.1:9/q?model=clip", "--run", str(tmp_path),
                 option, "inf"])  # checked before the run or the model is read: was an OverflowError traceback
    assert code == 2 and f"{option} must be a positive finite number" in capsys.readouterr().err


@pytest.mark.parametrize("endpoint, said", [
    ("http://127.0.0.1:99999/q?model=types", "Port out of range"),
    ("http://127.0.0.1:abc/q?model=types", "Port could not be cast"),
    ("http://exa mple.org/q?model=types", "invalid character"),
    ("http://alice:s3cret@127.0.0.1:99999/q?model=types&key=K3Y", "Port out of range"),
])
def test_an_endpoint_requests_cannot_send_is_refused_at_start(types_model, capsys, endpoint, said):
    path, _ = types_model  # such an endpoint was fetched, failed and retried for ever
    assert main(["label", "types", "--endpoint", endpoint, "--model", str(path), *FAST, "--loops", "1"]) == 2
    err = capsys.readouterr().err
    assert "--endpoint must be an http(s) URL" in err and said in err and len(err.strip().splitlines()) == 1
    assert "s3cret" not in err and "K3Y" not in err


def test_a_post_the_queue_cannot_take_for_an_unusable_url_is_saved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with QueueStandIn() as queue:
        client = QueueClient(queue.endpoint("types"), 1, RetryPolicy(0.01, 0.05, 1.0))
        client.endpoint = f"{queue.base}:99999/queue?model=types"  # as if it broke after the start
        with pytest.raises(Exception, match="the 1 records are saved in") as caught:
            client.post([{"image_id": 1, "label": "None", "score": 0}])
        assert "unusable URL" in str(caught.value)
    assert len(list(tmp_path.glob("label-unsent-*.json"))) == 1
