"""The loop both workers share: ask for a batch (batches.py), answer it, post the answers, say how it went.

A photo counts as answered once the server accepted the post of its labels, the first body an answer
gives. The bodies after it (the context worker's embeddings) are posted only once it was accepted, and
one of them not accepted is saved to a file without un-answering the photos. Labels go first because
Geograph's server counts a photo as done once any row of its model exists, and it stores an embedding
record as such a row (label NULL): posted first, embeddings whose labels then failed would take the
photo out of the queue unlabelled. A worker killed between the two posts loses the embeddings only.

A reply with nothing new (no rows, only repeats or unusable ids) waits at least --retry-base, longer
each time in a row; so does a batch whose photo host could not be reached (its photos are left for the
queue); each is logged once per change of state."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from .batches import Batches, RecentIds
from .fleet import Share
from .queue import QueueClient, QueueError

MAX_SLEEP = 3600.0  # the most a reply's `sleep` makes the worker wait (a huge or infinite one would hang it)


@dataclass
class Answer:
    """What a worker made of one batch: the bodies to post, in order, and what it timed."""

    posts: list[list[dict]]  # posts[0]: the labels, which answer the photos; the others follow it
    failures: list[tuple[int, str]] = field(default_factory=list)  # (id, why) of photos answered "Failed"
    seconds: dict = field(default_factory=dict)  # e.g. {"fetch": 1.2, "embed": 3.4}: photo downloads, model
    left: list[int] = field(default_factory=list)  # ids not answered (stopped, photo host unreachable): served again
    outage: str = ""  # why the photo host could not be reached, when no photo of the batch came

    @property
    def failed(self) -> int:
        return len(self.failures)


class Answerer(Protocol):
    def __call__(self, reply: dict, rows: list[dict]) -> Answer: ...


def post_all(client: QueueClient, bodies: list[list[dict]]) -> bool:
    """Post the bodies in order; True when the first (the labels) was accepted. After it fails the rest
    are not posted (the photos must stay in the queue) but saved, so nothing computed is lost."""
    bodies = [b for b in bodies if b]
    for k, body in enumerate(bodies):
        try:
            accepted = client.post(body)
        except QueueError:
            for rest in bodies[k + 1:]:
                client.save(rest, "an earlier post of the batch was refused")
            raise
        if not accepted and k == 0:
            for rest in bodies[1:]:
                client.save(rest, "the batch's labels were not accepted")
            return False
    return True


def serve(client: QueueClient, answer: Answerer, limit: int, loops: int = 0, fields: dict | None = None,
          name: str = "label", share: Share = Share()) -> dict:
    """Ask, answer and post until `loops` batches were asked for (0: until stopped)."""
    if limit < 1 or loops < 0:
        raise ValueError(f"--limit must be >= 1 and --loops >= 0, got {limit} and {loops}")
    batches = Batches(client, limit, fields, share, titles=getattr(answer, "titles", False))
    answered, rounds, idle, state, outages = RecentIds(), 0, 0, "", 0
    totals = {"photos": 0, "failed": 0, "repeats": 0, "unusable": 0, "left": 0, "unsent": 0, "batches": 0, "outages": 0}
    while not client.stopper.stopped and (loops == 0 or rounds < loops):
        began = time.perf_counter()
        batch = batches.next(answered)
        rounds += 1
        if batch is None:  # stopped while waiting for the server
            break
        asked = time.perf_counter() - began
        totals["repeats"] += batch.repeats
        totals["unusable"] += len(batch.unusable)
        totals["left"] += len(batch.left)
        unusable = ""
        if batch.unusable:
            examples = ", ".join(repr(v)[:40] for v in batch.unusable[:5])
            unusable = (f"{len(batch.unusable)} rows skipped as unusable: gridimage_id {examples}"
                        f"{', ...' if len(batch.unusable) > 5 else ''} (expected an integer >= 0)")
        if not batch.rows:  # a floor and a backoff, and a line only when the state changes: no spinning, no flood
            idle += 1
            why = "; ".join(w for w in (f"{batch.repeats} already answered" if batch.repeats else "", unusable,
                                        f"{len(batch.left)} without a title in the title reply" if batch.left else "")
                            if w)
            now = "repeats" if batch.repeats else "unusable" if batch.unusable else "titles" if batch.left else "empty"
            wait = max(client.policy.base, _sleep_of(batch.reply) or 0.0, client.policy.delay(idle - 1, client.rng))
            if now != state:
                client.say(f"{name}: nothing new to label ({why or 'an empty reply: the queue has nothing for now'});"
                           f" asking again in {wait:.1f} s, then waiting longer while replies bring nothing new (at most"
                           f" {client.policy.cap:g} s)")
                state = now
            if client.stopper.wait(wait):
                break
            continue
        if idle:
            client.say(f"{name}: photos to label again after {idle} replies with nothing new")
        if unusable:
            client.say(f"{name}: {unusable}")
        idle, state = 0, ""
        result = answer(batch.reply, batch.rows)
        for image_id, why in result.failures:
            client.say(f"{name}: photo {image_id} failed: {why}")
        posted = time.perf_counter()
        sent = post_all(client, result.posts)
        left = set(result.left) | set(batch.left)
        done = [r["gridimage_id"] for r in batch.rows if r["gridimage_id"] not in left]
        post_s, total_s = time.perf_counter() - posted, time.perf_counter() - began
        totals["batches"] += 1
        totals["left"] += len(result.left)
        if sent:
            answered.add(done)
            totals["photos"] += len(done)
            totals["failed"] += result.failed
        else:
            totals["unsent"] += len(done)
        model = {k: v for k, v in result.seconds.items() if k != "fetch"}
        seconds = {"fetch": asked + result.seconds.get("fetch", 0.0), **model, "post": post_s}  # batch + its photos
        times = ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items())
        notes = "".join(f", {text}" for n, text in ((batch.repeats, f"{batch.repeats} already answered"),
                                                    (len(left), f"{len(left)} left for the queue"),
                                                    (not sent, "posts not accepted: saved, the queue serves them again"))
                        if n)
        client.say(f"{name}: batch {totals['batches']}: {len(done)} photos ({result.failed} failed{notes}),"
                   f" {len(done) / max(total_s, 1e-9):.1f} photos/s; {times}")
        wait = _sleep_of(batch.reply) or 0.0
        if result.outage:
            outages += 1
            totals["outages"] += 1
            wait = max(wait, client.policy.base, client.policy.delay(outages - 1, client.rng))
            if outages == 1:
                client.say(f"{name}: photo host unreachable: {result.outage}; its photos are left for the queue;"
                           f" asking again in {wait:.1f} s, then waiting longer while it stays unreachable (at most"
                           f" {client.policy.cap:g} s)")
        elif outages:
            client.say(f"{name}: photo host reachable again after {outages} batches that could not reach it")
            outages = 0
        if wait > client.policy.cap:  # the server's word, but an operator wants to know why nothing happens
            client.say(f"{name}: the server asks for a wait of {wait:g} s (more than --retry-cap"
                       f" {client.policy.cap:g} s); waiting")
        if wait:
            client.stopper.wait(wait)
    totals["rounds"], totals["fetches"], totals["retries"] = rounds, batches.fetches, client.retries
    client.say(f"{name}: stopped after {rounds} rounds ({batches.fetches} fetches): {totals['photos']} photos labelled,"
               f" {totals['failed']} failed, {totals['unusable']} unusable ids, {totals['unsent']} not accepted,"
               f" {totals['left']} left for the queue, {totals['retries']} requests retried")
    return totals


def _sleep_of(reply: dict) -> float | None:
    try:
        wait = float(reply["sleep"])
    except (KeyError, TypeError, ValueError):
        return None
    return min(wait, MAX_SLEEP) if wait > 0 else None  # NaN, 0 or less: none
