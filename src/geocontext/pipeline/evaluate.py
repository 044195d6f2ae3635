"""Score a submission file against a solution file, as the Kaggle leaderboard would."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..competition import ID
from ..console import say
from ..data.readers import read_labels, read_table
from ..data.submission import read_submission, validate
from ..decoding.metrics import exact_match, macro_f1
from ..errors import DataError


def evaluate(submission_path: str | Path, solution_path: str | Path) -> dict:
    """exact_match and macro_f1 over all rows; public/private exact match when the solution has a
    Kaggle-style Usage column. Mismatched ids or columns raise an error rather than a score."""
    solution = read_labels(solution_path)
    for respelt in solution.respelt:  # the solution is DATA: read, and said (data.ids)
        say(f"warning: {respelt}")
    submission = read_submission(submission_path)
    validate(submission, solution.ids, solution.columns, source=str(submission_path))
    sub_ids = pd.to_numeric(submission[ID]).to_numpy(dtype=np.int64)
    order = np.argsort(sub_ids)
    pos = order[np.searchsorted(sub_ids, solution.ids, sorter=order)]
    predicted = submission[list(solution.columns)].astype(np.uint8).to_numpy()[pos]
    result = {"rows": len(solution), "exact_match": exact_match(solution.y, predicted),
              "macro_f1": macro_f1(solution.y, predicted)}
    usage = read_table(solution_path, usecols=lambda c: c == "Usage")
    if "Usage" in usage.columns:
        kinds = usage["Usage"].astype(str).str.strip().str.lower().to_numpy()
        unknown = sorted(set(kinds) - {"public", "private", "ignored"})
        if unknown:
            raise DataError(f"{solution_path}: Usage values must be Public, Private or Ignored, found {unknown[:3]}")
        for kind in ("public", "private"):
            rows = kinds == kind
            if rows.any():
                result[kind] = exact_match(solution.y[rows], predicted[rows])
    return result
