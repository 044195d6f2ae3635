"""Issue 29, item 2: a photo-host outage loses no photo. Refused connections, timeouts and 5xx on the
photo host leave the photos to the queue (never "Failed"), the worker backs off and says so once per
change of state; a photo the host keeps failing while serving the others is that photo's fault."""
from __future__ import annotations

import os
import signal
import threading
import time

from labeller_fixtures import by_id, context_setup  # noqa: F401  (a fixture)

from geocontext.bench.label_fleet import queue_photos
from geocontext.cli import main
from geocontext.labeller.standin import QueueStandIn


def _until(test, seconds: float = 60.0) -> bool:
    end = time.monotonic() + seconds
    while not test():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def test_an_outage_of_the_photo_host_leaves_every_photo_to_the_queue(context_setup, capsys):
    setup, demo = context_setup
    table = queue_photos(demo, 6, 800)
    with QueueStandIn(photos=demo, table=table, sleep=0) as queue:
        titled = lambda: sum(q.get("title") == "1" for q in list(queue.queries))  # noqa: E731  (batches tried)

        def operator():
            """The host refuses connections for two batches, answers 503 for every photo for two more, then
            serves again; once the queue is empty the worker is stopped."""
            _until(lambda: titled() >= 2)
            queue.photo_faults.update({p.thumb[len("/photos/"):]: "status:503" for p in table})
            queue.photo_host_up()
            _until(lambda: titled() >= 4)
            queue.photo_faults.clear()
            _until(lambda: not queue.php.left("clip"))
            os.kill(os.getpid(), signal.SIGTERM)

        queue.photo_host_down()
        thread = threading.Thread(target=operator, daemon=True)
        thread.start()
        code = main(["label", "context", "--endpoint", queue.endpoint("clip"), *setup, "--limit", "3"])
        thread.join(5)
    out = capsys.readouterr().out
    assert code == 0 and queue.php.left("clip") == []
    labels = by_id(queue.posts)
    assert sorted(labels) == [p.gridimage_id for p in table]
    assert not [r for records in labels.values() for r in records if r["label"] == "Failed"]
    assert out.count("photo host unreachable: ") == 1  # refused, then 503: one outage, one line
    assert "photo host unreachable: ConnectionError: [Errno 111] Connection refused (after 3 attempts)" in out
    assert out.count("photo host reachable again after") == 1
    assert "3 left for the queue" in out


def test_a_photo_the_host_fails_while_serving_the_others_is_failed_on_the_third_batch(context_setup, capsys):
    setup, demo = context_setup
    table = queue_photos(demo, 4, 850)
    with QueueStandIn(photos=demo, table=table, sleep=0, photo_faults={table[1].thumb[len("/photos/"):]: "status:503"}) as queue:
        assert main(["label", "context", "--endpoint", queue.endpoint("clip"), *setup, "--limit", "2", "--loops", "3"]) == 0
    out = capsys.readouterr().out
    labels = by_id(queue.posts)
    assert sorted(labels) == [850, 851, 852, 853]
    assert labels[851] == [{"image_id": 851, "label": "Failed", "score": -1}]
    assert "photo 851 failed: HTTP 503 (after 3 attempts) (3 batches running, while the host served other photos)" in out
    assert out.count("1 left for the queue") == 2 and "photo host unreachable" not in out
