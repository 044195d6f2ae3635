"""Issue 29, item 4: a worker is out well within Kubernetes' default 30 s grace period after SIGTERM,
however long its batch would take: what is embedded is posted, the rest left to the queue, nothing
posted twice; posts after a stop get a few seconds, then are saved."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from labeller_fixtures import by_id, context_setup  # noqa: F401  (a fixture)

from geocontext.bench.label_fleet import SLOW_MODEL, queue_photos
from geocontext.labeller.policy import STOP_POSTS_SECONDS
from geocontext.labeller.queue import QueueClient, RetryPolicy, Stopper
from geocontext.labeller.standin import QueueStandIn
from geocontext.labeller.worker import Answer, serve

SRC = Path(__file__).resolve().parents[2] / "src"
SECONDS_A_PHOTO = 0.15  # the slow model: 240 photos take 36 s


def test_sigterm_ends_a_long_batch_within_seconds_posting_what_is_embedded(context_setup, tmp_path):
    setup, demo = context_setup
    script = tmp_path / "slow_worker.py"
    script.write_text(SLOW_MODEL.format(seconds=SECONDS_A_PHOTO))
    table = queue_photos(demo, 240, 1000)
    with QueueStandIn(photos=demo, table=table, sleep=0) as queue:
        worker = subprocess.Popen([sys.executable, str(script), "label", "context", "--endpoint", queue.endpoint("clip"),
                                   *setup, "--limit", "240", "--batch-size", "8"], cwd=tmp_path,
                                  env={**os.environ, "PYTHONPATH": str(SRC)}, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            end = time.monotonic() + 120
            while len(queue.photo_requests) < len(table) and time.monotonic() < end and worker.poll() is None:
                time.sleep(0.05)
            time.sleep(3 * 8 * SECONDS_A_PHOTO)  # a few model batches into the 36 s of embedding
            worker.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            out, _ = worker.communicate(timeout=60)
            took = time.monotonic() - signalled
        finally:
            worker.kill()
        left = queue.php.left("clip")
    assert worker.returncode == 0, out
    assert took < 10, (took, out)
    labels = by_id(queue.posts)
    assert 8 <= len(labels) < 240 and len(labels) % 8 == 0  # whole model batches, the rest not embedded
    assert sorted(labels) + left == [p.gridimage_id for p in table]  # the rest is the queue's again
    posts_of = [{r["image_id"] for r in body if "label" in r} for body in queue.posts]
    assert sum(len(ids) for ids in posts_of) == len(labels)  # nothing posted twice
    assert sorted(by_id(queue.posts, "embeddings")) == sorted(labels)
    assert f"{240 - len(labels)} left for the queue" in out


def test_after_a_stop_a_failing_post_gets_its_seconds_then_is_saved(tmp_path, monkeypatch, capsys):
    """Before: the post was retried its 8 times, waits and all (about 25 s here), after the signal."""
    monkeypatch.chdir(tmp_path)
    stopper = Stopper()

    def answer(reply, rows):
        stopper.stop()  # the signal comes while the batch is worked on
        return Answer([[{"image_id": r["gridimage_id"], "label": "None", "score": 0} for r in rows]])

    with QueueStandIn([{"rows": [{"gridimage_id": i} for i in range(3)]}], post_statuses=[503] * 8) as queue:
        client = QueueClient(queue.endpoint("clip"), 1, RetryPolicy(base=2.0, cap=4.0, timeout=2.0), stopper)
        totals = serve(client, answer, limit=3, loops=0)
    assert 2 <= queue.post_attempts < 8 and queue.posts == []
    assert totals["unsent"] == 3 and len(list(tmp_path.glob("label-unsent-*.json"))) == 1
    assert f"not accepted within {STOP_POSTS_SECONDS:g} s of the stop: saved in" in capsys.readouterr().out
