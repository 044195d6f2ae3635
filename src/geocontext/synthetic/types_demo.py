"""The types part of `make demo`: generate a types dataset, train, score the test rows, tag the photos."""
from __future__ import annotations

import time
from pathlib import Path

from ..typetags.predict import predict_file
from ..typetags.trainer import TypesTrainConfig
from ..typetags.workflow import train_run
from .types_data import write_dataset


def main(work: str | Path, n: int = 6000, seed: int = 0) -> dict:
    """Write `n` generated photos (with a few malformed lines) to WORK/types.jsonl, run the kit on them."""
    work = Path(work)
    start = time.perf_counter()
    data = write_dataset(work / "types.jsonl", n, seed)
    print(f"types demo data: {data.path} ({data.photos} photos, {len(data.bad_lines)} malformed lines)", flush=True)
    report = train_run(data.path, work / "run", TypesTrainConfig(seed=seed))
    tagged = predict_file(work / "run" / "model.pth", data.path, work / "predictions.jsonl")
    tes = report["tes"]
    print(f"types: test exact match {tes['exact_match']:.4f}, macro F1 {tes['macro_f1']:.4f}"
          f" (distance withheld: {tes['distance_withheld']['exact_match']:.4f}, {tes['distance_withheld']['macro_f1']:.4f});"
          f" {tagged['lines']} labeller lines for {tagged['photos']} photos ({tagged['low_confidence']} low-confidence)"
          f" in {tagged['out']}; {time.perf_counter() - start:.0f} s")
    return report
