"""`label types` (and the shared loop) against a queue that misbehaves (issue 24, items 1, 2, 3, 5, 7): cut
replies are retried, a post counts only when its reply says it was stored, replies with nothing new back
off instead of spinning, unusable ids are skipped and counted, a resent post carries its idempotency key."""
from __future__ import annotations

import json

from labeller_fixtures import RecordingStopper, by_id, label_types, type_row, types_checkpoint  # noqa: F401

from geocontext.labeller.queue import QueueClient, RetryPolicy
from geocontext.labeller.labeler_php import FOREACH_WARNING
from geocontext.labeller.standin import QueueStandIn, Script
from geocontext.labeller.worker import Answer, serve

BUSY = Script(body=b'{"error": "database busy"}')


def test_a_cut_or_unusable_queue_reply_is_retried_like_a_timeout(types_checkpoint):
    rows = [type_row(1), type_row(2)]
    replies = [Script({"rows": rows}, cut=True), Script(body=b"<html>busy</html>"), Script(body=b'["rows"]'), {"rows": rows}]
    with QueueStandIn(replies) as queue:
        assert label_types(queue, types_checkpoint, "--loops", "1") == 0
    assert len(queue.queries) == 4 and sorted(by_id(queue.posts)) == [1, 2]


def test_a_post_counts_only_when_the_reply_says_it_was_stored(types_checkpoint, capsys):
    html = Script(body=b"<html><body>Service unavailable</body></html>")
    refusals = [BUSY, html, Script(body=b'{"ok": false}'), Script(body=b'{"status": "failed"}'), Script(body=b"[]")]
    with QueueStandIn([{"rows": [type_row(1), type_row(2)]}], post_statuses=refusals) as queue:
        assert label_types(queue, types_checkpoint, "--loops", "1") == 0
    assert queue.post_attempts == 6 and len(queue.posts) == 1
    out = capsys.readouterr().out
    assert "database busy" in out and "neither one '<id>: <n>' line per record nor JSON" in out
    assert "2 photos labelled" in out


def test_the_real_servers_lines_are_a_stored_post_and_nothing_less(tmp_path, monkeypatch, capsys):
    """Issue 29 item 1: Geograph's server answers a stored post with one `<id>: <n>` line per record (the
    stand-in's own reply, the last one here); a PHP warning, fewer lines, another id or a count of 0 is
    not a stored post."""
    monkeypatch.chdir(tmp_path)
    refusals = [Script(body=FOREACH_WARNING), Script(body=b"1: 1\n"), Script(body=b"1: 1\n7: 1\n"),
                Script(body=b"1: 1\n2: 0\n")]
    answer = lambda reply, rows: Answer([[{"image_id": r["gridimage_id"], "label": "None", "score": 0}  # noqa: E731
                                          for r in rows]])
    with QueueStandIn([{"rows": [{"gridimage_id": 1}, {"gridimage_id": 2}]}], post_statuses=refusals) as queue:
        client = QueueClient(queue.endpoint("types"), 1, RetryPolicy(0.01, 0.01, 2.0), RecordingStopper())
        totals = serve(client, answer, limit=5, loops=1)
    assert queue.post_attempts == 5 and queue.posts == [[{"image_id": i, "label": "None", "score": 0} for i in (1, 2)]]
    assert totals["photos"] == 2 and totals["unsent"] == 0
    out = capsys.readouterr().out
    for why in ("neither one '<id>: <n>' line per record nor JSON ('<br />", "1 '<id>: <n>' lines for 2 records",
                "line 2 is '7: 1', expected image 2", "line 2 is '2: 0': the record was not stored"):
        assert why in out, why
    assert not list(tmp_path.glob("label-unsent-*.json"))


