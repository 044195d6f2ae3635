"""The type-tag worker: rows carry the CLIP image vector and the camera distance; a type-classifier
checkpoint (ours or a published one) gives the 7 class probabilities."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..typetags.checkpoint import load_checkpoint
from ..typetags.classifier import type_probabilities
from ..typetags.distance import distance_index
from .records import decode_vector, failed_records, label_records
from .worker import Answer


class TypesWorker:
    fields: ClassVar[dict] = {"embeddings": 1}  # ask the queue for the vectors

    def __init__(self, checkpoint, threshold: float = 0.2):
        self.model, ckpt = load_checkpoint(checkpoint)
        self.classes, self.dist_map = list(ckpt["classes"]), dict(ckpt["dist_map"])
        self.threshold = threshold
        digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()[:12]
        self.facts = {"checkpoint": Path(checkpoint).name, "sha256": digest}  # for the User-Agent

    def __call__(self, reply: dict, rows: list[dict]) -> Answer:
        began = time.perf_counter()
        ids = np.array([r["gridimage_id"] for r in rows], dtype=np.int64)
        decoded = [decode_vector(r.get("embeddings"), self.model.clip_dim) for r in rows]
        ok = np.array([v is not None for v, _ in decoded], dtype=bool)
        failures = [(int(i), why) for i, (v, why) in zip(ids, decoded) if v is None]
        records = failed_records(ids[~ok])
        if ok.any():
            vectors = np.stack([v for v, _ in decoded if v is not None])
            distance = distance_index([_distance(r) for r, good in zip(rows, ok) if good], self.dist_map)
            probs = type_probabilities(self.model, vectors, distance)
            records = label_records(ids[ok], probs, self.classes, self.threshold) + records
        return Answer([records], failures, {"model": time.perf_counter() - began})


def _distance(row: dict):
    """The row's distance as the protocol sends it (a string or a number); anything else is unknown."""
    value = row.get("distance")
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else "Unknown"
