"""The published labeller's output: one JSON line per (image_id, label, score) at or above the
threshold; a photo with no class there gets one line with its most probable class, marked
"low_confidence": true (the published labeller's "(Low Confidence)" guess)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..decoding.decoders import ThresholdDecoder
from ..errors import DataError
from ..writing import writing
from .checkpoint import load_checkpoint, thresholds_of
from .classifier import type_probabilities as predict_proba
from .distance import distance_index
from .reader import ReadReport, iter_rows

LABELLER_THRESHOLD = 0.2  # the published labeller's


def labeller_records(ids, probs, classes, decoder: ThresholdDecoder) -> pd.DataFrame:
    """image_id, label, score, low_confidence: photo by photo, classes in output order."""
    probs = np.asarray(probs, dtype=np.float32)
    tags = decoder.decode(probs)  # at least one class per photo: the most probable when none passes
    passed = (probs >= decoder.thresholds).any(axis=1)
    row, col = np.nonzero(tags)
    return pd.DataFrame({"image_id": np.asarray(ids, dtype=np.int64)[row], "label": np.asarray(classes, dtype=object)[col],
                         "score": probs[row, col].astype(np.float64).round(6), "low_confidence": ~passed[row]})


def predict_file(model_path, data_path, out_path, threshold: float | None = LABELLER_THRESHOLD,
                 chunk_rows: int = 65_536) -> dict:
    """Tag every usable photo of a types dataset (.jsonl or .jsonl.gz), chunk by chunk, into a JSON-lines file.

    Only gridimage_id, embeddings and distance are read: rows without types or split (the published
    "unknown" file: title and path instead) are tagged like any other. When the read stops part-way
    (a truncated .gz), the photos tagged before it stay in OUT.part and the error says so.

    threshold=None uses the per-class thresholds tuned when the checkpoint was trained."""
    model, ckpt = load_checkpoint(model_path)
    classes, dist_map = list(ckpt["classes"]), dict(ckpt["dist_map"])
    if threshold is None:
        tuned = thresholds_of(ckpt)
        if tuned is None:
            raise ValueError(f"{model_path}: no tuned thresholds stored (a published checkpoint?); give --threshold")
        decoder = ThresholdDecoder(tuned)
    else:
        decoder = ThresholdDecoder(threshold)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    report = ReadReport(str(data_path))
    photos = lines = low = 0
    tmp = out_path.with_name(out_path.name + ".part")  # a finished file or none: never a half-written one
    with writing(out_path.parent, out_path.name, partial=[tmp]), open(tmp, "w", encoding="utf-8") as handle:
        try:
            for rows in iter_rows(data_path, report, chunk_rows=chunk_rows, dim=model.clip_dim):
                probs = predict_proba(model, rows.embeddings, distance_index(rows.distance, dist_map))
                records = labeller_records(rows.ids, probs, classes, decoder)
                if len(records):
                    handle.write(records.to_json(orient="records", lines=True, double_precision=6).rstrip("\n") + "\n")
                photos, lines, low = photos + len(rows), lines + len(records), low + int(records["low_confidence"].sum())
        except DataError as exc:  # e.g. a truncated .gz: keep what was tagged, under its own name
            handle.close()
            if not photos:
                tmp.unlink()
                raise
            raise DataError(f"{exc}; the {photos} photos tagged before it are in {tmp}") from None
    tmp.replace(out_path)
    return {"photos": photos, "lines": lines, "low_confidence": low, "thresholds": decoder.thresholds.tolist(),
            "read": report.to_dict(), "read_summary": report.summary(), "out": str(out_path)}