def test_a_post_never_accepted_is_saved_and_its_photos_are_labelled_again(types_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = [type_row(1), type_row(2)]
    with QueueStandIn([{"rows": rows}, {"rows": rows}], post_statuses=[BUSY] * 8) as queue:
        assert label_types(queue, types_checkpoint, "--loops", "2") == 0
    assert queue.post_attempts == 9 and len(queue.posts) == 1  # 8 refused, then batch 2's post stored
    assert sorted(by_id(queue.posts)) == [1, 2]  # re-served rows were labelled, not skipped as already answered
    saved = list(tmp_path.glob("label-unsent-*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text()) == queue.posts[0]
    out = capsys.readouterr().out
    assert "already answered" not in out and "2 photos labelled" in out and "2 not accepted" in out


def test_replies_with_nothing_new_wait_at_least_the_floor_and_back_off(capsys):
    row = {"gridimage_id": 9}
    replies = [{"rows": [row]}, {"rows": [row], "sleep": 0}, {"rows": [row, row]}, {"rows": [{"gridimage_id": True}]},
               {"rows": [{"gridimage_id": "abc"}], "sleep": 0}, {}, {"sleep": 0}, {"rows": []}]
    stopper = RecordingStopper()  # records the waits instead of sleeping them
    with QueueStandIn(replies) as queue:
        client = QueueClient(queue.endpoint("types"), 1, RetryPolicy(base=0.5, cap=60.0, timeout=2.0), stopper, seed=0)
        totals = serve(client, lambda reply, rows: Answer([[{"image_id": r["gridimage_id"], "label": "None", "score": 0}
                                                            for r in rows]]), limit=5, loops=len(replies))
    assert totals["photos"] == 1 and len(queue.posts) == 1
    assert len(stopper.waits) == 7 and min(stopper.waits) >= 0.5  # a floor, even when the reply says sleep 0
    assert stopper.waits[-1] >= 0.5 * 2**6 * 0.5  # and longer while replies bring nothing new
    out = capsys.readouterr().out
    assert out.count("nothing new to label") == 3  # repeats, unusable ids, empty: one line per change, not per GET
    assert out.count("skipped as unusable: gridimage_id True") == 1 and "'abc'" not in out


def test_unusable_ids_are_skipped_and_counted_never_coerced(types_checkpoint, capsys):
    ids = [True, -5, "abc", None, 900500.7, "42", 7, "7", 2**63]
    rows = [type_row(i) for i in ids] + [{"title": "no id"}, "not a row"]
    rows.append({"gridimage_id": 8, "embeddings": "not*base64!", "distance": "8"})
    with QueueStandIn([{"rows": rows}]) as queue:
        assert label_types(queue, types_checkpoint, "--loops", "1") == 0
    labels = by_id(queue.posts)
    assert sorted(labels) == [7, 8, 42]  # true never became 1, nor 900500.7 900500; "7" repeats 7
    assert labels[8] == [{"image_id": 8, "label": "Failed", "score": -1}]
    out = capsys.readouterr().out
    assert "8 rows skipped as unusable" in out and "1 already answered" in out and "8 unusable ids" in out
    assert "photo 8 failed: embeddings are not valid base64" in out


def test_a_resent_post_carries_the_same_idempotency_key(types_checkpoint):
    """The first post is stored but answered after the worker gave up; the resend is recognised by its key."""
    with QueueStandIn([{"rows": [type_row(1)]}], post_delays=[1.0], dedupe=True) as queue:
        assert label_types(queue, types_checkpoint, "--loops", "1", "--timeout", "0.3") == 0
    assert queue.post_attempts == 2
    (header, field), (header2, field2) = queue.post_keys
    assert header == field == header2 == field2 and len(header) == 32
    assert len(queue.posts) == 1


def test_a_wait_longer_than_the_retry_cap_is_said(capsys):
    """The server's `sleep` replaces the backoff (at most an hour); one that long is said, not silent."""
    stopper = RecordingStopper()
    with QueueStandIn([{"rows": [{"gridimage_id": 9}], "sleep": 1e300}]) as queue:
        client = QueueClient(queue.endpoint("types"), 1, RetryPolicy(base=0.5, cap=60.0, timeout=2.0), stopper, seed=0)
        serve(client, lambda reply, rows: Answer([[{"image_id": 9, "label": "None", "score": 0}]]), limit=5, loops=1)
    assert stopper.waits == [3600.0]
    assert "the server asks for a wait of 3600 s (more than --retry-cap 60 s)" in capsys.readouterr().out
