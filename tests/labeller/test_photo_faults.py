"""`label context` against photo hosts that misbehave (issue 24, items 1, 4, 5 and 7): each bad photo is
answered "Failed" -1 with its reason and the rest of the batch is labelled; downloads are bounded in time,
size, scheme, redirects and hosts; SIGTERM stops a stalled download; embeddings go before labels."""
from __future__ import annotations

import re
import socket

import pytest
from labeller_fixtures import by_id, context_setup  # noqa: F401  (a fixture)

from geocontext.cli import main
from geocontext.labeller.photos import PhotoHosts, host_entry, public
from geocontext.labeller.queue import QueueClient, RetryPolicy
from geocontext.labeller.standin import HUGE, QueueStandIn, Script


def good_paths(demo_data, n: int) -> list[str]:
    return [p.relative_to(demo_data).as_posix() for p in sorted((demo_data / "train_images").rglob("*.jpg"))[:n]]


def rows(paths, first: int) -> list[dict]:
    return [{"gridimage_id": first + k, "title": f"photo {k}", "fullpath": p} for k, p in enumerate(paths)]


def localhost(queue) -> str:
    """The stand-in's photo prefix under another name for the same loopback host."""
    return f"http://localhost:{queue.server.server_address[1]}/photos/"


def label_context(queue, setup, *extra) -> int:
    return main(["label", "context", "--endpoint", queue.endpoint("clip"), *setup, *extra])


def test_bad_photos_fail_alone_with_their_reason_and_the_rest_is_labelled(context_setup, capsys):
    setup, demo = context_setup
    good = good_paths(demo, 3)
    faults = {"loop.jpg": "loop", "cut.jpg": "cut", "trickle.jpg": "trickle", "huge.jpg": "huge",
              "endless.jpg": "endless", "to-file.jpg": "redirect:file:///etc/passwd"}
    bad = [*faults, "missing.jpg"]
    first = rows([good[0], *bad, good[1]], 100)
    with QueueStandIn(photo_faults=faults, photos=demo) as queue:
        faults["to-localhost.jpg"] = f"redirect:{localhost(queue)}{good[2]}"
        bad.append("to-localhost.jpg")
        first.insert(2, {"gridimage_id": 99, "title": "redirected", "fullpath": "to-localhost.jpg"})
        photos = f"{queue.base}/photos/"
        queue.replies.extend([{"rows": first, "prefix": photos},
                              {"rows": rows([good[2]], 200), "prefix": "file:///"},  # InvalidSchema before
                              {"rows": rows([good[2]], 300), "prefix": ""},  # MissingSchema before
                              {"rows": rows([good[2]], 400), "prefix": localhost(queue)}])
        code = label_context(queue, setup, "--loops", "4", "--fetchers", "4", "--photo-deadline", "1",
                             "--photo-max-mb", "0.25")
    out = capsys.readouterr().out
    assert code == 0
    labels = by_id(queue.posts)
    assert sorted(labels) == sorted([r["gridimage_id"] for r in first] + [200, 300, 400])  # every photo answered, once
    goods = {first[0]["gridimage_id"], first[-1]["gridimage_id"]}
    assert sorted(by_id(queue.posts, "embeddings")) == sorted(goods)  # vectors for the good two only
    for image_id, records in labels.items():
        assert (records == [{"image_id": image_id, "label": "Failed", "score": -1}]) == (image_id not in goods)
    lines = dict(re.findall(r"photo (\d+) failed: (.*)", out))  # one line per failed photo, with its reason
    reasons = {"loop.jpg": "more than 5 redirects", "cut.jpg": "(after 3 attempts)",
               "trickle.jpg": "no complete reply within 1 s", "huge.jpg": f"body of {HUGE} bytes, over the cap",
               "endless.jpg": "body over the cap", "to-file.jpg": "not an http(s) URL", "missing.jpg": "HTTP 404",
               "to-localhost.jpg": "not the endpoint's host"}
    assert {int(i) for i in lines} == set(labels) - goods
    for row in first:
        if row["fullpath"] in reasons:
            assert reasons[row["fullpath"]] in lines[str(row["gridimage_id"])], (row, lines)
    for image_id, why in ((200, "not an http(s) URL"), (300, "not an http(s) URL"), (400, "not the endpoint's host")):
        assert why in lines[str(image_id)]
    assert queue.photo_requests.count("/photos/loop.jpg") == 6  # 1 + 5 redirects, not 30, and not retried
    assert not any(good[2] in path for path in queue.photo_requests)  # localhost was never asked


