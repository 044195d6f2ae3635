"""Credentials reach the queue, never the log nor the photo hosts (issue 24, item 6)."""
from __future__ import annotations

import base64
import socket

from labeller_fixtures import FAST, RecordingStopper, type_row, types_checkpoint  # noqa: F401

from geocontext.cli import main
from geocontext.labeller.credentials import Secrets, masked_url
from geocontext.labeller.queue import QueueClient, RetryPolicy
from geocontext.labeller.standin import QueueStandIn, Script

SECRETS = ("pa55w0rd", "K3y-v4lue", "tt99x", "tok-s3cr3t-123", "hdr-s3cret")


def with_secrets(endpoint: str, userinfo: bool = True) -> str:
    endpoint = endpoint.replace("http://", "http://worker:pa55w0rd@") if userinfo else endpoint
    return endpoint + "&key=K3y-v4lue&api_token=tt99x"


def test_secrets_go_to_the_queue_and_never_to_the_log(types_checkpoint, capsys, monkeypatch):
    monkeypatch.setenv("GEOGRAPH_TOKEN", "tok-s3cr3t-123")
    replies = [Script(status=500, body=b"oops key=K3y-v4lue"), {"rows": [type_row(1)]}]
    with QueueStandIn(replies, post_statuses=[503]) as queue:
        endpoint = with_secrets(queue.endpoint("types"), userinfo=False)  # user:password would be Authorization
        code = main(["label", "types", "--endpoint", endpoint, "--model", types_checkpoint, "--loops", "1",
                     "--token-env", "GEOGRAPH_TOKEN", "--header", "X-Api-Key: hdr-s3cret", *FAST])
    assert code == 0 and len(queue.posts) == 1
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "retry 1" in text and "key=***" in text and "api_token=***" in text
    assert not [s for s in SECRETS if s in text]
    for headers in queue.queue_headers:  # fetches and posts
        assert headers["Authorization"] == "Bearer tok-s3cr3t-123" and headers["X-Api-Key"] == "hdr-s3cret"


def test_a_connection_error_naming_the_url_is_masked_and_photos_get_no_credentials(demo_data, capsys):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connection refused, and requests' message names the URL
    stopper = RecordingStopper()
    stopper.wait = lambda seconds: len(stopper.waits.append(seconds) or stopper.waits) >= 2
    headers = {"X-Api-Key": "hdr-s3cret"}
    client = QueueClient(with_secrets(f"http://127.0.0.1:{dead}/q?model=clip"), 1, RetryPolicy(0.01, 0.05, 1.0), stopper,
                         headers=headers)
    assert client.fetch(5) is None  # stopped after two retries
    out = capsys.readouterr().out
    assert "fetch: ConnectionError: [Errno 111] Connection refused; retry 1" in out
    assert not [s for s in SECRETS if s in out]
    photo = next((demo_data / "train_images").rglob("*.jpg")).relative_to(demo_data).as_posix()
    with QueueStandIn(photos=demo_data) as queue:
        client = QueueClient(with_secrets(queue.endpoint("clip")), 1, RetryPolicy(0.01, 0.05, 1.0), headers=headers)
        assert client.download(f"{queue.base}/photos/{photo}").data is not None
    assert not {"Authorization", "X-Api-Key"} & set(queue.photo_headers[0])
    assert queue.queue_headers == []  # the download asked the photo host only


def test_masking_and_bad_options(types_checkpoint, capsys, monkeypatch):
    assert (masked_url("https://u:p@h.example/x.php?model=clip&key=K&access_token=T&limit=5")
            == "https://***@h.example/x.php?model=clip&key=***&access_token=***&limit=5")
    scrub = Secrets(["s3cr3t%/"]).scrub
    assert scrub("at s3cr3t%/ and s3cr3t%25%2F, Password=abc;d //me:pw@host") == "at *** and ***, Password=*** //***@host"
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    base = ["label", "types", "--endpoint", "http://127.0.0.1:9/q", "--model", types_checkpoint]
    assert main([*base, "--token-env", "NO_SUCH_TOKEN"]) == 2
    assert main([*base, "--header", "X-Api-Key hdr-s3cret"]) == 2
    monkeypatch.setenv("GEOGRAPH_TOKEN", "tok-s3cr3t-123")
    both = ["--endpoint", "http://u:pa55w0rd@127.0.0.1:9/q", "--token-env", "GEOGRAPH_TOKEN"]
    assert main([*base, *both]) == 2  # the last --endpoint wins
    err = capsys.readouterr().err
    assert "--token-env NO_SUCH_TOKEN" in err and "expected 'Name: value'" in err and "use one of them" in err
    assert not [s for s in SECRETS if s in err]
    assert "Traceback" not in err


