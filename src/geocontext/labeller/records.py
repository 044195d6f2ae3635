"""The records a worker posts, and the check of the vectors the queue sends.

Labels: {"image_id", "label", "score"} for each class or tag scoring above the threshold (and
"chosen": true on those the kit's decoder picks, which may score below it); {"label": "None", "score": 0}
when a photo has none; {"label": "Failed", "score": -1} when it could not be processed. Embeddings:
{"image_id", "type": "image"|"title", "embeddings": base64 of little-endian float32}."""
from __future__ import annotations

import base64
import binascii

import numpy as np

NONE = "None"
FAILED = "Failed"


def label_records(ids, probs: np.ndarray, names, threshold: float, chosen: np.ndarray | None = None) -> list[dict]:
    """Records photo by photo, labels in output order. A label is posted when its probability is above
    `threshold` (as the published workers compare) or `chosen` marks it."""
    probs = np.asarray(probs, dtype=np.float64)
    keep = probs > threshold
    if chosen is not None:
        chosen = np.asarray(chosen, dtype=bool)
        keep |= chosen
    names = list(names)
    out = []
    for r, image_id in enumerate(np.asarray(ids, dtype=np.int64).tolist()):
        cols = np.flatnonzero(keep[r])
        if not len(cols):
            out.append({"image_id": image_id, "label": NONE, "score": 0})
        for c in cols.tolist():
            record = {"image_id": image_id, "label": names[c], "score": round(float(probs[r, c]), 6)}
            if chosen is not None and chosen[r, c]:
                record["chosen"] = True
            out.append(record)
    return out


def failed_records(ids) -> list[dict]:
    return [{"image_id": int(i), "label": FAILED, "score": -1} for i in ids]


def encode_vector(vector: np.ndarray) -> str:
    """base64 of the vector as little-endian float32, whatever precision the model ran in."""
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


def embedding_records(ids, image: np.ndarray, title: np.ndarray) -> list[dict]:
    out = []
    for kind, matrix in (("image", image), ("title", title)):
        out += [{"image_id": int(i), "type": kind, "embeddings": encode_vector(v)} for i, v in zip(ids, matrix)]
    return out


def decode_vector(text, dim: int) -> tuple[np.ndarray | None, str]:
    """(float32 vector, "") or (None, why): not base64, wrong length, or not finite. Never a zero vector."""
    if not isinstance(text, str) or not text:
        return None, "no embeddings"
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None, "embeddings are not valid base64"
    if len(raw) != 4 * dim:
        return None, f"embeddings have {len(raw)} bytes, expected {4 * dim} ({dim} float32)"
    vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not np.isfinite(vector).all():
        return None, "embeddings hold NaN or infinity"
    return vector, ""
