"""Issue 29, items 1 and 8: the workers against a stand-in that answers as Geograph's labeler.json.php
does (its replies checked first, request by request, against the facts read from the published code)."""
from __future__ import annotations

import base64
import http.client
import json

import numpy as np
from labeller_fixtures import FAST, b64, by_id, context_setup, types_checkpoint  # noqa: F401  (fixtures)

from geocontext import __version__
from geocontext.bench.label_fleet import queue_photos
from geocontext.cli import main
from geocontext.labeller.labeler_php import Photo
from geocontext.labeller.standin import QueueStandIn


def ask(queue, query: str, source: str = "127.0.0.1", body: bytes | None = None, agent: str = "probe"):
    """(status, body) of one request to the stand-in's queue from the client address `source`."""
    conn = http.client.HTTPConnection("127.0.0.1", queue.server.server_address[1], source_address=(source, 0), timeout=5)
    conn.request("POST" if body is not None else "GET", f"/queue?{query}", body=body, headers={"User-Agent": agent})
    reply = conn.getresponse()
    out = reply.status, reply.read()
    conn.close()
    return out


def ids_of(body: bytes) -> list[int]:
    return [int(r["gridimage_id"]) for r in json.loads(body)["rows"]]


def test_the_standin_answers_as_labeler_php_does(demo_data):
    table = [Photo(i, f"Caf\u00e9 {i}" if i != 5 else "", f"/photos/t{i}.jpg", f"/photos/f{i}.jpg") for i in range(1, 601)]
    with QueueStandIn(table=table) as queue:
        assert ask(queue, "limit=5") == (200, b'{"error":"No model"}')
        status, body = ask(queue, "model=clip&limit=5")
        reply = json.loads(body)
        assert status == 200 and reply["prefix"] == queue.photo_base and reply["sleep"] == 3.0
        assert reply["rows"][0] == {"gridimage_id": "1", "user_id": "1", "realname": "A. Photographer",
                                    "fullpath": "/photos/t1.jpg"}  # MySQL's strings; no title without title=1
        titled = json.loads(ask(queue, "model=clip&limit=5&title=1")[1])["rows"]
        assert [r.get("title") for r in titled] == ["Cafe 1", "Cafe 2", "Cafe 3", "Cafe 4", None]  # ASCII; "" dropped
        assert not any("fullpath" in r for r in titled)
        assert json.loads(ask(queue, "model=clip&limit=1&full=1")[1])["rows"][0]["fullpath"] == "/photos/f1.jpg"
        # offsets: per client IP, 200 apart, kept; offset=0 is PHP-empty ("not given"), offset=00 is 0
        assert ids_of(ask(queue, "model=clip&limit=2", "127.0.0.2")[1]) == [201, 202]
        assert ids_of(ask(queue, "model=clip&limit=2", "127.0.0.3")[1]) == [401, 402]
        assert ids_of(ask(queue, "model=clip&limit=2&offset=0", "127.0.0.2")[1]) == [201, 202]
        assert ids_of(ask(queue, "model=clip&limit=2&offset=00", "127.0.0.2")[1]) == [1, 2]
        assert ids_of(ask(queue, "model=types&limit=2", "127.0.0.2")[1]) == [1, 2]  # offsets are per model
        assert len(ids_of(ask(queue, "model=clip&limit=1000")[1])) == 250
        assert 40 <= len(ids_of(ask(queue, "model=clip")[1])) <= 60
        assert ask(queue, "model=clip&offset=900")[1] == b""  # nothing there: an empty body
        # posts: one line per record, REPLACE INTO (2 for a replaced row; a null label is a new row each time)
        records = [{"image_id": 1, "label": "Coastal", "score": 0.9}, {"image_id": "2x", "label": "None", "score": 0},
                   {"image_id": 1, "type": "image", "embeddings": "AAAA"}]
        assert ask(queue, "model=clip", body=json.dumps(records).encode()) == (200, b"1: 1\n2: 1\n1: 1\n")
        assert ask(queue, "model=clip", body=json.dumps(records).encode()) == (200, b"1: 2\n2: 2\n1: 1\n")
        assert ids_of(ask(queue, "model=clip&limit=2&offset=00")[1]) == [3, 4]  # labelled photos are not served
        assert ask(queue, "model=auto", body=b"[]") == (200, b'{"error":"Something went horribly wrong"}')
        assert b"Warning" in ask(queue, "model=clip", body=b"not json")[1]
        assert queue.php.labels[(1, "clip", "Coastal")]["user_agent"] == "probe"


