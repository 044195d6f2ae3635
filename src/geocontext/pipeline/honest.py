"""Honest by construction: which hold-out rows may decide what, and the estimate the run reports.

The hold-out is cut in two by a hash of each id:
- the *stop* rows (about `STOP_SHARE`): each head's best epoch is chosen, and training stopped, on these
  alone; nothing else reads them, so no decoding decision or score sees rows that chose an epoch.
- the *selection* rows (the rest): every decoding decision (members, ensemble weights, decoder and its
  settings; decoding.select.choose) is made on them, and the reported estimate comes from them by
  nested cross-fitting: the whole choice is remade on one outer fold and scored on the other, so each
  row is scored by a choice made without it. The submission's choice is then made on all selection rows.

`final.exact_match` in report.json is that nested estimate; the winner's score within the selection
(the best of many candidates on the same rows, hence optimistic) is kept as `selection_exact_match`."""
from __future__ import annotations

import numpy as np

from ..console import say
from ..data.split import folds, stop_mask
from ..decoding.metrics import exact_match, macro_f1
from ..decoding.select import DecodeConfig, choose
from ..hashing import content_digest
from ..training.neighbours import IdNeighbours

STOP_SHARE = 0.25
OUTER_FOLDS = 2
OUTER_SALT = 7919  # outer folds hash with another seed than choose's inner folds


def stop_rows(ids: np.ndarray, holdout: np.ndarray, seed: int) -> np.ndarray:
    """Bool over all labelled rows: the hold-out rows that choose epochs."""
    return holdout & stop_mask(ids, STOP_SHARE, seed)


def stop_key(ids: np.ndarray, stop: np.ndarray) -> str:
    """Names the rows epochs were chosen on: a saved head stopped on other rows is not reused."""
    return "stop:" + content_digest(np.sort(ids[stop]))


def honest_choice(probs: dict[str, np.ndarray], y: np.ndarray, ids: np.ndarray, train_y: np.ndarray,
                  config: DecodeConfig, storage: str | None = None, neighbours: IdNeighbours | None = None):
    """(choice, candidates, predicted, estimate) on the selection rows `probs`/`y`/`ids` (`neighbours`:
    the labelled rows, for the neighbour-set decoder; a row's own label is never its candidate).

    `predicted` holds each row's tags from the outer choice that never saw it (for honest per-tag
    figures); `estimate` the nested exact match and macro F1 of the procedure that made `choice`."""
    outer = folds(ids, OUTER_FOLDS, config.seed + OUTER_SALT)
    predicted = np.zeros_like(y)
    picked = []
    for k in range(OUTER_FOLDS):
        fit, score = outer != k, outer == k
        if fit.sum() < 2 or score.sum() == 0:
            raise ValueError(f"too few hold-out rows for an honest estimate ({len(y)} selection rows); "
                             "raise holdout_fraction or label more photos")
        inner, _, _ = choose({m: p[fit] for m, p in probs.items()}, y[fit], ids[fit], train_y, config,
                             neighbours=neighbours)
        predicted[score] = inner.decode([probs[m][score] for m in inner.members], ids[score])
        picked.append(inner.name)
        say(f"  outer fold {k}: chose {inner.name}")
    choice, candidates, _ = choose(probs, y, ids, train_y, config, storage, neighbours)
    estimate = {"exact_match": exact_match(y, predicted), "macro_f1": macro_f1(y, predicted),
                "fold_exact_match": [exact_match(y[outer == k], predicted[outer == k]) for k in range(OUTER_FOLDS)],
                "fold_choices": picked, "rows": int(len(y))}
    return choice, candidates, predicted, estimate
