"""The labeller queue over HTTP: fetch a batch (GET), post records (POST), same endpoint.

requests (already a dependency of kaggle) makes the connections; transfer.py bounds every exchange (a
total deadline, a size cap, a stop). The retry policy is ours, because the protocol's rules (a reply's
`sleep` replaces the backoff; a post counts only once the server says it took it; a signal stops between
batches) are not a library's generic ones.

An accepted post reply: a 2xx whose body is a JSON object with no `error` (or an empty one: null, false,
""), and, where the server sends them, `"ok": true` and `"status": "ok"`. Anything else (an HTML page,
`{"error": "database busy"}`, a cut connection) is a failed post: retried with backoff, then saved."""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..console import say
from ..errors import DataError
from .credentials import Secrets, masked_url
from .photos import PhotoFetcher, PhotoHosts
from .transfer import RETRY_STATUS, Reply, TransferError, Watchdog, exchange, watched_session

SLOTS = 32  # unique_number is 0..31
IDEMPOTENCY_HEADER = "Idempotency-Key"  # sent with each post, and as the POST URL's query field below
IDEMPOTENCY_FIELD = "idempotency_key"


class QueueError(DataError):
    """The queue refused a request in a way a retry cannot fix (a 4xx, a reply that is not JSON)."""


class Stopper:
    """Set by SIGINT/SIGTERM: downloads in flight end (the watchdog shuts them), the photos already in hand
    are labelled and posted, then the worker stops. A second signal stops at once (KeyboardInterrupt)."""

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
        say(f"{signal.Signals(signum).name}: stopping the downloads in flight, posting what is done, then stopping"
            " (the rest is left for the queue); signal again to stop at once")
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
    """How long to wait and how much to take: backoff, per-read timeout, deadlines and size caps."""

    base: float = 1.0  # first wait, seconds, doubled on each failure in a row; also the least wait between empty replies
    cap: float = 120.0  # longest wait
    timeout: float = 60.0  # seconds to connect, and for each read of a reply; a queue request gets 5x this in all
    photo_attempts: int = 3  # a photo still unreachable after these counts as Failed
    photo_deadline: float = 30.0  # seconds for one photo in all (its attempts and redirects included)
    photo_max_bytes: int = 20 * 2**20  # a photo larger than this counts as Failed
    post_attempts: int = 8  # a post not accepted after these is saved to a file (the queue serves its photos again)
    reply_max_bytes: int = 64 * 2**20  # a queue reply larger than this is retried like a cut one

    @property
    def reply_deadline(self) -> float:
        return 5 * self.timeout

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
    """Worth retrying: connection refused or reset, timeout, a cut or unusable reply, 5xx, 408/425/429."""


class _Stopped(Exception):
    """The worker was asked to stop while this request was in flight."""


def refusal(reply: Reply) -> str:
    """"" when a post's reply says the server took the records (the rule in this module's docstring), else why not."""
    if not 200 <= reply.status < 300:
        return f"HTTP {reply.status}"
    try:
        data = json.loads(reply.content)
    except ValueError:
        return f"reply is not JSON ({reply.text(80)!r})"
    if not isinstance(data, dict):
        return f"reply is a JSON {type(data).__name__}, not an object ({reply.text(80)!r})"
    if data.get("error"):
        return f"the server says error: {str(data['error'])[:200]!r}"
    if "ok" in data and data["ok"] is not True:
        return f"the server says ok: {data['ok']!r}"
    if "status" in data and str(data["status"]).lower() != "ok":
        return f"the server says status: {str(data['status'])[:80]!r}"
    return ""


def idempotency_key(body: bytes) -> str:
    """The same records give the same key: a post resent after a timeout, or after a restart that labelled
    the same photos identically, can be recognised by the server and stored once."""
    return hashlib.sha256(body).hexdigest()[:32]