def test_secrets_are_masked_by_value_whatever_their_form(types_checkpoint, capsys, monkeypatch):
    """Issue 29, item 7: an error body echoing the Authorization header (its base64 too); a password with an
    unencoded "@" (the host is after the last one); a query secret holding ";" or ","."""
    basic = base64.b64encode(b"worker:pa@55w0rd").decode()
    bearer = base64.urlsafe_b64encode(b"Bearer tok-s3cr3t-123").decode().rstrip("=")
    echoes = [Script(status=401, body=f"denied. You sent Authorization: Basic {basic}; x{basic[:-2]}".encode()),
              Script(status=401, body=f"denied. You sent {bearer} (Authorization: Bearer tok-s3cr3t-123)".encode())]
    with QueueStandIn(echoes) as queue:
        endpoint = queue.endpoint("types").replace("http://", "http://worker:pa@55w0rd@") + "&key=K3y;v4l,ue"
        assert main(["label", "types", "--endpoint", endpoint, "--model", types_checkpoint, *FAST]) == 2
        monkeypatch.setenv("GEOGRAPH_TOKEN", "tok-s3cr3t-123")
        assert main(["label", "types", "--endpoint", queue.endpoint("types"), "--model", types_checkpoint, *FAST,
                     "--token-env", "GEOGRAPH_TOKEN"]) == 2
    assert queue.queue_headers[0]["Authorization"] == f"Basic {basic}"  # the password reached the queue whole
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "HTTP 401 on fetch" in text and "http://***@127.0.0.1" in text and "key=***" in text
    for leak in ("55w0rd", basic[:-2], bearer, "v4l", ",ue", "tok-s3cr3t"):
        assert leak not in text, leak


def test_a_malformed_token_or_an_empty_variable_name_stops_at_start(types_checkpoint, capsys, monkeypatch):
    base = ["label", "types", "--endpoint", "http://127.0.0.1:9/q?model=types", "--model", types_checkpoint]
    monkeypatch.setenv("GEOGRAPH_TOKEN", "first-line\nsecond-line")
    assert main([*base, "--token-env", "GEOGRAPH_TOKEN"]) == 2
    monkeypatch.setenv("GEOGRAPH_TOKEN", "tok\x07bell")
    assert main([*base, "--token-env", "GEOGRAPH_TOKEN"]) == 2
    assert main([*base, "--token-env", ""]) == 2
    assert main([*base, "--header", "X-Api-Key: one\rtwo"]) == 2
    err = capsys.readouterr().err
    assert "--token-env GEOGRAPH_TOKEN: the token contains a newline" in err
    assert "--token-env GEOGRAPH_TOKEN: the token contains a control character" in err
    assert "--token-env: expected the name of an environment variable" in err
    assert "--header number 1 (X-Api-Key): the value contains a newline" in err
    assert err.count("\n") == 4 and not any(s in err for s in ("first-line", "second", "bell", "one", "two"))


def test_masking_a_line_twice_keeps_the_text_after_a_masked_url():
    secrets = Secrets.of("http://h/q?model=clip&key=ab;cd", {})
    shown = masked_url("http://h/q?model=clip&key=ab;cd")
    assert secrets.scrub(f"{shown}: HTTP 403 on fetch") == "http://h/q?model=clip&key=***: HTTP 403 on fetch"
    assert masked_url("see http://h/q?token=abc: HTTP 403") == "see http://h/q?token=*** HTTP 403"  # unknown
