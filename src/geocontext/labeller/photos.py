"""Photo downloads: which photo URLs a worker fetches, and the fetch itself within a deadline and a cap.

The queue names each photo (`prefix` + `fullpath`), so a queue that misbehaves, or one taken over, could
point the workers anywhere: file:// paths, the cloud's metadata address, a service on the worker's own
network. So only http(s) is fetched, from the endpoint's host or the hosts the operator lists
(--allow-photo-host), following at most MAX_REDIRECTS redirects, each judged the same way; and a
loopback, private or link-local address is connected to only when the endpoint itself is on one (a
local queue, like the tests' stand-in). The host judged is the host connected to: a URL that parsers
could read differently (a backslash, userinfo, a percent-encoded host, control characters) is refused.

Each download ends in one of: the bytes; STOPPED (left for the queue); PHOTO, a fault of that photo (a
4xx, over the cap, a body too slow or cut after the attempts, a redirect loop or a redirect the rules
refuse: answered "Failed"); HOST, a fault of the host (refused, reset, timeout, TLS, 5xx: the photo is
left for the queue); FATAL, one the operator must fix (the queue's photo URL is not allowed, the
certificate is not trusted: the worker stops)."""
from __future__ import annotations

import ipaddress
import random
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from urllib3.util import parse_url

from .credentials import masked_url
from .transfer import RETRY_STATUS, TransferError, Watchdog, exchange, untrusted, watched_session

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
STOPPED, PHOTO, HOST, FATAL = "stopped", "photo", "host", "fatal"  # how a download can end (module docstring)
RETRIED = frozenset({"unreachable", "unavailable", "cut"})  # tried again within the photo's attempts and deadline
OF_HOST = frozenset({"unreachable", "unavailable"})


