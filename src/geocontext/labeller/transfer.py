"""HTTP exchanges with bounds the other side cannot stretch: a total deadline, a size cap, an abort when
the worker is asked to stop, and, where a rule is given, a check of each address before connecting.

requests' timeout is per gap between bytes: a server that sends one byte every few seconds never trips
it, and a read blocked in the socket does not see a signal. So a watchdog thread shuts the sockets of
an exchange whose deadline passed, or that the worker wants stopped; the blocked read returns at once,
in any phase (headers or body), and the exchange says why. The sockets are found by hooking urllib3's
connection class (the only place a socket is made), mounted through a requests adapter. Not covered:
a DNS lookup and a TLS handshake, which only the per-read timeout bounds.

An exchange that fails says in which phase: "unreachable" before any reply (refused, reset, a name
that does not resolve, a timeout, a TLS failure), "cut" once the reply had begun, "certificate" when
the server's certificate is not trusted (retrying cannot fix that: pass --ca-file)."""
from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from collections.abc import Mapping
from dataclasses import dataclass

import requests
import urllib3
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

CHUNK = 64 * 1024
TICK = 0.05  # seconds between the watchdog's looks: how late a deadline or a stop may act
RETRY_STATUS = frozenset({408, 425, 429})  # besides every 5xx: the server asks us to come back later
# what a broken exchange can raise: requests' own errors, and urllib3 / http.client / socket errors that a
# streamed body lets through
BROKEN = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


class TransferError(Exception):
    """An exchange that gave no usable reply. `kind`: "stopped"; "unreachable" (no reply: refused, reset,
    timeout, TLS, no reply by the deadline); "cut" (the reply broke off); "deadline" (the reply came but
    not all of it in time); "certificate" (not trusted); "refused" (a rule said no), "not allowed" (the
    host, scheme or address is not one the worker may fetch from); "size" (over the cap); "status" (an
    HTTP status that retrying cannot fix); "unavailable" (a 5xx or 408/425/429: come back later)."""

    def __init__(self, why: str, kind: str):
        super().__init__(why)
        self.why, self.kind = why, kind


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]  # requests' case-insensitive dict
    content: bytes

    def text(self, n: int = 200) -> str:
        return self.content[:n].decode("utf-8", "replace")


class Transfer:
    """One exchange in flight: its deadline, whether a stop ends it, the rule its addresses must pass."""

    def __init__(self, deadline: float, seconds: float, stoppable: bool, address_ok=None):
        self.deadline, self.seconds, self.stoppable, self.address_ok = deadline, seconds, stoppable, address_ok
        self.why: str | None = None
        self.kind = ""
        self.replied = False  # the status line and headers came: a failure from now on is a cut reply


_current = threading.local()  # the Transfer the calling thread is making (connections are made in that thread)