class QueueClient:
    def __init__(self, endpoint: str, slot: int, policy: RetryPolicy = RetryPolicy(), stopper: Stopper | None = None,
                 seed: int | None = None, headers: dict | None = None, allow_photo_hosts=()):
        if urlsplit(endpoint).scheme not in ("http", "https") or not urlsplit(endpoint).hostname:
            raise ValueError(f"--endpoint must be an http(s) URL, got {masked_url(endpoint)!r}")
        if not 0 <= slot < SLOTS:
            raise ValueError(f"--unique-number must be in 0..{SLOTS - 1}, got {slot}")
        if "@" in urlsplit(endpoint).netloc and "authorization" in {h.lower() for h in headers or {}}:
            raise ValueError("--endpoint carries user:password and --token-env (or --header) sets Authorization"
                             " too; use one of them")
        self.endpoint, self.slot, self.policy = endpoint, slot, policy
        self.shown = masked_url(endpoint)  # the endpoint as log lines show it
        self.secrets = Secrets.of(endpoint, headers or {})
        self.stopper = stopper or Stopper()
        self.watchdog = Watchdog(self.stopper.event)
        self.session = watched_session(self.watchdog)
        self.session.headers.update(headers or {})  # the queue's credentials: this session only, not the photos'
        self.rng = random.Random(seed)
        self.photos = PhotoFetcher(PhotoHosts(endpoint, allow_photo_hosts), self.watchdog, policy, self.stopper, self.rng)
        self._retries = 0

    @property
    def retries(self) -> int:
        """Requests retried so far (fetches, posts and photos)."""
        return self._retries + self.photos.retries

    def say(self, message: str) -> None:
        """A log line, secrets masked."""
        say(self.secrets.scrub(message))

    def _request(self, method: str, url: str, stoppable: bool, **kwargs) -> Reply:
        try:
            policy = self.policy
            reply = exchange(self.session, self.watchdog, method, url, deadline=time.monotonic() + policy.reply_deadline,
                             cap=policy.reply_max_bytes, timeout=policy.timeout, stoppable=stoppable, **kwargs)
        except TransferError as exc:
            if exc.kind == "stopped":
                raise _Stopped from None
            raise _Transient(exc.why) from None
        if reply.status >= 500 or reply.status in RETRY_STATUS:
            raise _Transient(f"HTTP {reply.status}")
        return reply

    def _retrying(self, what: str, call, stop_early: bool, attempts: int | None = None):
        """call() until it does not raise _Transient. None when stopped (only if `stop_early`: a post in
        hand is finished, and only a second signal interrupts its waits) or after `attempts` failures."""
        failures = 0
        while True:
            try:
                return call()
            except _Stopped:
                return None
            except _Transient as exc:
                failures += 1
                self._retries += 1
                if attempts is not None and failures >= attempts:
                    self.say(f"{what}: {exc}; giving up after {failures} attempts")
                    return None
                wait = self.policy.delay(failures - 1, self.rng)
                self.say(f"{what}: {exc}; retry {failures} in {wait:.1f} s")
                if not stop_early:
                    time.sleep(wait)
                elif self.stopper.wait(wait):
                    return None

    def _refused(self, reply: Reply, what: str) -> str:
        where = f"; it redirects to {masked_url(reply.headers.get('Location', '?'))}" if 300 <= reply.status < 400 else ""
        return self.secrets.scrub(f"{self.shown}: HTTP {reply.status} on {what} ({reply.text()!r}){where}")

    def fetch(self, limit: int, **fields) -> dict | None:
        """The next batch (the reply's JSON object); None when stopped while waiting for the server."""
        url = with_query(self.endpoint, limit=limit, unique_number=self.slot, **fields)

        def call():
            reply = self._request("GET", url, stoppable=True)
            if reply.status >= 300:  # a wrong or unauthorised endpoint: retrying cannot fix it
                raise QueueError(self._refused(reply, "fetch"))
            if not reply.content.strip():
                return {}  # an empty reply: nothing to do now
            try:
                data = json.loads(reply.content)
            except ValueError:
                raise _Transient(f"reply is not JSON ({reply.text(80)!r})") from None
            if not isinstance(data, dict):
                raise _Transient(f"reply is a JSON {type(data).__name__}, expected an object with rows")
            return data

        return self._retrying("fetch", call, stop_early=True)

    def post(self, records: list[dict]) -> bool:
        """True once the server accepted `records`. A reply that is not an accepted one is retried with
        backoff; after policy.post_attempts the records are saved in a file and False returned. A 4xx
        cannot be fixed by retrying: the records are saved and QueueError names the file."""
        body = json.dumps(records).encode()
        key = idempotency_key(body)
        url = with_query(self.endpoint, **{IDEMPOTENCY_FIELD: key})
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key}
        what = f"post of {len(records)} records"

        def call():
            reply = self._request("POST", url, stoppable=False, data=body, headers=headers)
            if 400 <= reply.status < 500:
                raise QueueError(f"{self._refused(reply, 'post')}; the {len(records)} records are saved in"
                                 f" {spool(body, key)}")
            why = refusal(reply)
            if why:
                raise _Transient(f"not accepted: {why}")
            return True

        try:
            if self._retrying(what, call, stop_early=False, attempts=self.policy.post_attempts):
                return True
        except KeyboardInterrupt:
            self.say(f"stopped during a post: its {len(records)} records are saved in {spool(body, key)}")
            raise
        self.say(f"{what}: saved in {spool(body, key)}; the queue will serve these photos again")
        return False

    def save(self, records: list[dict], why: str) -> None:
        """Keep records that were not posted (`why`) in a file, as a failed post's are."""
        body = json.dumps(records).encode()
        self.say(f"{len(records)} records not posted ({why}): saved in {spool(body, idempotency_key(body))}")

    def download(self, url: str) -> tuple[bytes | None, str]:
        """(photo bytes, "") or (None, why); why is photos.STOPPED when the worker was asked to stop."""
        return self.photos.get(url)


def spool(body: bytes, key: str) -> str:
    """Keep a post that could not be delivered in label-unsent-KEY.json (the working folder, else the temp
    folder): the same records, the same file, so a post saved twice is one file."""
    for folder in (os.getcwd(), tempfile.gettempdir()):
        path = os.path.join(folder, f"label-unsent-{key}.json")
        try:
            with tempfile.NamedTemporaryFile("wb", dir=folder, prefix=".label-unsent-", delete=False) as handle:
                handle.write(body)
            os.replace(handle.name, path)
            return path
        except OSError:
            continue
    return "(nowhere: no writable folder)"
