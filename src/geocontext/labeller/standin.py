"""A loopback stand-in for Geograph's labeller queue (labeler.json.php) and its photo host: the tests and
the worker benchmarks drive the real workers against it (no internet). By default it answers as the real
server does (labeler_php.py: text lines for a stored post, errors as 200 JSON, an empty body when
nothing is left, rows per client IP or `offset`, `title` only with title=1); it misbehaves on demand, as
real servers and photo hosts do.

GET  /queue?...    the next scripted reply, if any: a dict (sent as JSON), or Script(delay=s, status=n,
                   body=b, cut=True) for a slow, failing, raw or cut-off reply; then the server's own answer
                   from `table` (labeler_php.Photo rows; none: an empty body)
POST /queue        the next scripted item of `post_statuses`, if any: a status or a Script (its body; a
                   scripted error or body means nothing was stored); otherwise stored in the server's label
                   table and answered as it answers. With `json_replies`, the kit's former invention
                   instead: posts answered {"status": "ok"}, an exhausted script {}. With `dedupe`, a post
                   whose Idempotency-Key was stored before is not stored again
GET  /photos/PATH  (on the queue's port and on the photo host's, `photo_base`) the file under `photos`, 404
                   when missing, or the fault `photo_faults[PATH]` names: "loop" (redirects to itself),
                   "redirect:URL", "cut" (the connection drops mid-body), "trickle" (a byte every
                   `trickle_gap` s), "huge" (declares 300 MB, sends zeros), "endless" (zeros without a
                   length), "stop" (SIGTERM to this process, then trickles), "status:N" (answers HTTP N);
                   a fault reply ends after FAULT_SECONDS or FAULT_BYTES, whichever comes first
The photo host can be taken down (connection refused) and brought back: photo_host_down(), photo_host_up().
`tls` / `photo_tls`: (certificate file, key file) to serve the queue / the photo host over HTTPS."""
from __future__ import annotations

import json
import os
import signal
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from .labeler_php import LabelerPhp

HUGE = 300 * 2**20
FAULT_SECONDS = 20.0  # the longest a trickling or endless reply goes on (a worker that never gives up ends a test)
FAULT_BYTES = 32 * 2**20  # and the most it sends


@dataclass
class Script:
    reply: dict | None = None
    delay: float = 0.0
    status: int = 200
    body: bytes | None = None
    cut: bool = False  # send half the body, then drop the connection


@dataclass
class QueueStandIn:
    replies: list = field(default_factory=list)
    photos: Path | None = None
    post_statuses: list = field(default_factory=list)  # e.g. [500]: the first post fails; or Script(body=...)
    post_delays: list = field(default_factory=list)  # seconds to stall each post's reply (after storing it)
    photo_faults: dict = field(default_factory=dict)  # path under /photos/ -> fault (see the module docstring)
    trickle_gap: float = 0.2
    dedupe: bool = False  # store a post once per Idempotency-Key
    table: list = field(default_factory=list)  # labeler_php.Photo rows the server hands out
    sleep: float | None = None  # the replies' `sleep` instead of the server's ceil(sqrt(limit)) (tests that must not wait)
    json_replies: bool = False
    tls: tuple | None = None
    photo_tls: tuple | None = None
    posts: list = field(default_factory=list)  # bodies the server stored
    post_agents: list = field(default_factory=list)  # the User-Agent of each stored post
    post_models: list = field(default_factory=list)  # and its model (the query's)
    post_attempts: int = 0
    post_keys: list = field(default_factory=list)  # (Idempotency-Key header, idempotency_key field) of each post
    queries: list = field(default_factory=list)  # each fetch's query fields
    queue_headers: list = field(default_factory=list)  # the headers of each queue request
    photo_requests: list = field(default_factory=list)
    photo_headers: list = field(default_factory=list)

    def __post_init__(self):
        self.replies, self.post_statuses = deque(self.replies), deque(self.post_statuses)
        self.post_delays = deque(self.post_delays)
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.stored_keys: set = set()
        self.server = self.photo_server = None
        self.php = LabelerPhp(self.table, sleep=self.sleep)

    def __enter__(self) -> QueueStandIn:
        self.server = self._serve(0, self.tls)
        self.photo_server = self._serve(0, self.photo_tls)
        self.php.static_host = self.photo_base
        return self

    def _serve(self, port: int, tls) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        server.daemon_threads = True
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def __exit__(self, *exc):
        self.closing.set()
        for server in (self.server, self.photo_server):
            if server is not None:
                server.shutdown()
                server.server_close()

    def photo_host_down(self) -> None:
        """The photo host stops listening: connections to it are refused."""
        self._photo_port = self.photo_server.server_address[1]
        self.photo_server.shutdown()
        self.photo_server.server_close()

    def photo_host_up(self) -> None:
        self.photo_server = self._serve(self._photo_port, self.photo_tls)

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"

    @property
    def photo_base(self) -> str:
        port = getattr(self, "_photo_port", None) or self.photo_server.server_address[1]
        return f"{'https' if self.photo_tls else 'http'}://127.0.0.1:{port}"

    def endpoint(self, model: str) -> str:
        return f"{self.base}/queue?model={model}"

    def answer_get(self, query: dict, client: str) -> Script:
        with self.lock:
            item = self.replies.popleft() if self.replies else None
        if item is not None:
            return item if isinstance(item, Script) else Script(item)
        body = self.php.get(query, client)
        return Script({}) if self.json_replies and not body else Script(body=body)

    def answer_post(self, query: dict, body: bytes, headers) -> Script:
        key = (headers.get("Idempotency-Key"), query.get("idempotency_key"))
        with self.lock:
            self.post_attempts += 1
            self.post_keys.append(key)
            self.queue_headers.append(dict(headers))
            item = self.post_statuses.popleft() if self.post_statuses else 200
            delay = self.post_delays.popleft() if self.post_delays else 0.0
        item = item if isinstance(item, Script) else Script(status=item)
        if item.body is None and item.status < 300:
            reply = self.php.post(query, body, headers.get("User-Agent", ""))
            stored = not reply.startswith((b"{", b"<"))
            with self.lock:
                if stored and not (self.dedupe and key[0] in self.stored_keys):
                    self.posts.append(json.loads(body))
                    self.post_agents.append(headers.get("User-Agent", ""))
                    self.post_models.append(query.get("model"))
                    self.stored_keys.add(key[0])
            item.body = json.dumps({"status": "ok"}).encode() if self.json_replies and stored else reply
        elif item.body is None:
            item.body = json.dumps({"status": "error"}).encode()
        time.sleep(delay)  # stored, but the reply comes late: a client that gave up sends it again
        return item


