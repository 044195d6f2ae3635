"""Which rows a worker asks the queue for: its slot, and its place among N workers behind one address.

Geograph's server ignores `unique_number` and serves each client IP from its own offset into the list
of unlabelled photos, so N workers behind one IP (one host, one NAT) get the same rows. A worker given
nothing asks without an offset (the server's choice for its IP, as the published workers do). With
`--workers N --worker-index I` (or Kubernetes' JOB_COMPLETION_INDEX for I) worker I asks for `offset =
I x STRIDE`, STRIDE = 2 x N x limit: each post removes its rows from the list and the rows above slide
down, by about (N - 1) x limit while a batch is in hand, so twice that keeps a batch clear of its
neighbours' (bench/label_fleet.py measures it). Near the end of the list a worker's offset is past the
last row (an empty reply) while rows remain below: it steps down (I x limit, then 0) before calling the
queue empty, and starts again from its own offset after an idle spell.

PHP's empty("0") is true, so the server reads `offset=0` as "not given" (its own choice); an explicit
zero is sent as `offset=00` (not empty, intval 0)."""
from __future__ import annotations

import hashlib
import os
import random
import socket
from dataclasses import dataclass

SLOTS = 32  # unique_number is 0..31
WORKERS_ENV = "GEOCONTEXT_LABEL_WORKERS"  # --workers from the environment (e.g. a Deployment's replicas)
INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by a Kubernetes Indexed Job in each pod: 0..completions-1
SERVER_CHOICE = None  # no offset field: the server's own offset for this client IP
EXPLICIT_ZERO = "00"


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


@dataclass(frozen=True)
class Share:
    """Worker `index` of `workers` sharing one queue (and, maybe, one IP); `placed`: the worker chooses
    its offsets (--workers given), else the server does."""

    workers: int = 1
    index: int = 0
    placed: bool = False

    def __post_init__(self):
        if self.workers < 1 or not 0 <= self.index < self.workers:
            raise ValueError(f"--worker-index must be in 0..{self.workers - 1} for --workers {self.workers},"
                             f" got {self.index}")

    @classmethod
    def of(cls, workers: int | None, index: int | None, env=os.environ) -> Share:
        """From the options, else GEOCONTEXT_LABEL_WORKERS and JOB_COMPLETION_INDEX; none: one worker."""
        if workers is None and env.get(WORKERS_ENV, "").strip():
            workers = _count(env[WORKERS_ENV], WORKERS_ENV)
        if index is None and env.get(INDEX_ENV, "").strip():
            index = _count(env[INDEX_ENV], INDEX_ENV)
            if workers is None:
                raise ValueError(f"{INDEX_ENV}={index} is set (a Kubernetes Indexed Job) but the number of workers is"
                                 f" not: pass --workers N (the Job's completions) or set {WORKERS_ENV}")
        if workers is not None and workers < 1:
            raise ValueError(f"--workers must be >= 1 (how many workers share the queue), got {workers}")
        if index is not None and workers is None:
            raise ValueError("--worker-index needs --workers N (how many workers share the queue)")
        return cls(workers or 1, index or 0, workers is not None)

    def offsets(self, limit: int) -> list:
        """The offsets to try in turn, the first that brings rows wins: this worker's own, then lower ones."""
        if not self.placed:
            return [SERVER_CHOICE]
        own = [self.index * 2 * self.workers * limit, self.index * limit] if self.index else []
        return [*own, EXPLICIT_ZERO]

    def describe(self, limit: int) -> str:
        if not self.placed:
            return "rows at the server's offset for this IP"
        return (f"worker {self.index} of {self.workers}: rows from offset {int(self.offsets(limit)[0])}"
                f" (then lower near the end of the queue)")


def _count(text: str, name: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{name}={text.strip()[:40]!r}: expected a whole number") from None