def test_a_listed_photo_host_is_fetched(context_setup):
    setup, demo = context_setup
    good = good_paths(demo, 1)
    with QueueStandIn(photos=demo) as queue:
        queue.replies.append({"rows": rows(good, 500), "prefix": localhost(queue)})
        assert label_context(queue, setup, "--loops", "1", "--allow-photo-host", "localhost") == 0
    assert by_id(queue.posts)[500][0]["label"] != "Failed"


def test_private_addresses_are_refused_unless_the_endpoint_is_on_one(demo_data):
    for address in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "100.64.0.1", "::1", "fe80::1%eth0",
                    "::ffff:127.0.0.1", "224.0.0.1", "0.0.0.0"):
        assert not public(address), address
    assert public("8.8.8.8") and public("2a00:1450:4009::1")
    photo = good_paths(demo_data, 1)[0]
    policy = RetryPolicy(0.01, 0.05, 2.0)
    with QueueStandIn(photos=demo_data) as queue:
        url = f"{queue.base}/photos/{photo}"
        # a public endpoint (its name resolves to a public address) that lists 127.0.0.1 as a photo host: the
        # name passes, the address does not
        remote = QueueClient("https://queue.example/labeler.json.php?model=clip", 1, policy)
        public_dns = lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 0))]  # noqa: E731
        remote.photos.hosts = PhotoHosts(remote.endpoint, ["127.0.0.1"], resolve=public_dns)
        data, why = remote.download(url)
        assert data is None and "loopback, private or link-local" in why
        assert queue.photo_requests == []  # refused before connecting
        local = QueueClient(queue.endpoint("clip"), 1, policy)  # the stand-in: an endpoint on loopback itself
        assert local.download(url)[0] is not None
    hosts = PhotoHosts("https://www.geograph.org.uk/_scripts/labeler.json.php", ["*.geograph.org.uk", "cdn.example"])
    assert hosts.refusal("https://s0.geograph.org.uk/a.jpg") == hosts.refusal("http://CDN.example:8080/a.jpg") == ""
    assert "--allow-photo-host evil.example" in hosts.refusal("https://evil.example/a.jpg")
    assert "http(s)" in hosts.refusal("file:///etc/passwd") and "http(s)" in hosts.refusal("ftp://www.geograph.org.uk/a")
    with pytest.raises(ValueError, match="no scheme"):
        host_entry("https://cdn.example/")


def test_sigterm_stops_a_stalled_download_and_posts_what_is_done(context_setup, capsys):
    setup, demo = context_setup
    good = good_paths(demo, 2)
    batch = rows([good[0], "stall.jpg", good[1]], 600)
    with QueueStandIn(photo_faults={"stall.jpg": "stop"}, photos=demo) as queue:  # "stop": SIGTERM, then a trickle
        queue.replies.append({"rows": batch, "prefix": f"{queue.base}/photos/"})
        code = label_context(queue, setup, "--fetchers", "1", "--photo-deadline", "15")
    assert code == 0
    assert sorted(by_id(queue.posts)) == [600]  # done before the signal: posted; the rest left for the queue
    assert by_id(queue.posts)[600][0]["label"] != "Failed"
    out = capsys.readouterr().out
    assert "2 left for the queue" in out and "photos labelled" in out


def test_embeddings_go_first_and_a_lost_labels_post_loses_nothing(context_setup, tmp_path, monkeypatch):
    """The labels post is never accepted (as if the worker died after the embeddings post): the photos
    come back, and the embeddings, resent with the same idempotency key, are stored once."""
    monkeypatch.chdir(tmp_path)
    setup, demo = context_setup
    batch = rows(good_paths(demo, 3), 700)
    busy = Script(body=b'{"error": "database busy"}')
    with QueueStandIn(photos=demo, post_statuses=[200] + [busy] * 8, dedupe=True) as queue:
        queue.replies.extend([{"rows": batch, "prefix": f"{queue.base}/photos/"}] * 2)
        assert label_context(queue, setup, "--loops", "2") == 0
    assert len(queue.posts) == 2  # batch 1's embeddings, batch 2's labels (its embeddings recognised)
    assert all("embeddings" in r for r in queue.posts[0]) and all("label" in r for r in queue.posts[1])
    keys = [header for header, _ in queue.post_keys]
    assert queue.post_attempts == 11 and keys[9] == keys[0] != keys[10]
    assert {i: len(v) for i, v in by_id(queue.posts, "embeddings").items()} == {700: 2, 701: 2, 702: 2}  # image, title
    assert sorted(by_id(queue.posts)) == [700, 701, 702]
    assert len(list(tmp_path.glob("label-unsent-*.json"))) == 1  # batch 1's labels, kept