class Watchdog:
    """One thread for all exchanges of a client: it shuts the sockets of those past their deadline, of the
    stoppable ones once `stop` is set, and of the others `grace` seconds after the stop (`stopped_at()`:
    time.monotonic() of the stop). It runs only while exchanges are in flight."""

    def __init__(self, stop: threading.Event, stopped_at=lambda: None, grace: float = float("inf")):
        self.stop, self.stopped_at, self.grace, self.lock = stop, stopped_at, grace, threading.Lock()
        self.live: set[Transfer] = set()
        self.owner: dict[socket.socket, Transfer] = {}  # a kept-alive socket belongs to its latest exchange
        self.thread: threading.Thread | None = None

    @contextmanager
    def watching(self, transfer: Transfer):
        with self.lock:
            self.live.add(transfer)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="transfer-watchdog", daemon=True)
                self.thread.start()
        _current.transfer = transfer
        try:
            yield transfer
        finally:
            _current.transfer = None
            with self.lock:
                self.live.discard(transfer)
                for sock in [s for s, t in self.owner.items() if t is transfer]:
                    del self.owner[sock]

    def attach(self, sock) -> None:
        transfer = getattr(_current, "transfer", None)
        if sock is None or transfer is None:
            return
        with self.lock:
            self.owner[sock] = transfer
            if transfer.why is not None:
                _shut(sock)

    def _abort(self, transfer: Transfer, why: str, kind: str) -> None:
        transfer.why, transfer.kind = why, kind
        for sock in [s for s, t in self.owner.items() if t is transfer]:
            _shut(sock)

    def _run(self) -> None:
        while True:
            with self.lock:
                if not self.live:
                    self.thread = None
                    return
                now, stopping = time.monotonic(), self.stop.is_set()
                late = stopping and now >= (self.stopped_at() or now) + self.grace
                for transfer in self.live:
                    if transfer.why is not None:
                        continue
                    if transfer.stoppable and stopping:
                        self._abort(transfer, "stopped", "stopped")
                    elif late:
                        self._abort(transfer, f"no reply {self.grace:g} s after the stop", "unreachable")
                    elif now >= transfer.deadline:
                        self._abort(transfer, f"no complete reply within {transfer.seconds:.3g} s", "deadline")
            time.sleep(TICK)


