"""Honest by construction: which hold-out rows may decide what, and the estimate the run reports.

The hold-out is cut in two by a hash of each id:
- the *stop* rows (about `STOP_SHARE`): each head's best epoch is chosen, and training stopped, on these
  alone; nothing else reads them, so no decoding decision or score sees rows that chose an epoch.
- the *selection* rows (the rest): every decoding decision (members, ensemble weights, decoder and its
  settings; decoding.select.choose) is made on them, and the reported estimate comes from them by
  nested cross-fitting: the whole choice is remade on one outer fold and scored on the other, so each
  row is scored by a choice made without it. The submission's choice is then made on all selection rows.

`final.exact_match` in report.json is that nested estimate; the winner's score within the selection
(the best of many candidates on the same rows, hence optimistic) is kept as `selection_exact_match`.

The hold-out looks like the photos the run will tag (`matched_radius`): what a head and a decoder read
from upload neighbours depends on how far the nearest labelled id is, so each hold-out row ignores the
labelled ids within a radius chosen to give the hold-out the test photos' gaps (issue 30). Where the test
sits among the labelled ids as they sit among themselves (the competition), the radii are about 0."""
from __future__ import annotations

import numpy as np

from ..console import say
from ..data.split import folds, stop_mask
from ..decoding.metrics import exact_match, macro_f1
from ..decoding.select import DecodeConfig, choose
from ..hashing import content_digest, splitmix64, unit_interval
from ..training.neighbours import GAP_CAP, NeighbourSource

STOP_SHARE = 0.25
OUTER_FOLDS = 2
OUTER_SALT = 7919  # outer folds hash with another seed than choose's inner folds
_MATCH_SALT = 0x3C6EF372FE94F82B  # ties among equal gaps are broken by this hash of the id
MATCH_NEIGHBOURS = 16  # a hold-out row's nearest labelled ids it may skip to when matched to the test


def matched_radius(ids: np.ndarray, gaps: np.ndarray, target: np.ndarray, seed: int) -> np.ndarray:
    """int64 exclusion radius per row (photos `ids`; `gaps`: each row's gaps to its nearest other labelled
    ids, nearest first, (N, K) or (N,)) so that, ignoring the labelled ids within it, the rows' gaps follow
    the distribution of `target` (the gaps of the photos the run will tag).

    Rows are matched to the target by rank (the row with the q-th smallest gap gets the target's q-th
    quantile; equal gaps ordered by a hash of the id). A row whose quantile is no further than its
    nearest labelled id keeps radius 0 (no row can be brought nearer); the others skip to the neighbour
    among their K nearest whose gap is closest to the quantile (on a log scale: ids are discrete and
    sparse in places, so "everything within the quantile" can land far beyond it), or past all K when the
    quantile is beyond them. Identical distributions give radius about 0; a far test gives every row a
    far gap."""
    ids = np.asarray(ids, np.int64)
    gaps = np.minimum(np.asarray(gaps, np.int64).reshape(len(ids), -1), GAP_CAP)
    target = np.minimum(np.asarray(target, np.int64), GAP_CAP)
    n, natural = len(ids), gaps[:, 0]
    if not n or not len(target):
        return np.zeros(n, np.int64)
    with np.errstate(over="ignore"):
        tie = unit_interval(splitmix64(ids.astype(np.uint64) ^ np.uint64(_MATCH_SALT + seed)))
    quantile = np.empty(n)
    quantile[np.lexsort((tie, natural))] = (np.arange(n) + 0.5) / n
    want = np.quantile(target, quantile, method="inverted_cdf").astype(np.int64)
    closest = np.take_along_axis(gaps, np.abs(np.log1p(gaps) - np.log1p(want)[:, None]).argmin(axis=1)[:, None], 1)[:, 0]
    reach = np.where(want > gaps[:, -1], want, closest)  # beyond the K nearest: ignore all within the quantile
    return np.where(want > natural, reach - 1, 0).astype(np.int64)


def stop_rows(ids: np.ndarray, holdout: np.ndarray, seed: int) -> np.ndarray:
    """Bool over all labelled rows: the hold-out rows that choose epochs."""
    return holdout & stop_mask(ids, STOP_SHARE, seed)


def stop_key(ids: np.ndarray, stop: np.ndarray) -> str:
    """Names the rows epochs were chosen on: a saved head stopped on other rows is not reused."""
    return "stop:" + content_digest(np.sort(ids[stop]))


def honest_choice(probs: dict[str, np.ndarray], y: np.ndarray, ids: np.ndarray, train_y: np.ndarray,
                  config: DecodeConfig, storage: str | None = None, neighbours: NeighbourSource | None = None,
                  study: str = "final"):
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
    choice, candidates, _ = choose(probs, y, ids, train_y, config, storage, neighbours, study)
    estimate = {"exact_match": exact_match(y, predicted), "macro_f1": macro_f1(y, predicted),
                "fold_exact_match": [exact_match(y[outer == k], predicted[outer == k]) for k in range(OUTER_FOLDS)],
                "fold_choices": picked, "rows": int(len(y))}
    return choice, candidates, predicted, estimate
