"""Issue 29, item 5: N workers behind one IP share the queue without doing each photo N times. The
server serves one IP from one offset (unique_number is not read), so each worker asks from its own
offset; near the end of the queue they step down so the queue is finished."""
from __future__ import annotations

import pytest
from labeller_fixtures import FAST, type_row, types_checkpoint  # noqa: F401  (a fixture)

from geocontext.cli import main
from geocontext.labeller.batches import Batches, RecentIds
from geocontext.labeller.fleet import Share
from geocontext.labeller.labeler_php import Photo
from geocontext.labeller.queue import QueueClient, RetryPolicy
from geocontext.labeller.standin import QueueStandIn

LIMIT = 10


def test_the_share_comes_from_the_options_or_the_environment():
    assert Share.of(None, None, {}) == Share(1, 0, False) and Share(1, 0, False).offsets(LIMIT) == [None]
    assert Share.of(3, 2, {}).offsets(LIMIT) == [2 * 2 * 3 * LIMIT, 2 * LIMIT, "00"]
    assert Share.of(3, 0, {}).offsets(LIMIT) == ["00"]  # an explicit 0: offset=0 would mean "not given" in PHP
    assert Share.of(None, None, {"GEOCONTEXT_LABEL_WORKERS": "4", "JOB_COMPLETION_INDEX": "3"}) == Share(4, 3, True)
    assert Share.of(4, None, {"JOB_COMPLETION_INDEX": "1"}) == Share(4, 1, True)
    for workers, index, env, why in ((None, 1, {}, "--worker-index needs --workers"),
                                     (None, None, {"JOB_COMPLETION_INDEX": "2"}, "JOB_COMPLETION_INDEX=2 is set"),
                                     (2, 2, {}, "--worker-index must be in 0..1"),
                                     (None, None, {"GEOCONTEXT_LABEL_WORKERS": "two"}, "expected a whole number")):
        with pytest.raises(ValueError, match=why):
            Share.of(workers, index, env)


def run_two(queue, shares) -> tuple[int, int, int]:
    """Two workers behind one IP, each batch in hand while the other asks and posts (the worst overlap):
    (photos in hand at both at once while the queue was longer than the workers' stride, the same near
    the end, rounds)."""
    clients = [QueueClient(queue.endpoint("types"), 1, RetryPolicy(0.01, 0.01, 2.0)) for _ in shares]
    batches = [Batches(c, LIMIT, None, share) for c, share in zip(clients, shares)]
    held, overlap, tail, rounds = [set(), set()], set(), set(), 0
    while queue.php.left("types") and rounds < 200:
        for k in (0, 1):
            rounds += 1
            if held[k]:  # post what this worker holds, then ask again
                records = [{"image_id": i, "label": "None", "score": 0} for i in sorted(held[k])]
                assert clients[k].post(records)
            long = len(queue.php.left("types")) > 2 * 2 * LIMIT
            batch = batches[k].next(RecentIds())
            held[k] = {r["gridimage_id"] for r in batch.rows}
            (overlap if long else tail).update(held[0] & held[1])
    return len(overlap), len(tail), rounds


def test_two_workers_behind_one_ip_hold_no_photo_twice_and_finish_the_queue():
    table = [Photo(i) for i in range(1, 301)]
    with QueueStandIn(table=table, sleep=0) as queue:
        overlap, tail, rounds = run_two(queue, [Share(2, 0, True), Share(2, 1, True)])
        assert queue.php.left("types") == [] and overlap == 0 and tail <= 2 * 2 * LIMIT  # the end: at most a stride
    with QueueStandIn(table=table, sleep=0) as queue:  # as before: both at the server's offset for the IP
        overlap, _, _ = run_two(queue, [Share(), Share()])
    assert overlap >= 200


def test_the_options_reach_the_queue_and_bad_ones_stop_at_once(types_checkpoint, capsys, monkeypatch):
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    monkeypatch.delenv("GEOCONTEXT_LABEL_WORKERS", raising=False)
    table = [Photo(i, embeddings=type_row(i)["embeddings"], distance="8") for i in range(1, 101)]
    with QueueStandIn(table=table, sleep=0) as queue:
        base = ["label", "types", "--endpoint", queue.endpoint("types"), "--checkpoint", types_checkpoint, *FAST]
        assert main([*base, "--workers", "3", "--worker-index", "1", "--limit", "5", "--loops", "1"]) == 0
        assert queue.queries[0]["offset"] == str(2 * 3 * 5) and len(queue.posts) == 1
        assert [r["image_id"] for r in queue.posts[0]][0] == 31
        assert main([*base, "--worker-index", "1"]) == 2
        monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")
        assert main(base) == 2
    err = capsys.readouterr().err
    assert "--worker-index needs --workers N" in err and "JOB_COMPLETION_INDEX=2 is set (a Kubernetes Indexed Job)" in err
    assert len(queue.queries) == 1  # the bad options stopped the worker before it asked