def _handler(standin: QueueStandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def handle(self):
            if isinstance(self.connection, ssl.SSLSocket):
                try:
                    self.connection.do_handshake()
                except (ssl.SSLError, OSError):
                    return  # the client refused our certificate: nothing to serve
            super().handle()

        def _send(self, status: int, body: bytes, kind: str = "application/json", cut: bool = False, headers=()):
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body[:len(body) // 2] if cut else body)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, ValueError):
                pass  # the client gave up (a timeout test), or refused our certificate
            if cut:
                self.close_connection = True

        def _stream(self, length: int | None, piece: bytes, gap: float) -> None:
            """Send `piece` every `gap` s until the client goes, the limits pass or the stand-in closes."""
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            end, sent = time.monotonic() + FAULT_SECONDS, 0
            try:
                while time.monotonic() < end and sent < FAULT_BYTES and not standin.closing.is_set():
                    sent += len(piece)
                    self.wfile.write(piece)
                    self.wfile.flush()
                    if gap:
                        time.sleep(gap)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

        def _photo(self, path: str):
            fault = standin.photo_faults.get(path, "")
            if fault == "loop":
                return self._send(302, b"", "text/plain", headers=[("Location", self.path)])
            if fault.startswith("redirect:"):
                return self._send(302, b"", "text/plain", headers=[("Location", fault[len("redirect:"):])])
            if fault.startswith("status:"):
                return self._send(int(fault[len("status:"):]), b"busy", "text/plain")
            if fault == "cut":
                return self._send(200, b"\xff\xd8" + b"\0" * 998, "image/jpeg", cut=True)
            if fault == "stop":
                os.kill(os.getpid(), signal.SIGTERM)
            if fault in ("trickle", "stop"):
                return self._stream(1000, b"\0", standin.trickle_gap)
            if fault == "huge":
                return self._stream(HUGE, b"\0" * 2**16, 0.0)
            if fault == "endless":
                return self._stream(None, b"\0" * 2**16, 0.0)
            file = standin.photos / path if standin.photos else None
            if file is not None and file.is_file():
                return self._send(200, file.read_bytes(), "image/jpeg")
            return self._send(404, b"not found", "text/plain")

        def do_GET(self):
            parts = urlsplit(self.path)
            if parts.path.startswith("/photos/"):
                standin.photo_requests.append(parts.path)
                standin.photo_headers.append(dict(self.headers))
                return self._photo(unquote(parts.path[len("/photos/"):]))
            query = dict(parse_qsl(parts.query, keep_blank_values=True))  # the last of a repeated field, as $_GET
            with standin.lock:
                standin.queries.append(query)
                standin.queue_headers.append(dict(self.headers))
            item = standin.answer_get(query, self.client_address[0])
            time.sleep(item.delay)
            body = item.body if item.body is not None else json.dumps(item.reply).encode()
            self._send(item.status, body, cut=item.cut)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            item = standin.answer_post(query, body, self.headers)
            self._send(item.status, item.body, "text/html", cut=item.cut)

    return Handler
