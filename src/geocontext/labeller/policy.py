"""How long a worker waits, takes and goes on: the retry policy, and the stop on SIGINT/SIGTERM.

A stop must be over well within Kubernetes' default grace period (30 s, then SIGKILL): downloads in
flight end at once, at most one more model batch is embedded, and the posts get STOP_POSTS_SECONDS in
all after the signal (what they cannot deliver by then is saved to label-unsent-*.json)."""
from __future__ import annotations

import random
import signal
import threading
import time
from dataclasses import dataclass

from ..console import say

STOP_POSTS_SECONDS = 5.0


class Stopper:
    """Set by SIGINT/SIGTERM: downloads in flight end (the watchdog shuts them), the photos already
    embedded are posted, then the worker stops. A second signal stops at once (KeyboardInterrupt)."""

    def __init__(self):
        self.event = threading.Event()
        self.since: float | None = None  # time.monotonic() of the stop
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
        say(f"{signal.Signals(signum).name}: stopping the downloads in flight, posting what is embedded (within"
            f" {STOP_POSTS_SECONDS:g} s), then stopping (the rest is left for the queue); signal again to stop at once")
        signal.signal(signum, signal.default_int_handler)
        self.stop()

    def stop(self) -> None:
        if self.since is None:
            self.since = time.monotonic()
        self.event.set()

    @property
    def stopped(self) -> bool:
        return self.event.is_set()

    def posting_left(self) -> float | None:
        """Seconds the posts still have since the stop; None while not stopping."""
        if not self.stopped:
            return None
        return (self.since or time.monotonic()) + STOP_POSTS_SECONDS - time.monotonic()

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds` or until stopped; True when stopped."""
        return self.event.wait(max(0.0, seconds))


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait and how much to take: backoff, per-read timeout, deadlines and size caps."""

    base: float = 1.0  # first wait, seconds, doubled on each failure in a row; also the least wait between empty replies
    cap: float = 120.0  # longest wait
    timeout: float = 60.0  # seconds to connect, and for each read of a reply; a queue request gets 5x this in all
    photo_attempts: int = 3  # tries of one photo (a body cut every time: Failed; a host unreachable every time: left)
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
