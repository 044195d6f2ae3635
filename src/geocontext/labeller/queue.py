"""The labeller queue over HTTP: fetch a batch (GET), post records (POST), same endpoint.

requests (already a dependency of kaggle) makes the connections; transfer.py bounds every exchange (a
total deadline, a size cap, a stop). The retry policy is ours, because the protocol's rules (a reply's
`sleep` replaces the backoff; a post counts only once the server says it took it, replies.py; a signal
stops between batches) are not a library's generic ones. A post not accepted is retried with backoff,
then saved; a certificate the worker does not trust, a 4xx, or an error the server reports that a retry
cannot fix (`{"error": "No model"}`) stops the worker (exit 2), the records saved."""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import tempfile
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from ..console import say
from ..errors import DataError
from .credentials import Secrets, masked_url
from .fleet import SLOTS, instance_id, unique_number  # noqa: F401  (the slot: part of the client's interface)
from .photos import Download, PhotoFetcher, PhotoHosts
from .policy import STOP_POSTS_SECONDS, RetryPolicy, Stopper  # noqa: F401
from .replies import ServerError, fetched, refusal, server_error
from .transfer import RETRY_STATUS, Reply, TransferError, Watchdog, exchange, untrusted, watched_session

IDEMPOTENCY_HEADER = "Idempotency-Key"  # sent with each post, and as the POST URL's query field below
IDEMPOTENCY_FIELD = "idempotency_key"


class QueueError(DataError):
    """The queue refused a request in a way a retry cannot fix (a 4xx, an untrusted certificate, an error
    the server reports as permanent)."""


def user_agent(verb: str, **facts) -> str:
    """`geocontext/VERSION (label context; run=...; ...)`: Geograph stores it with every label, so it names
    the kit, its version and what made the labels (never a secret: only names and digests)."""
    from .. import __version__

    shown = "".join(f"; {k}={re.sub(r'[^A-Za-z0-9._+/-]', '_', str(v))[:80]}" for k, v in facts.items())
    return f"geocontext/{__version__} ({verb}{shown})"


