"""The labeller queue over HTTP: fetch a batch (GET), post records (POST), same endpoint.

requests (already a dependency of kaggle) gives connection reuse and clean timeout / connection errors;
the retry policy is ours, because the protocol's rules (a post is retried until it succeeds, never
dropped; the reply's `sleep` replaces the backoff; a signal stops between batches) are not a
library's generic ones."""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import tempfile
import threading
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from ..console import say
from ..errors import DataError

RETRY_STATUS = frozenset({408, 425, 429})  # besides every 5xx: the server asks us to come back later
SLOTS = 32  # unique_number is 0..31


class QueueError(DataError):
    """The queue refused a request in a way a retry cannot fix (a 4xx, a reply that is not JSON)."""


class Stopper:
    """Set by SIGINT/SIGTERM: the worker finishes the batch it holds (its post included), then stops.
    A second signal stops at once (KeyboardInterrupt)."""

    def __init__(self):
        self.event = threading.Event()
        self._previous = {}

    def install(self) -> Stopper:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        say(f"{signal.Signals(signum).name}: finishing this batch (its post included), then stopping;"
            " signal again to stop at once")
        signal.signal(signum, signal.default_int_handler)
        self.event.set()

    @property
    def stopped(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds` or until stopped; True when stopped."""
        return self.event.wait(max(0.0, seconds))


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 1.0  # first wait, seconds; doubled on each failure in a row
    cap: float = 120.0  # longest wait
    timeout: float = 60.0  # seconds to connect, and again to read a reply
    photo_attempts: int = 3  # a photo still unreachable after these counts as Failed

    def delay(self, failures: int, rng: random.Random) -> float:
        """Exponential backoff with jitter, so workers that failed together do not retry together."""
        return min(self.cap, self.base * 2 ** min(failures, 30)) * rng.uniform(0.5, 1.0)


def instance_id(env=os.environ) -> str:
    """A name that stays the same while this worker's container lives, as the published workers choose it."""
    for key, kind in (("KUBERNETES_POD_UID", "k8s-uid"), ("KUBERNETES_POD_NAME", "k8s-pod"),
                      ("COLAB_NOTEBOOK_ID", "colab"), ("JPY_SESSION_NAME", "jupyter")):
        if env.get(key):
            return f"{kind}-{env[key]}"
    host = socket.gethostname()
    if host:
        is_id = len(host) == 12 and all(c in "0123456789abcdef" for c in host.lower())
        return f"docker-{'id' if is_id else 'name'}-{host}"
    return f"random-{random.getrandbits(64):016x}"


def unique_number(identity: str | None = None) -> int:
    """The worker's slot 0..31: SHA-256 of the stable instance id, modulo 32."""
    identity = instance_id() if identity is None else identity
    return int(hashlib.sha256(identity.encode()).hexdigest(), 16) % SLOTS


def with_query(url: str, **fields) -> str:
    """`url` with `fields` added to its query (the endpoint's own fields, e.g. model=clip, are kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in fields]
    query += [(k, str(v)) for k, v in fields.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


class _Transient(Exception):
    """Worth retrying: connection refused or reset, timeout, 5xx, 408/429."""


class QueueClient:
    def __init__(self, endpoint: str, slot: int, policy: RetryPolicy = RetryPolicy(), stopper: Stopper | None = None,
                 seed: int | None = None):
        if urlsplit(endpoint).scheme not in ("http", "https"):
            raise ValueError(f"--endpoint must be an http(s) URL, got {endpoint!r}")
        if not 0 <= slot < SLOTS:
            raise ValueError(f"--unique-number must be in 0..{SLOTS - 1}, got {slot}")
        self.endpoint, self.slot, self.policy = endpoint, slot, policy
        self.stopper = stopper or Stopper()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "geocontext-labeller"
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)  # concurrent photo downloads
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.rng = random.Random(seed)
        self.retries = 0  # requests retried so far (fetches, posts and photos)

    def _request(self, method: str, url: str, **kwargs) -> requests.Response:
        try:
            reply = self.session.request(method, url, timeout=self.policy.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Transient(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        if reply.status_code >= 500 or reply.status_code in RETRY_STATUS:
            raise _Transient(f"HTTP {reply.status_code}")
        return reply

    def _retrying(self, what: str, call, stop_early: bool, attempts: int | None = None):
        """call() until it does not raise _Transient. None when stopped (only if `stop_early`) or after
        `attempts` failures; otherwise it keeps trying: a post is never dropped."""
        failures = 0
        while True:
            try:
                return call()
            except _Transient as exc:
                failures += 1
                self.retries += 1
                if attempts is not None and failures >= attempts:
                    return None
                wait = self.policy.delay(failures - 1, self.rng)
                say(f"{what}: {exc}; retry {failures} in {wait:.1f} s")
                if self.stopper.wait(wait) and stop_early:
                    return None

    def fetch(self, limit: int, **fields) -> dict | None:
        """The next batch (the reply's JSON object); None when stopped while the server was unreachable."""
        url = with_query(self.endpoint, limit=limit, unique_number=self.slot, **fields)

        def call():
            reply = self._request("GET", url)
            if reply.status_code >= 400:
                raise QueueError(f"{url}: HTTP {reply.status_code} on fetch ({reply.text[:200]!r})")
            if not reply.content.strip():
                return {}  # an empty reply: nothing to do now
            try:
                data = reply.json()
            except ValueError:
                raise _Transient(f"reply is not JSON ({reply.text[:80]!r})") from None
            if not isinstance(data, dict):
                raise QueueError(f"{url}: expected a JSON object with rows, got {type(data).__name__}")
            return data

        return self._retrying("fetch", call, stop_early=True)

    def post(self, records: list[dict]) -> str:
        """Post `records` until the server takes them (any 2xx). A 4xx cannot be fixed by retrying: the
        records go to a file, named in the QueueError, so nothing computed is lost."""
        body = json.dumps(records).encode()

        def call():
            reply = self._request("POST", self.endpoint, data=body, headers={"Content-Type": "application/json"})
            if reply.status_code >= 400:
                raise QueueError(f"{self.endpoint}: HTTP {reply.status_code} on post ({reply.text[:200]!r});"
                                 f" the {len(records)} records are saved in {spool(body)}")
            return reply.text

        try:
            return self._retrying(f"post of {len(records)} records", call, stop_early=False)
        except KeyboardInterrupt:
            say(f"stopped during a post: its {len(records)} records are saved in {spool(body)}")
            raise

    def download(self, url: str) -> tuple[bytes | None, str]:
        """(photo bytes, "") or (None, why): a 404 or other 4xx at once, transient errors after retries."""
        def call():
            reply = self._request("GET", url)
            if reply.status_code >= 400:
                return None, f"HTTP {reply.status_code}"
            return reply.content, ""

        got = self._retrying(f"photo {url}", call, stop_early=False, attempts=self.policy.photo_attempts)
        return got if got is not None else (None, f"unreachable after {self.policy.photo_attempts} attempts")


def spool(body: bytes) -> str:
    """Keep a post that could not be delivered in a file (the working folder, else the temp folder)."""
    for folder in (os.getcwd(), tempfile.gettempdir()):
        try:
            fd, path = tempfile.mkstemp(prefix="label-unsent-", suffix=".json", dir=folder)
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            return path
        except OSError:
            continue
    return "(nowhere: no writable folder)"