def test_context_worker_finishes_the_queue_with_titles_and_its_user_agent(context_setup, capsys):
    """Item 1: posts accepted from the server's text lines; titles joined from a title=1 request (without
    it every title would be "": the same title vector for every photo). Item 8: the User-Agent."""
    setup, demo = context_setup
    titles = ["Church tower", "", "Harbour at dusk", "Church tower", "Mill pond"]
    table = queue_photos(demo, 5, 900, titles)
    with QueueStandIn(photos=demo, table=table, sleep=0) as queue:
        assert main(["label", "context", "--endpoint", queue.endpoint("clip"), *setup, "--loops", "2",
                     "--limit", "3"]) == 0
        assert queue.php.left("clip") == []
    out = capsys.readouterr().out
    assert "not accepted:" not in out and "5 photos labelled" in out
    vectors = {r["image_id"]: np.frombuffer(base64.b64decode(r["embeddings"]), "<f4")
               for records in by_id(queue.posts, "embeddings").values() for r in records if r["type"] == "title"}
    same = lambda a, b: np.allclose(vectors[a], vectors[b], atol=1e-4)  # noqa: E731  (other batches: rounding)
    assert same(900, 903) and not any(same(a, b) for a, b in ((900, 901), (900, 902), (901, 902), (902, 904)))
    fetches = [q for q in queue.queries]
    assert [q.get("title") for q in fetches] == [None, "1", None, "1"]
    assert all("offset" not in q for q in fetches)  # one worker: the server's offset for its IP
    agent = f"geocontext/{__version__} (label context; run=run; choice=linear/threshold; encoder=tiny)"
    assert set(queue.post_agents) == {agent} and len(queue.post_agents) == 4  # labels, then embeddings, per batch
    assert {row["user_agent"] for row in queue.php.labels.values()} == {agent}
    assert {h["User-Agent"] for h in queue.photo_headers} == {agent}


def test_the_kits_former_json_replies_stay_an_option(context_setup, capsys):
    """Done-when: the kit's old JSON replies stay a stand-in option, and the worker still accepts them
    (`{"status": "ok"}` for a stored post, `{}` for an empty queue); a JSON reply that says otherwise is not."""
    setup, demo = context_setup
    with QueueStandIn(photos=demo, table=queue_photos(demo, 4, 900), sleep=0, json_replies=True) as queue:
        assert ask(queue, "model=clip&offset=900")[1] == b"{}"
        assert main(["label", "context", "--endpoint", queue.endpoint("clip"), *setup, "--loops", "2"]) == 0
        assert queue.php.left("clip") == [] and "4 photos labelled" in capsys.readouterr().out
        assert ask(queue, "model=clip", body=json.dumps([{"image_id": 1, "label": "Coastal", "score": 1}]).encode()) \
            == (200, b'{"status": "ok"}')
    from geocontext.labeller.replies import refusal
    from geocontext.labeller.transfer import Reply

    records = [{"image_id": 1}]
    assert refusal(Reply(200, {}, b'{"status": "ok"}'), records) == refusal(Reply(200, {}, b'{"ok": true}'), records) == ""
    assert "status: 'queued'" in refusal(Reply(200, {}, b'{"status": "queued"}'), records)
    assert "ok: False" in refusal(Reply(200, {}, b'{"ok": false}'), records)


def test_types_worker_against_the_real_server_and_its_errors(types_checkpoint, demo_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with QueueStandIn(table=queue_photos(demo_data, 7, 500), sleep=0) as queue:
        base = ["label", "types", "--checkpoint", types_checkpoint, *FAST]
        assert main([*base, "--endpoint", queue.endpoint("types"), "--limit", "4", "--loops", "4"]) == 0
        assert queue.php.left("types") == []
        out = capsys.readouterr().out
        assert "7 photos labelled" in out and out.count("the queue has nothing for now") == 1
        assert {r["user_agent"] for r in queue.php.labels.values()} == {
            f"geocontext/{__version__} (label types; checkpoint=model.pth; sha256={_sha(types_checkpoint)})"}
        # no model in the endpoint: the server says so (200, JSON); the worker stops at once
        assert main([*base, "--endpoint", f"{queue.base}/queue?x=1"]) == 2
        err = capsys.readouterr().err
        assert "the server says error: 'No model' (the endpoint needs ?model=NAME" in err and err.count("\n") == 1
        # model=auto: served as model=type, but the server refuses the post: saved, exit 2
        queue.php.photos.append(Photo(600, embeddings=b64(np.ones(512)), distance="8", thumb="/photos/x.jpg"))
        assert main([*base, "--endpoint", queue.endpoint("auto")]) == 2
        err = capsys.readouterr().err
        assert "Something went horribly wrong" in err and "model=auto" in err and "saved in" in err
    assert len(list(tmp_path.glob("label-unsent-*.json"))) == 1


def _sha(path) -> str:
    import hashlib
    from pathlib import Path

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
