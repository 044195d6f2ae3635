"""The loop both workers share: fetch a batch, answer it, post the answers, say how it went."""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

from ..console import say
from .queue import QueueClient


@dataclass
class Answer:
    """What a worker made of one batch: the bodies to post, in order, and what it timed."""

    posts: list[list[dict]]
    failed: int = 0
    seconds: dict = field(default_factory=dict)  # e.g. {"fetch": 1.2, "embed": 3.4}: photo downloads, model


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


def fresh_rows(rows, answered: RecentIds) -> tuple[list[dict], int]:
    """The rows not answered yet (the first of any id repeated in the batch); and how many were dropped.
    A row without a usable gridimage_id cannot be answered at all and is dropped too."""
    seen, out = set(), []
    for row in rows:
        try:
            image_id = int(row["gridimage_id"])
        except (TypeError, KeyError, ValueError):
            continue
        if image_id in seen or image_id in answered:
            continue
        seen.add(image_id)
        out.append({**row, "gridimage_id": image_id})
    return out, len(rows) - len(out)


def serve(client: QueueClient, answer, limit: int, loops: int = 0, fields: dict | None = None,
          name: str = "label") -> dict:
    """Fetch, answer and post until `loops` fetches were made (0: until stopped). `answer(reply, rows)`
    returns an Answer. Without a `sleep` in the reply, an empty batch waits with exponential backoff."""
    if limit < 1 or loops < 0:
        raise ValueError(f"--limit must be >= 1 and --loops >= 0, got {limit} and {loops}")
    answered, totals, fetches, idle = RecentIds(), {"photos": 0, "failed": 0, "repeats": 0, "batches": 0}, 0, 0
    while not client.stopper.stopped and (loops == 0 or fetches < loops):
        began = time.perf_counter()
        reply = client.fetch(limit, **(fields or {}))
        fetches += 1
        if reply is None:  # stopped while the server was unreachable
            break
        asked = time.perf_counter() - began
        raw = reply.get("rows") or []
        rows, repeats = fresh_rows(raw if isinstance(raw, list) else [], answered)
        totals["repeats"] += repeats
        if not rows:
            idle += 1
            wait = _sleep_of(reply)
            wait = client.policy.delay(idle - 1, client.rng) if wait is None else wait
            say(f"{name}: no photos to label{f' ({repeats} already answered)' if repeats else ''}; asking again in {wait:.1f} s")
            client.stopper.wait(wait)
            continue
        idle = 0
        result = answer(reply, rows)
        posted = time.perf_counter()
        for body in result.posts:
            if body:
                client.post(body)
        answered.add(r["gridimage_id"] for r in rows)
        post_s, total_s = time.perf_counter() - posted, time.perf_counter() - began
        totals["photos"] += len(rows)
        totals["failed"] += result.failed
        totals["batches"] += 1
        model = {k: v for k, v in result.seconds.items() if k != "fetch"}
        seconds = {"fetch": asked + result.seconds.get("fetch", 0.0), **model, "post": post_s}  # batch + its photos
        times = ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items())
        say(f"{name}: batch {totals['batches']}: {len(rows)} photos ({result.failed} failed"
            f"{f', {repeats} already answered' if repeats else ''}), {len(rows) / max(total_s, 1e-9):.1f} photos/s;"
            f" {times}")
        wait = _sleep_of(reply)
        if wait:
            client.stopper.wait(wait)
    totals["fetches"], totals["retries"] = fetches, client.retries
    say(f"{name}: stopped after {fetches} fetches: {totals['photos']} photos labelled, {totals['failed']} failed,"
        f" {totals['retries']} requests retried")
    return totals


def _sleep_of(reply: dict) -> float | None:
    try:
        return max(0.0, float(reply["sleep"]))
    except (KeyError, TypeError, ValueError):
        return None
