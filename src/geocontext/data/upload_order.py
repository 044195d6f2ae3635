"""Facts of upload order in a competition's own files: do photos uploaded together share their tags,
and do the test ids sit among the labelled ones? (issue 23: the id-neighbour block rests on both.)

    PYTHONPATH=src python -m geocontext.data.upload_order DATA     # prints the facts as JSON

`upload_order_facts` needs numpy only: ids and 0/1 labels in, a dict of plain numbers out. On the real
train.csv.zip / test.csv: a photo's nearest other labelled id has exactly its tag set 15.9% of the time
against 0.64% for two photos at random; labelled pairs at id gap 1 share it 19.4% of the time; test ids
are a median 3 ids from a labelled one (29% within 1, 77% within 5), as labelled ids are from each other.
The test is judged against the labelled ids: `test_expected_same_set` is the rate at which labelled
photos' nearest labelled ids carry their set at the gaps the test photos sit at (a test far from every
labelled id gets about the random-pair rate, however strong the signal among the labelled ids).
"""
from __future__ import annotations

import json
import sys

import numpy as np


def _set_index(y: np.ndarray) -> np.ndarray:
    """One integer per distinct 0/1 row (any number of tags)."""
    packed = np.packbits(np.asarray(y, dtype=np.uint8), axis=1)
    _, index = np.unique(packed, axis=0, return_inverse=True)
    return index.ravel()


BUCKETS = (1, 5, 100, 10_000)  # gap buckets the facts are told in: <= 1, 2..5, 6..100, 101..10,000, beyond
PSEUDO_PAIRS = 50  # each bucket's same-set rate is shrunk toward the random-pair rate with these


def _gap_stats(gaps: np.ndarray) -> dict:
    if not len(gaps):
        return {"median": None, "within_1": None, "within_5": None, "within_100": None}
    return {"median": int(np.median(gaps)), **{f"within_{b}": float((gaps <= b).mean()) for b in BUCKETS}}


def _bucket(gaps: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(BUCKETS), gaps, side="left")


def nearest_gaps(sorted_ids: np.ndarray, ids: np.ndarray, exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
    """(position in sorted_ids, gap) of each id's nearest entry of `sorted_ids` (ties to the lower id);
    with exclude_self, an id's own entry is skipped (ids must then be in sorted_ids)."""
    n = len(sorted_ids)
    ids = np.asarray(ids, dtype=np.int64)
    left = np.searchsorted(sorted_ids, ids, "left") - 1
    right = np.searchsorted(sorted_ids, ids, "right" if exclude_self else "left")
    big = np.iinfo(np.int64).max
    lgap = np.where(left >= 0, ids - sorted_ids[np.clip(left, 0, n - 1)], big)
    rgap = np.where(right < n, sorted_ids[np.clip(right, 0, n - 1)] - ids, big)
    use_left = lgap <= rgap
    return np.where(use_left, left, right), np.where(use_left, lgap, rgap)


def upload_order_facts(labelled_ids: np.ndarray, y: np.ndarray, test_ids: np.ndarray | None = None) -> dict:
    """Upload-order facts of a labelled set (ids, 0/1 labels) and, optionally, the test ids."""
    order = np.argsort(labelled_ids, kind="stable")
    ids = np.asarray(labelled_ids, dtype=np.int64)[order]
    sets = _set_index(np.asarray(y)[order])
    n = len(ids)
    facts: dict = {"labelled": int(n)}
    if n >= 2:
        pos, gap = nearest_gaps(ids, ids, exclude_self=True)
        same = sets[pos] == sets
        counts = np.bincount(sets).astype(np.float64)
        pair_gap, pair_same = np.diff(ids), sets[1:] == sets[:-1]
        random_pair = float((counts * (counts - 1)).sum() / (n * (n - 1.0)))
        facts.update({
            "nearest_same_set": float(same.mean()),
            "random_pair_same_set": random_pair,  # exact: the share of all pairs of photos
            "lift": float(same.mean() / random_pair) if random_pair else None,
            "pairs_same_set_at_gap_1": float(pair_same[pair_gap == 1].mean()) if (pair_gap == 1).any() else None,
            "pairs_same_set_within_gap_10": float(pair_same[pair_gap <= 10].mean()) if (pair_gap <= 10).any() else None,
            "labelled_gap": _gap_stats(gap),
        })
        # how often the nearest labelled id carries a photo's set, by how far off it is (labelled photos)
        bucket = _bucket(gap)
        n_in = np.bincount(bucket, minlength=len(BUCKETS) + 1)
        same_in = np.bincount(bucket, weights=same, minlength=len(BUCKETS) + 1)
        rate = ((same_in + PSEUDO_PAIRS * random_pair) / (n_in + PSEUDO_PAIRS)).tolist()  # few pairs: about random
        facts["same_set_by_gap"] = {label: r for label, r in zip(("1", "2-5", "6-100", "101-10000", ">10000"), rate)}
    if test_ids is not None:
        facts["test"] = int(len(test_ids))
        test_gap = nearest_gaps(ids, test_ids, exclude_self=False)[1] if n else np.empty(0, np.int64)
        facts["test_gap"] = _gap_stats(test_gap)
        if n >= 2 and len(test_gap):
            # the test judged against the labelled ids: the rate labelled photos show at the test photos' gaps
            expected = float(np.mean(np.asarray(rate)[_bucket(test_gap)]))
            facts["test_expected_same_set"] = expected
            facts["test_lift"] = expected / facts["random_pair_same_set"] if facts["random_pair_same_set"] else None
    return facts


def main(argv=None) -> int:
    from .readers import read_test_ids, read_train_labels  # the reader only for the command line

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m geocontext.data.upload_order DATA", file=sys.stderr)
        return 2
    labels = read_train_labels(args[0])
    print(json.dumps(upload_order_facts(labels.ids, labels.y, read_test_ids(args[0])), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
