"""Issue 29, item 6: --ca-file for the queue and the photo hosts alike; a certificate the worker does not
trust is permanent: one line naming the host and the reason in full, exit 2, no photo answered "Failed".
A real loopback HTTPS server with a self-signed certificate made here (openssl)."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from labeller_fixtures import FAST, by_id, context_setup, label_types, type_row, types_checkpoint  # noqa: F401

from geocontext.bench.label_fleet import queue_photos
from geocontext.cli import main
from geocontext.labeller.standin import QueueStandIn


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """(certificate, key) of a self-signed certificate for 127.0.0.1 and localhost."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not found: it makes the test's certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_an_untrusted_queue_certificate_stops_at_once_and_ca_file_trusts_it(certificate, types_checkpoint, capsys,
                                                                          monkeypatch):
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with QueueStandIn([{"rows": [type_row(1)]}], tls=certificate) as queue:
        assert label_types(queue, types_checkpoint) == 2  # no --loops: before, it retried for ever
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert ("error: 127.0.0.1: certificate verify failed: self-signed certificate (pass --ca-file with the"
                " certificate of the CA that signed the server's)") in err
        assert queue.queries == []  # refused in the handshake: nothing was asked
        assert label_types(queue, types_checkpoint, "--loops", "1", "--ca-file", certificate[0]) == 0
    assert sorted(by_id(queue.posts)) == [1]


def test_an_untrusted_photo_host_fails_no_photo_and_ca_file_trusts_it(certificate, context_setup, capsys, monkeypatch):
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    setup, demo = context_setup
    with QueueStandIn(photos=demo, table=queue_photos(demo, 3, 700), photo_tls=certificate, sleep=0) as queue:
        base = ["label", "context", "--endpoint", queue.endpoint("clip"), *setup, "--loops", "2"]
        assert main(base) == 2
        err = capsys.readouterr().err
        assert "photo host 127.0.0.1: certificate verify failed: self-signed certificate (pass --ca-file" in err
        assert err.count("\n") == 1 and queue.posts == []  # nothing "Failed"
        assert main([*base, "--ca-file", certificate[0]]) == 0
        assert queue.php.left("clip") == []
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])  # the environment's bundle reaches the photos too
        queue.php.photos += queue_photos(demo, 1, 800)
        assert main(base) == 0
        assert queue.php.left("clip") == []
    assert not [r for records in by_id(queue.posts).values() for r in records if r["label"] == "Failed"]


def test_a_ca_file_that_is_not_pem_is_refused_at_start(types_checkpoint, tmp_path, capsys):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with QueueStandIn() as queue:
        assert label_types(queue, types_checkpoint, "--ca-file", str(bad)) == 2
        assert label_types(queue, types_checkpoint, "--ca-file", str(tmp_path / "missing.pem")) == 2
    err = capsys.readouterr().err
    assert err.count(f"--ca-file {bad}: expected a readable file of PEM CA certificates") == 1
    assert "missing.pem: expected a readable file" in err and queue.queries == []
