"""A loopback stand-in for Geograph's labeller queue (labeler.json.php) that also serves the photos: the
tests and the worker benchmark drive the real workers against it (no internet). It misbehaves on demand,
as real servers and photo hosts do.

GET  /queue?...    the next scripted reply: a dict (sent as JSON), or Script(delay=s, status=n, body=b,
                   cut=True) for a slow, failing, raw or cut-off reply; {} once the script is used up
POST /queue        answered with the next scripted item of `post_statuses`: a status (default 200) or a
                   Script (its body instead of {"status": "ok"}; a scripted body means nothing was stored);
                   with `dedupe`, a post whose Idempotency-Key was stored before is not stored again
GET  /photos/PATH  the file under `photos`, 404 when missing, or the fault `photo_faults[PATH]` names:
                   "loop" (redirects to itself), "redirect:URL", "cut" (the connection drops mid-body),
                   "trickle" (a byte every `trickle_gap` s), "huge" (declares 300 MB, sends zeros),
                   "endless" (zeros without a length), "stop" (SIGTERM to this process, then trickles);
                   a fault reply ends after FAULT_SECONDS or FAULT_BYTES, whichever comes first
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

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
    photo_faults: dict = field(default_factory=dict)  # fullpath -> fault (see the module docstring)
    trickle_gap: float = 0.2
    dedupe: bool = False  # store a post once per Idempotency-Key, as Geograph's side should
    posts: list = field(default_factory=list)  # bodies the server stored
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

    def __enter__(self) -> QueueStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json", cut: bool = False, headers=()):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(body[:len(body) // 2] if cut else body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)
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
                with standin.lock:
                    standin.queries.append({k: v[0] for k, v in parse_qs(parts.query).items()})
                    standin.queue_headers.append(dict(self.headers))
                    item = standin.replies.popleft() if standin.replies else {}
                item = item if isinstance(item, Script) else Script(item)
                time.sleep(item.delay)
                body = item.body if item.body is not None else json.dumps(item.reply).encode()
                self._send(item.status, body, cut=item.cut)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                field = parse_qs(urlsplit(self.path).query).get("idempotency_key", [None])[0]
                key = (self.headers.get("Idempotency-Key"), field)
                with standin.lock:
                    standin.post_attempts += 1
                    standin.post_keys.append(key)
                    standin.queue_headers.append(dict(self.headers))
                    item = standin.post_statuses.popleft() if standin.post_statuses else 200
                    delay = standin.post_delays.popleft() if standin.post_delays else 0.0
                item = item if isinstance(item, Script) else Script(status=item)
                if item.status < 300 and item.body is None:
                    with standin.lock:
                        if not (standin.dedupe and key[0] in standin.stored_keys):
                            standin.posts.append(json.loads(body))
                            standin.stored_keys.add(key[0])
                time.sleep(delay)  # stored, but the reply comes late: a client that gave up sends it again
                reply = item.body
                if reply is None:
                    reply = json.dumps({"status": "ok" if item.status < 300 else "error"}).encode()
                self._send(item.status, reply, cut=item.cut)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def endpoint(self, model: str) -> str:
        return f"{self.base}/queue?model={model}"
