"""The loop both workers share: fetch a batch, answer it, post the answers, say how it went.

A photo counts as answered only once the server accepted the post of its labels; the posts go in the
order the worker gives (embeddings before labels, so a worker killed in between loses nothing: the
queue serves the photo again). A reply with nothing new (no rows, only repeats or unusable ids) waits
at least --retry-base, longer each time in a row, and is logged once per change of state."""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

from .queue import QueueClient, QueueError

ID_LIMIT = 2**63  # ids travel as int64
MAX_SLEEP = 3600.0  # the most a reply's `sleep` makes the worker wait (a huge or infinite one would hang it)


@dataclass
class Answer:
    """What a worker made of one batch: the bodies to post, in order, and what it timed."""

    posts: list[list[dict]]
    failures: list[tuple[int, str]] = field(default_factory=list)  # (id, why) of photos answered "Failed"
    seconds: dict = field(default_factory=dict)  # e.g. {"fetch": 1.2, "embed": 3.4}: photo downloads, model
    left: list[int] = field(default_factory=list)  # ids not answered (the worker was stopped): the queue serves them again

    @property
    def failed(self) -> int:
        return len(self.failures)


class RecentIds:
    """The ids answered lately (at most `capacity`, oldest forgotten first): a photo the queue hands
    out again while our answer is on its way is not answered twice, in bounded memory."""

    def __init__(self, capacity: int = 100_000):  # ~10 MB; a repeat comes while our answer is on its way
        self.capacity, self.ids = capacity, OrderedDict()

    def __contains__(self, image_id) -> bool:
        return image_id in self.ids

    def add(self, ids) -> None:
        for i in ids:
            self.ids[i] = None
            self.ids.move_to_end(i)
        while len(self.ids) > self.capacity:
            self.ids.popitem(last=False)


def usable_id(value) -> int | None:
    """A gridimage_id as the protocol sends it: an integer >= 0, or a string of its digits. Anything
    else (true, -5, "abc", null, 900500.7) is unusable, never coerced."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and 0 <= value < ID_LIMIT else None


@dataclass
class Sorted:
    rows: list[dict]  # to answer: the first of each id not answered yet, its id an int
    repeats: int = 0  # ids answered already, or repeated in the batch
    unusable: list = field(default_factory=list)  # the unusable ids (or rows) as sent


def sort_rows(raw, answered: RecentIds) -> Sorted:
    out = Sorted([])
    seen = set()
    for row in raw if isinstance(raw, list) else []:
        image_id = usable_id(row.get("gridimage_id")) if isinstance(row, dict) else None
        if image_id is None:
            out.unusable.append(row.get("gridimage_id") if isinstance(row, dict) else row)
        elif image_id in seen or image_id in answered:
            out.repeats += 1
        else:
            seen.add(image_id)
            out.rows.append({**row, "gridimage_id": image_id})
    return out


def post_all(client: QueueClient, bodies: list[list[dict]]) -> bool:
    """Post the bodies in order; True when every one was accepted. After a failed one the rest are not
    posted (labels must not outrun their embeddings) but saved, so nothing computed is lost."""
    bodies = [b for b in bodies if b]
    for k, body in enumerate(bodies):
        try:
            accepted = client.post(body)
        except QueueError:
            for rest in bodies[k + 1:]:
                client.save(rest, "an earlier post of the batch was refused")
            raise
        if not accepted:
            for rest in bodies[k + 1:]:
                client.save(rest, "an earlier post of the batch was not accepted")
            return False
    return True


def serve(client: QueueClient, answer, limit: int, loops: int = 0, fields: dict | None = None,
          name: str = "label") -> dict:
    """Fetch, answer and post until `loops` fetches were made (0: until stopped). `answer(reply, rows)`
    returns an Answer."""
    if limit < 1 or loops < 0:
        raise ValueError(f"--limit must be >= 1 and --loops >= 0, got {limit} and {loops}")
    answered, fetches, idle, state = RecentIds(), 0, 0, ""
    totals = {"photos": 0, "failed": 0, "repeats": 0, "unusable": 0, "left": 0, "unsent": 0, "batches": 0}
    while not client.stopper.stopped and (loops == 0 or fetches < loops):
        began = time.perf_counter()
        reply = client.fetch(limit, **(fields or {}))
        fetches += 1
        if reply is None:  # stopped while waiting for the server
            break
        asked = time.perf_counter() - began
        batch = sort_rows(reply.get("rows"), answered)
        totals["repeats"] += batch.repeats
        totals["unusable"] += len(batch.unusable)
        unusable = ""
        if batch.unusable:
            examples = ", ".join(repr(v)[:40] for v in batch.unusable[:5])
            unusable = (f"{len(batch.unusable)} rows skipped as unusable: gridimage_id {examples}"
                        f"{', ...' if len(batch.unusable) > 5 else ''} (expected an integer >= 0)")
        if not batch.rows:  # a floor and a backoff, and a line only when the state changes: no spinning, no flood
            idle += 1
            why = "; ".join(w for w in (f"{batch.repeats} already answered" if batch.repeats else "", unusable) if w)
            now = "repeats" if batch.repeats else "unusable" if batch.unusable else "empty"
            wait = max(client.policy.base, _sleep_of(reply) or 0.0, client.policy.delay(idle - 1, client.rng))
            if now != state:
                client.say(f"{name}: nothing new to label ({why or 'no rows'}); asking again in {wait:.1f} s, then"
                           f" waiting longer while replies bring nothing new (at most {client.policy.cap:g} s)")
                state = now
            if client.stopper.wait(wait):
                break
            continue
        if idle:
            client.say(f"{name}: photos to label again after {idle} replies with nothing new")
        if unusable:
            client.say(f"{name}: {unusable}")
        idle, state = 0, ""
        result = answer(reply, batch.rows)
        for image_id, why in result.failures:
            client.say(f"{name}: photo {image_id} failed: {why}")
        posted = time.perf_counter()
        sent = post_all(client, result.posts)
        left = set(result.left)
        done = [r["gridimage_id"] for r in batch.rows if r["gridimage_id"] not in left]
        post_s, total_s = time.perf_counter() - posted, time.perf_counter() - began
        totals["batches"] += 1
        totals["left"] += len(left)
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
        wait = _sleep_of(reply)
        if wait:
            client.stopper.wait(wait)
    totals["fetches"], totals["retries"] = fetches, client.retries
    client.say(f"{name}: stopped after {fetches} fetches: {totals['photos']} photos labelled, {totals['failed']} failed,"
               f" {totals['unusable']} unusable ids, {totals['unsent']} not accepted, {totals['left']} left for the"
               f" queue, {totals['retries']} requests retried")
    return totals


def _sleep_of(reply: dict) -> float | None:
    try:
        wait = float(reply["sleep"])
    except (KeyError, TypeError, ValueError):
        return None
    return min(wait, MAX_SLEEP) if wait > 0 else None  # NaN, 0 or less: none