def with_query(url: str, **fields) -> str:
    """`url` with `fields` added to its query (the endpoint's own fields, e.g. model=clip, are kept; a
    field given as None is left out)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in fields]
    query += [(k, str(v)) for k, v in fields.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def check_endpoint(endpoint: str) -> None:
    """Raise ValueError unless `endpoint` is an http(s) URL that requests can send (a port out of range, a
    space in the host: else every fetch would fail the same way, retried for ever)."""
    try:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL with a host")
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number in 0..65535)
        requests.PreparedRequest().prepare_url(endpoint, None)  # InvalidURL is a ValueError
    except ValueError as exc:
        why = masked_url(str(exc).replace(endpoint, masked_url(endpoint)))[:200]
        raise ValueError(f"--endpoint must be an http(s) URL, got {masked_url(endpoint)!r} ({why})") from None


class _Transient(Exception):
    """Worth retrying: connection refused or reset, timeout, a cut or unusable reply, 5xx, 408/425/429."""


class _Stopped(Exception):
    """The worker was asked to stop while this request was in flight."""


def idempotency_key(body: bytes) -> str:
    """The same records give the same key: a post resent after a timeout, or after a restart that labelled
    the same photos identically, can be recognised by the server and stored once."""
    return hashlib.sha256(body).hexdigest()[:32]


class QueueClient:
    def __init__(self, endpoint: str, slot: int, policy: RetryPolicy = RetryPolicy(), stopper: Stopper | None = None,
                 seed: int | None = None, headers: dict | None = None, allow_photo_hosts=(), ca_file: str | None = None):
        check_endpoint(endpoint)
        if not 0 <= slot < SLOTS:
            raise ValueError(f"--unique-number must be in 0..{SLOTS - 1}, got {slot}")
        if "@" in urlsplit(endpoint).netloc and "authorization" in {h.lower() for h in headers or {}}:
            raise ValueError("--endpoint carries user:password and --token-env (or --header) sets Authorization"
                             " too; use one of them")
        self.endpoint, self.slot, self.policy = endpoint, slot, policy
        self.shown = masked_url(endpoint)  # the endpoint as log lines show it
        self.secrets = Secrets.of(endpoint, headers or {})
        self.stopper = stopper or Stopper()
        self.watchdog = Watchdog(self.stopper.event, lambda: self.stopper.since, STOP_POSTS_SECONDS)
        self.session = watched_session(self.watchdog, ca_file=ca_file)
        self.session.headers.update(headers or {})  # the queue's credentials: this session only, not the photos'
        self.rng = random.Random(seed)
        # the photo session does not read the environment (see PhotoFetcher), but a CA bundle named there is trust only
        photo_ca = ca_file or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None
        self.photos = PhotoFetcher(PhotoHosts(endpoint, allow_photo_hosts), self.watchdog, policy, self.stopper, self.rng,
                                   photo_ca)
        self._retries = 0

    @property
    def agent(self) -> str:
        return self.session.headers["User-Agent"]

    @agent.setter
    def agent(self, text: str) -> None:
        """The User-Agent of queue and photo requests (Geograph stores the queue's with every label)."""
        self.session.headers["User-Agent"] = self.photos.session.headers["User-Agent"] = text

    @property
    def retries(self) -> int:
        """Requests retried so far (fetches, posts and photos)."""
        return self._retries + self.photos.retries

    def say(self, message: str) -> None:
        """A log line, secrets masked."""
        say(self.secrets.scrub(message))

    def _request(self, method: str, url: str, stoppable: bool, seconds: float | None = None, **kwargs) -> Reply:
        try:
            policy = self.policy
            seconds = policy.reply_deadline if seconds is None else min(seconds, policy.reply_deadline)
            reply = exchange(self.session, self.watchdog, method, url, deadline=time.monotonic() + seconds,
                             cap=policy.reply_max_bytes, timeout=policy.timeout, stoppable=stoppable, **kwargs)
        except TransferError as exc:
            if exc.kind == "stopped":
                raise _Stopped from None
            if exc.kind == "certificate":
                raise QueueError(self.secrets.scrub(untrusted(urlsplit(url).hostname or self.shown, exc.why))) from None
            if exc.kind == "refused":  # an unusable URL: the same every time
                raise QueueError(self.secrets.scrub(f"{self.shown}: {exc.why}")) from None
            raise _Transient(exc.why) from None
        if reply.status >= 500 or reply.status in RETRY_STATUS:
            raise _Transient(f"HTTP {reply.status}")
        return reply

    def _refused(self, reply: Reply, what: str) -> str:
        where = f"; it redirects to {masked_url(reply.headers.get('Location', '?'))}" if 300 <= reply.status < 400 else ""
        return self.secrets.scrub(f"{self.shown}: HTTP {reply.status} on {what} ({reply.text()!r}){where}")

    def fetch(self, limit: int, **fields) -> dict | None:
        """The next batch (the reply's JSON object; {} for an empty reply: nothing to label now); None when
        stopped while waiting for the server."""
        url = with_query(self.endpoint, limit=limit, unique_number=self.slot, **fields)

        def call():
            reply = self._request("GET", url, stoppable=True)
            if reply.status >= 300:  # a wrong or unauthorised endpoint: retrying cannot fix it
                raise QueueError(self._refused(reply, "fetch"))
            try:
                data = fetched(reply.content)
            except ServerError as error:
                if error.permanent:
                    raise QueueError(self.secrets.scrub(f"{self.shown}: fetch: {error}")) from None
                raise _Transient(str(error)) from None
            if isinstance(data, str):
                raise _Transient(data)
            return data

        failures = 0
        while True:
            try:
                return call()
            except _Stopped:
                return None
            except _Transient as exc:
                failures += 1
                self._retries += 1
                wait = self.policy.delay(failures - 1, self.rng)
                self.say(f"fetch: {exc}; retry {failures} in {wait:.1f} s")
                if self.stopper.wait(wait):
                    return None

    def post(self, records: list[dict]) -> bool:
        """True once the server accepted `records` (replies.py). A reply that is not an accepted one is
        retried with backoff; after policy.post_attempts, or STOP_POSTS_SECONDS after a stop, the records
        are saved in a file and False returned. A 4xx, or an error the server reports as permanent, cannot
        be fixed by retrying: the records are saved and QueueError names the file."""
        body = json.dumps(records).encode()
        key = idempotency_key(body)
        url = with_query(self.endpoint, **{IDEMPOTENCY_FIELD: key})
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key}
        what = f"post of {len(records)} records"

        def call(seconds: float | None) -> bool:
            try:
                reply = self._request("POST", url, stoppable=False, seconds=seconds, data=body, headers=headers)
            except QueueError as exc:  # a certificate not trusted, an unusable URL: nothing computed is lost
                raise QueueError(f"{exc}; the {len(records)} records are saved in {spool(body, key)}") from None
            if 400 <= reply.status < 500:
                raise QueueError(f"{self._refused(reply, 'post')}; the {len(records)} records are saved in"
                                 f" {spool(body, key)}")
            error = server_error(reply.content) if reply.status < 300 else None
            if error is not None and error.permanent:
                raise QueueError(self.secrets.scrub(f"{self.shown}: post: {error}; the {len(records)} records are"
                                                    f" saved in {spool(body, key)}"))
            why = refusal(reply, records)
            if why:
                raise _Transient(f"not accepted: {why}")
            return True

        failures = 0
        try:
            while failures < self.policy.post_attempts:
                left = self.stopper.posting_left()
                if left is not None and left <= 0:
                    self.say(f"{what}: not accepted within {STOP_POSTS_SECONDS:g} s of the stop: saved in"
                             f" {spool(body, key)}; the queue will serve these photos again")
                    return False
                try:
                    return call(left)
                except _Transient as exc:
                    failures += 1
                    self._retries += 1
                    if failures >= self.policy.post_attempts:
                        self.say(f"{what}: {exc}; giving up after {failures} attempts")
                        break
                    wait = self.policy.delay(failures - 1, self.rng)
                    self.say(f"{what}: {exc}; retry {failures} in {wait:.1f} s")
                    left = self.stopper.posting_left()
                    if left is None:
                        self.stopper.wait(wait)  # a stop ends the wait: the post then has what is left of its time
                    else:
                        time.sleep(max(0.0, min(wait, left)))
        except KeyboardInterrupt:
            self.say(f"stopped during a post: its {len(records)} records are saved in {spool(body, key)}")
            raise
        self.say(f"{what}: saved in {spool(body, key)}; the queue will serve these photos again")
        return False

    def save(self, records: list[dict], why: str) -> None:
        """Keep records that were not posted (`why`) in a file, as a failed post's are."""
        body = json.dumps(records).encode()
        self.say(f"{len(records)} records not posted ({why}): saved in {spool(body, idempotency_key(body))}")

    def download(self, url: str) -> Download:
        """The photo at `url`, or why not and whose fault (photos.Download)."""
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