def _shut(sock) -> None:
    try:  # the base class's shutdown: an SSLSocket's own would drop its TLS state under a reading thread
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _Watched:
    """Mixin for urllib3's connections: connect only to addresses the exchange's rule allows, and hand
    every socket used to the watchdog."""

    watchdog_of: dict  # set on the classes made per adapter below

    def _new_conn(self):
        transfer = getattr(_current, "transfer", None)
        if transfer is not None and transfer.why is not None:
            raise TransferError(transfer.why, transfer.kind)
        if transfer is None or transfer.address_ok is None:
            return super()._new_conn()
        # Resolve once, judge every address, then connect to a judged address itself rather than to the
        # name: a second lookup (by the socket library) could answer differently, so with the pin no
        # separate DNS-rebinding check is needed.
        host = self._dns_host
        try:
            infos = socket.getaddrinfo(host, self.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise urllib3.exceptions.NameResolutionError(host, self, exc) from exc
        addresses = [info[4][0] for info in infos]
        allowed = [a for a in addresses if transfer.address_ok(a)]
        if not allowed:
            raise TransferError(f"host {host} is at {addresses[0]}, a loopback, private or link-local"
                                " address, and the endpoint is not (see --allow-photo-host)", "not allowed")
        for k, address in enumerate(allowed):  # in turn, as the socket library would ("localhost": ::1, then 127.0.0.1)
            try:
                self._dns_host = address  # urllib3 connects to _dns_host; TLS checks the name (reset below)
                return super()._new_conn()
            except urllib3.exceptions.NewConnectionError:
                if k == len(allowed) - 1:
                    raise
            finally:
                self._dns_host = host

    def connect(self):
        super().connect()
        _watchdog_of(self).attach(self.sock)

    def request(self, *args, **kwargs):
        _watchdog_of(self).attach(self.sock)  # a kept-alive connection: no connect() this time
        return super().request(*args, **kwargs)


def _watchdog_of(conn) -> Watchdog:
    return conn.watchdog_of["watchdog"]


class WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose connections report to `watchdog` (direct and through a proxy)."""

    def __init__(self, watchdog: Watchdog, **kwargs):
        box = {"watchdog": watchdog}  # urllib3's names: its error messages show them
        http_conn = type("HTTPConnection", (_Watched, urllib3.connection.HTTPConnection), {"watchdog_of": box})
        https_conn = type("HTTPSConnection", (_Watched, urllib3.connection.HTTPSConnection), {"watchdog_of": box})
        self.pools = {"http": type("HTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
                      "https": type("HTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})}
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self.pools

    def proxy_manager_for(self, proxy, **kwargs):
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):  # a SOCKS manager's pools make their own (SOCKS) connections
            manager.pool_classes_by_scheme = self.pools
        return manager


def watched_session(watchdog: Watchdog, trust_env: bool = True, ca_file: str | None = None,
                    agent: str = "geocontext-labeller") -> requests.Session:
    """A session whose exchanges the watchdog bounds; `ca_file`: the CA certificates to trust instead of
    the system's (sent with each request: with trust_env, requests would let REQUESTS_CA_BUNDLE win)."""
    session = requests.Session()
    session.trust_env = trust_env
    session.ca_file = ca_file
    session.headers["User-Agent"] = agent
    adapter = WatchedAdapter(watchdog, pool_connections=4, pool_maxsize=32)  # concurrent photo downloads
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def exchange(session: requests.Session, watchdog: Watchdog, method: str, url: str, *, deadline: float,
             cap: int, timeout: float, stoppable: bool, address_ok=None, **kwargs) -> Reply:
    """One request and its whole reply, read by `deadline` (time.monotonic()) and at most `cap` bytes
    (after decoding, so a compressed bomb stops too). Redirects are not followed: the caller judges them.
    Raises TransferError, never a requests exception."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TransferError("no time left for this request", "deadline")
    transfer = Transfer(deadline, left, stoppable, address_ok)
    gap = min(timeout, left)
    if getattr(session, "ca_file", None):
        kwargs["verify"] = session.ca_file
    with watchdog.watching(transfer):
        try:
            with session.request(method, url, stream=True, timeout=(gap, gap), allow_redirects=False, **kwargs) as reply:
                transfer.replied = True
                declared = reply.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise TransferError(f"body of {int(declared)} bytes, over the cap of {cap}", "size")
                body = bytearray()
                for chunk in reply.iter_content(CHUNK):
                    body += chunk
                    if len(body) > cap:
                        raise TransferError(f"body over the cap of {cap} bytes", "size")
                return Reply(reply.status_code, reply.headers, bytes(body))
        except TransferError:
            raise
        except Exception as exc:
            if transfer.why is not None:  # the watchdog cut it: whatever the library raised, this is why
                kind = "unreachable" if transfer.kind == "deadline" and not transfer.replied else transfer.kind
                raise TransferError(transfer.why, kind) from None
            untrusted = certificate_failure(exc)
            if untrusted:
                raise TransferError(f"certificate verify failed: {untrusted}", "certificate") from None
            if isinstance(exc, ValueError):  # InvalidURL, MissingSchema, InvalidSchema, urllib3's LocationParseError
                raise TransferError(f"unusable URL: {type(exc).__name__}: {str(exc)[:200]}", "refused") from None
            if isinstance(exc, BROKEN):
                kind = "cut" if transfer.replied else "unreachable"
                raise TransferError(f"{type(exc).__name__}: {_root(exc)[:200]}", kind) from None
            raise


def _root(exc: BaseException) -> str:
    """The innermost reason a library error wraps ("Failed to establish a new connection: [Errno 111]
    Connection refused"), not its whole chain with the pool's name and the URL twice."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None) or next((a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)),
                                                     None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith(("HTTPConnection(", "HTTPSConnection(")) else text


def untrusted(host: str, why: str) -> str:
    """The one line a certificate failure gets: retrying cannot fix it, the operator can."""
    return f"{host}: {why} (pass --ca-file with the certificate of the CA that signed the server's)"


def certificate_failure(exc: BaseException) -> str:
    """The reason ("self-signed certificate", "Hostname mismatch, ...") when `exc`, or an error it wraps
    (requests wraps urllib3's, which wraps ssl's), is a failed certificate check; else ""."""
    todo, seen = [exc], set()
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, ssl.SSLCertVerificationError):
            return str(err.verify_message or err.reason or err)
        todo += [err.__cause__, err.__context__, getattr(err, "reason", None)]
        todo += [a for a in getattr(err, "args", ()) if isinstance(a, BaseException)]
    return ""
