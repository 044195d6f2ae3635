"""A loopback stand-in for the Kaggle API, so tests can drive the real `kaggle` CLI without the internet.

How the CLI (kaggle 2.2.4, kagglesdk 0.1.37) is pointed here:
- KAGGLE_API_ENVIRONMENT=LOCALHOST: the CLI then builds its client with --local, and kagglesdk's
  KaggleEnv.LOCAL sends every call to http://localhost/api/v1/<service>/<method> (kaggle_env.py,
  kaggle_http_client.py), plain HTTP instead of https://api.kaggle.com.
- HTTP_PROXY=http://127.0.0.1:<port> (NO_PROXY empty): requests honours it, so those calls, and the
  upload PUT to the createUrl handed out here, reach this server in proxy form on an ephemeral port
  (no port 80, no root, parallel runs do not clash). HTTPS_PROXY points here too, and CONNECT is
  refused, so an https call could not get out either.
- `network_guard_env` adds a sitecustomize that refuses, and logs, any socket connection or name
  lookup that is not loopback, in every Python process of the test (geocontext and the CLI).
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

KERNELS = "/api/v1/kernels.KernelsApiService/"
COMPETITIONS = "/api/v1/competitions.CompetitionApiService/"


@dataclass
class Call:
    method: str
    path: str
    headers: dict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class KaggleStandIn:
    calls: list[Call] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)

    def __enter__(self) -> "KaggleStandIn":
        standin = self

        class Handler(_Handler):
            owner = standin

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict:
        """What points the Kaggle CLI at this stand-in (merged into an otherwise clean environment)."""
        return {"KAGGLE_API_ENVIRONMENT": "LOCALHOST", "HTTP_PROXY": self.url, "http_proxy": self.url,
                "HTTPS_PROXY": self.url, "https_proxy": self.url, "NO_PROXY": "", "no_proxy": ""}

    def to(self, method_name: str) -> list[Call]:
        return [c for c in self.calls if c.path.endswith("/" + method_name)]

    def respond(self, call: Call) -> tuple[int, dict]:
        path = call.path
        if call.method == "PUT" and path.startswith("/upload/"):
            self.uploads[path.rsplit("/", 1)[1]] = call.body
            return 200, {}
        if call.method != "POST":
            return 405, {"code": 405, "message": f"stand-in: {call.method} {path} not handled"}
        if path == KERNELS + "SaveKernel":
            slug = call.json["slug"]
            return 200, {"ref": f"/code/{slug}", "url": f"http://localhost/code/{slug}", "versionNumber": 1,
                         "kernelId": 1}
        if path == COMPETITIONS + "StartSubmissionUpload":
            token = f"blob-token-{len(self.uploads) + 1}"
            return 200, {"token": token, "createUrl": f"http://localhost/upload/{token}"}
        if path == COMPETITIONS + "CreateSubmission":
            return 200, {"message": f"Successfully submitted to {call.json['competitionName']}", "ref": 1}
        if path == COMPETITIONS + "GetSubmissionLimits":
            return 200, {"numToday": 1, "numTotal": 1, "numAllowedNow": 4}
        return 404, {"code": 404, "message": f"stand-in: {path} not handled"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: KaggleStandIn

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        call = Call(self.command, urlsplit(self.path).path, dict(self.headers), self._read_body())
        self.owner.calls.append(call)
        status, payload = self.owner.respond(call)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _handle

    def do_CONNECT(self) -> None:
        self.owner.calls.append(Call("CONNECT", self.path, dict(self.headers), b""))
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True


GUARD = '''\
"""Test network guard: only loopback connections and lookups; anything else is refused and logged."""
import os
import socket

_LOG = os.environ["NETWORK_GUARD_LOG"]


def _loopback(host):
    host = host.decode() if isinstance(host, bytes) else str(host)
    return host in ("localhost", "::1") or host.startswith("127.")


def _refuse(what):
    with open(_LOG, "a") as log:
        log.write(what + "\\n")
    raise OSError(f"network guard: {what} refused (only loopback in this test)")


_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        _refuse(f"connect {address!r}")
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        _refuse(f"connect {address!r}")
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if host is not None and not _loopback(host):
        _refuse(f"lookup {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
'''


def network_guard_env(folder: Path) -> dict:
    """Environment that loads the guard into every Python started with it; its log is folder/refused.log."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(GUARD)
    log = folder / "refused.log"
    log.write_text("")
    return {"PYTHONPATH": str(folder), "NETWORK_GUARD_LOG": str(log)}