def public(address: str) -> bool:
    """A globally routable unicast address (not loopback, private, link-local, shared, reserved, multicast)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope (fe80::1%eth0) is not part of the address
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def host_entry(text: str) -> str:
    """An --allow-photo-host value: a host name or address, or .domain / *.domain for all its subdomains."""
    entry = text.strip().lower()
    entry = "." + entry[2:] if entry.startswith("*.") else entry
    name = entry.lstrip(".")
    try:
        ipaddress.ip_address(name)
        return entry
    except ValueError:
        pass
    if not name or any(c in name for c in "/:@?#* ") or ".." in name:
        raise ValueError(f"--allow-photo-host {text!r}: expected a host name such as s0.geograph.org.uk, or"
                         " .geograph.org.uk for the domain and all its subdomains (no scheme, port or path)")
    return entry


class PhotoHosts:
    """The rule a photo URL and the addresses it leads to must pass."""

    def __init__(self, endpoint: str, allowed=(), resolve=socket.getaddrinfo):
        self.endpoint_host = (urlsplit(endpoint).hostname or "").lower()
        entries = [host_entry(a) for a in allowed]
        self.names = {self.endpoint_host} | {e for e in entries if not e.startswith(".")}
        self.domains = tuple(e for e in entries if e.startswith("."))
        self.resolve = resolve
        self._local_endpoint: bool | None = None

    def refusal(self, url: str) -> str:
        """"" when `url` may be fetched, else why not."""
        shown = masked_url(url)[:200]
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            connected = parse_url(url)  # how requests (urllib3) reads it: the host it connects to
        except ValueError:  # e.g. an unclosed [IPv6 bracket, a control character in the host
            return f"unusable URL: {shown!r}"
        if parts.scheme.lower() not in ("http", "https") or (connected.scheme or "").lower() != parts.scheme.lower():
            return f"not an http(s) URL: {shown!r}"
        ambiguous = _ambiguity(url, parts.netloc)
        if ambiguous:
            return f"refused: the URL {ambiguous}, which URL parsers read differently: {shown!r}"
        if host != (connected.host or "").lower().strip("[]"):
            return f"refused: parsers disagree on the host of {shown!r} ({host} or {connected.host})"
        if not host:
            return f"no host in {shown!r}"
        if host in self.names or any(host.endswith(d) or host == d[1:] for d in self.domains):
            return ""
        return (f"host {host} is not the endpoint's host ({self.endpoint_host}); to fetch photos from it, add"
                f" --allow-photo-host {host}")

    def address_ok(self, address: str) -> bool:
        return public(address) or self.endpoint_is_local()

    def endpoint_is_local(self) -> bool:
        """Whether the endpoint itself is on a non-public address (resolved once, on first need)."""
        if self._local_endpoint is None:
            try:
                infos = self.resolve(self.endpoint_host, None, type=socket.SOCK_STREAM)
            except OSError:
                return False  # unknown for now: judge strictly, and look again next time
            self._local_endpoint = any(not public(info[4][0]) for info in infos)
        return self._local_endpoint


def _ambiguity(url: str, netloc: str) -> str:
    """What in `url` parsers could read differently ("" if nothing): urlsplit takes the host after the
    last "@" and keeps a backslash or "%2e" in it; urllib3 ends the host at a backslash and decodes it."""
    if "\\" in url:
        return "holds a backslash"
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        return "holds a space or control character"
    if "@" in netloc:
        return "carries userinfo (name@)"
    if "%" in netloc:
        return "has a percent-encoded host"
    if not netloc.isascii():
        return "has a host that is not ASCII"
    return ""


@dataclass(frozen=True)
class Download:
    data: bytes | None
    why: str = ""
    fault: str = ""  # "" (data holds the photo), STOPPED, PHOTO, HOST or FATAL: see the module docstring


class PhotoFetcher:
    """get(url) -> a Download: at most `attempts` tries within `deadline` seconds in all."""

    def __init__(self, hosts: PhotoHosts, watchdog: Watchdog, policy, stopper, rng: random.Random,
                 ca_file: str | None = None):
        self.hosts, self.watchdog, self.policy, self.stopper, self.rng = hosts, watchdog, policy, stopper, rng
        # no proxy, .netrc or other settings from the environment: they would send the operator's
        # credentials to photo hosts, and a proxy would hide the address the rule judges
        self.session = watched_session(watchdog, trust_env=False, ca_file=ca_file)
        self.retries, self.lock = 0, threading.Lock()

    def get(self, url: str) -> Download:
        if self.stopper.stopped:
            return Download(None, "stopped: left for the queue", STOPPED)
        policy = self.policy
        deadline = time.monotonic() + policy.photo_deadline
        failures = 0
        while True:
            try:
                return Download(self._follow(url, deadline))
            except TransferError as exc:
                if exc.kind == "stopped":
                    return Download(None, "stopped: left for the queue", STOPPED)
                if exc.kind == "certificate":
                    return Download(None, untrusted(f"photo host {_host(url)}", exc.why), FATAL)
                failures += 1
                why = exc.why if failures == 1 else f"{exc.why} (after {failures} attempts)"
                if exc.kind not in RETRIED or failures >= policy.photo_attempts:
                    return Download(None, why, _fault(exc.kind))
                wait = policy.delay(failures - 1, self.rng)
                if time.monotonic() + wait >= deadline:
                    return Download(None, f"{exc.why} (no time left for attempt {failures + 1})", _fault(exc.kind))
            with self.lock:
                self.retries += 1
            if self.stopper.wait(wait):
                return Download(None, "stopped: left for the queue", STOPPED)

    def _follow(self, url: str, deadline: float) -> bytes:
        """The photo's bytes, redirects followed (each hop judged); raises TransferError."""
        for hop in range(MAX_REDIRECTS + 1):
            try:
                why = self.hosts.refusal(url)
                if why:
                    raise TransferError(why, "not allowed")
                reply = exchange(self.session, self.watchdog, "GET", url, deadline=deadline,
                                 cap=self.policy.photo_max_bytes, timeout=self.policy.timeout, stoppable=True,
                                 address_ok=self.hosts.address_ok)
            except TransferError as exc:  # the queue's own URL refused: the operator's matter; a redirect: that photo's
                if exc.kind == "not allowed" and hop:
                    raise TransferError(exc.why, "refused") from None
                raise
            location = reply.headers.get("Location")
            if reply.status in REDIRECTS and location:
                try:
                    url = urljoin(url, location)
                except ValueError:
                    raise TransferError(f"unusable redirect: {masked_url(location)[:200]!r}", "refused") from None
                continue
            if reply.status >= 500 or reply.status in RETRY_STATUS:
                raise TransferError(f"HTTP {reply.status}", "unavailable")
            if not 200 <= reply.status < 300:
                raise TransferError(f"HTTP {reply.status}", "status")
            return reply.content
        raise TransferError(f"more than {MAX_REDIRECTS} redirects", "refused")


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def _fault(kind: str) -> str:
    if kind in OF_HOST:
        return HOST
    return FATAL if kind in ("certificate", "not allowed") else PHOTO
