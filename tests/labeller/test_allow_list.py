"""Issue 29, item 3: the host the allow-list judges is the host connected to. A URL that parsers read
differently (urlsplit takes the host after the last "@"; urllib3 ends it at a backslash and decodes
percent-escapes) is refused, as the queue's photo URL (the worker stops: exit 2) and as a redirect (that
photo is Failed); the other host is never asked."""
from __future__ import annotations

import pytest
from labeller_fixtures import by_id, context_setup  # noqa: F401  (a fixture)
from test_photo_faults import good_paths, rows

from geocontext.cli import main
from geocontext.labeller.photos import PhotoHosts
from geocontext.labeller.standin import QueueStandIn

# {other}: a host not allowed (the second stand-in, as localhost); {port}: the endpoint's stand-in
SHAPES = {
    "backslash": ("http://{other}\\@127.0.0.1:{port}/photos/", "holds a backslash"),
    "userinfo": ("http://{other}@127.0.0.1:{port}/photos/", "carries userinfo"),
    "percent-encoded host": ("http://loc%61lhost:{other_port}/photos/", "percent-encoded host"),
}


def shape(text: str, queue, other) -> str:
    port, other_port = queue.server.server_address[1], other.server.server_address[1]
    return text.format(other=f"localhost:{other_port}", port=port, other_port=other_port)


def test_each_shape_is_refused_by_the_rule():
    hosts = PhotoHosts("http://127.0.0.1:8080/queue?model=clip")
    assert hosts.refusal("http://127.0.0.1:9/photos/a.jpg") == ""
    for name, (text, why) in SHAPES.items():
        url = text.format(other="localhost:9", port=8080, other_port=9) + "a.jpg"
        assert why in hosts.refusal(url), name
    # a tab or newline: urlsplit drops it, so the host it reads is not the text's (not sendable in a Location)
    assert "space or control character" in hosts.refusal("http://127.0.0.1:8080/photos/\ta.jpg")


@pytest.mark.parametrize("name", list(SHAPES))
def test_a_url_parsers_disagree_on_never_reaches_the_other_host(context_setup, capsys, name):
    setup, demo = context_setup
    text, why = SHAPES[name]
    good = good_paths(demo, 2)
    with QueueStandIn(photos=demo) as other, QueueStandIn(photos=demo) as queue:
        url = shape(text, queue, other)
        queue.replies.append({"rows": rows(good[:1], 100), "prefix": url})  # the queue's own photo URL
        assert main(["label", "context", "--endpoint", queue.endpoint("clip"), *setup, "--loops", "1"]) == 2
        err = capsys.readouterr().err
        assert why in err and err.count("\n") == 1
        queue.photo_faults["bounce.jpg"] = f"redirect:{url}{good[1]}"  # a redirect to it
        queue.replies.append({"rows": rows(["bounce.jpg", good[0]], 200), "prefix": f"{queue.base}/photos/"})
        assert main(["label", "context", "--endpoint", queue.endpoint("clip"), *setup, "--loops", "1"]) == 0
    assert other.photo_requests == [] and other.queries == []
    labels = by_id(queue.posts)
    assert labels[200] == [{"image_id": 200, "label": "Failed", "score": -1}] and labels[201][0]["label"] != "Failed"
    line = next(line for line in capsys.readouterr().out.splitlines() if "photo 200 failed" in line)
    assert "refused: the URL" in line and why in line
