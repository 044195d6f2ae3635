"""A loopback stand-in for Geograph's labeller queue (labeler.json.php) that also serves the photos: the
tests and the worker benchmark drive the real workers against it (no internet).

GET  /queue?...    the next scripted reply: a dict (sent as JSON), or Script(delay=s, status=n, body=b)
                   for a slow, failing or raw reply; {} once the script is used up
POST /queue        answered with the next scripted status (default 200); bodies answered 2xx are kept
GET  /photos/PATH  the file under `photos`, 404 when missing
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Script:
    reply: dict | None = None
    delay: float = 0.0
    status: int = 200
    body: bytes | None = None


@dataclass
class QueueStandIn:
    replies: list = field(default_factory=list)
    photos: Path | None = None
    post_statuses: list = field(default_factory=list)  # e.g. [500]: the first post fails
    post_delays: list = field(default_factory=list)  # seconds to stall before answering each post
    posts: list = field(default_factory=list)  # bodies the server took (2xx)
    post_attempts: int = 0
    queries: list = field(default_factory=list)  # each fetch's query fields
    photo_requests: list = field(default_factory=list)

    def __post_init__(self):
        self.replies, self.post_statuses, self.post_delays = deque(self.replies), deque(self.post_statuses), deque(self.post_delays)
        self.lock = threading.Lock()

    def __enter__(self) -> QueueStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def do_GET(self):
                parts = urlsplit(self.path)
                if parts.path.startswith("/photos/"):
                    standin.photo_requests.append(parts.path)
                    path = standin.photos / unquote(parts.path[len("/photos/"):])
                    if path.is_file():
                        return self._send(200, path.read_bytes(), "image/jpeg")
                    return self._send(404, b"not found", "text/plain")
                with standin.lock:
                    standin.queries.append({k: v[0] for k, v in parse_qs(parts.query).items()})
                    item = standin.replies.popleft() if standin.replies else {}
                item = item if isinstance(item, Script) else Script(item)
                time.sleep(item.delay)
                body = item.body if item.body is not None else json.dumps(item.reply).encode()
                self._send(item.status, body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with standin.lock:
                    standin.post_attempts += 1
                    status = standin.post_statuses.popleft() if standin.post_statuses else 200
                    delay = standin.post_delays.popleft() if standin.post_delays else 0.0
                time.sleep(delay)
                if status < 300:
                    standin.posts.append(json.loads(body))
                self._send(status, json.dumps({"status": "ok" if status < 300 else "error"}).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def endpoint(self, model: str) -> str:
        return f"{self.base}/queue?model={model}"
