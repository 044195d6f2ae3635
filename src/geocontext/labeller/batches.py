"""The rows a worker answers next: fetched at its offsets (fleet.py), the titles joined, the repeats and
unusable ids set aside.

Geograph's server sends a row's `title` only when asked with `title=1`, and then no `fullpath` (the
photo). So when the rows of a batch carry no title, the same offset and limit are asked again with
title=1 and the titles joined by id: the same query gives the same rows unless a post came in between;
a row missing from the second reply is left for the queue (not answered now), a row there without a
`title` has an empty one (the server drops empty fields)."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from .fleet import Share
from .queue import QueueClient

ID_LIMIT = 2**63  # ids travel as int64


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
class Batch:
    reply: dict  # the reply that brought the rows (its prefix, its sleep)
    rows: list[dict]  # to answer: the first of each id not answered yet, its id an int
    repeats: int = 0  # ids answered already, or repeated in the batch
    unusable: list = field(default_factory=list)  # the unusable ids (or rows) as sent
    left: list[int] = field(default_factory=list)  # ids not answered now (no title came for them): the queue keeps them


def sort_rows(reply: dict, answered: RecentIds) -> Batch:
    out = Batch(reply, [])
    raw, seen = reply.get("rows"), set()
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


class Batches:
    """next() -> the next Batch (None when stopped while asking). `titles`: the rows need their titles."""

    def __init__(self, client: QueueClient, limit: int, fields: dict | None, share: Share, titles: bool = False):
        self.client, self.limit, self.fields, self.titles = client, limit, dict(fields or {}), titles
        self.offsets = share.offsets(limit)
        self.level = 0  # how far down the offsets this worker went (the end of the queue); back to 0 when idle
        self.fetches = 0

    def next(self, answered: RecentIds) -> Batch | None:
        for level in range(self.level, len(self.offsets)):
            reply = self._fetch(self.offsets[level])
            if reply is None:
                return None
            if _has_rows(reply):
                self.level = level
                break
        else:
            self.level = 0  # nothing anywhere: after the wait, start again from this worker's own offset
        batch = sort_rows(reply, answered)
        if self.titles and batch.rows and not any("title" in row for row in batch.rows):
            return self._with_titles(batch, self.offsets[self.level])
        return batch

    def _fetch(self, offset, **extra) -> dict | None:
        self.fetches += 1
        return self.client.fetch(self.limit, **self.fields, offset=offset, **extra)

    def _with_titles(self, batch: Batch, offset) -> Batch:
        again = self._fetch(offset, title=1)
        rows = again.get("rows") if again else None
        titles = {}
        for row in rows if isinstance(rows, list) else []:
            image_id = usable_id(row.get("gridimage_id")) if isinstance(row, dict) else None
            if image_id is not None:
                titles[image_id] = row.get("title") if isinstance(row.get("title"), str) else ""
        batch.left = [r["gridimage_id"] for r in batch.rows if r["gridimage_id"] not in titles]
        batch.rows = [{**r, "title": titles[r["gridimage_id"]]} for r in batch.rows if r["gridimage_id"] in titles]
        return batch


def _has_rows(reply: dict) -> bool:
    rows = reply.get("rows")
    return isinstance(rows, list) and len(rows) > 0
