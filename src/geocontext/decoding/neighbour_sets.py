"""The label-set decoder with each photo's upload neighbours' tag sets as extra candidates.

Photos uploaded together are tagged alike (training.neighbours): a photo's nearest labelled id carries
exactly its tag set 15.9% of the time in the real train.csv. The label-set decoder scores a set S by
logit(p) . S + prior_weight * log share(S) and picks the best of the common training sets (or the photo's
own thresholded set). Here each of the photo's k nearest labelled ids (never the photo itself) offers its
own tag set too, scored the same way plus a bonus

    bonus + per_log_gap * log(1 + id gap) + per_agreeing * (other candidates with the same set)

for neighbours within max_gap: a neighbour's set is likelier than its share says, the less so the
further off it was uploaded, the more so when the neighbours agree. It may be a set too rare to be among
the common ones. The four settings are tuned for exact match on hold-out rows (`fit`); when no setting
beats the plain label-set decoder there, the plain one is returned, so ids that say nothing cost nothing.

The neighbours come from an `IdNeighbours` over the labelled rows (ids and tag sets), given at decode
time with the photos' ids: a run saves it (run_folder.neighbours_npz) and `predict` reads it back.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..training.neighbours import NeighbourSource, tag_codes, tag_sets
from .decoders import LabelSetDecoder

BONUS = (-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0)
PER_LOG_GAP = (0.0, -0.25, -0.5, -1.0, -1.5)
PER_AGREEING = (0.0, 0.5, 1.0, 2.0)
MAX_GAP = (8, 32, 128, 1024, 1 << 20)  # candidates further off are not offered


class SetShares:
    """log share of each tag set among labelled photos (every set seen, not only the common ones)."""

    def __init__(self, codes: np.ndarray):
        self.codes, counts = np.unique(codes, return_counts=True)
        self.log_share = np.log(counts / max(len(codes), 1)).astype(np.float32)
        self.unseen = float(np.log(1 / max(len(codes), 1)))

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        if not len(self.codes):
            return np.full(codes.shape, self.unseen, np.float32)
        pos = np.minimum(np.searchsorted(self.codes, codes), len(self.codes) - 1)
        return np.where(self.codes[pos] == codes, self.log_share[pos], self.unseen).astype(np.float32)


class _Scored:
    """The plain decoder's choice and score, and each neighbour candidate's score, for a grid of bonuses."""

    def __init__(self, base: LabelSetDecoder, probs: np.ndarray, codes: np.ndarray, gaps: np.ndarray,
                 shares: SetShares):
        logits = base.logits(probs)
        self.chosen = base.decode(probs)
        self.chosen_score = _score_of(base, logits, self.chosen)
        valid = codes > 0  # -1: no neighbour; 0: the empty set (never an answer: every photo gets a tag)
        sets = tag_sets(np.maximum(codes, 0), probs.shape[1]).astype(np.float32)  # (N, k, T)
        self.score = np.einsum("nkt,nt->nk", sets, logits) + base.prior_weight * shares(codes)
        self.score[~valid] = -np.inf
        self.codes, self.log_gap = codes, np.log1p(gaps).astype(np.float32)
        self.agreeing = ((codes[:, :, None] == codes[:, None, :]) & valid[:, None, :]).sum(axis=2) - 1.0

    def pick(self, bonus: float, per_log_gap: float, per_agreeing: float, max_gap: float):
        """Each photo's best neighbour candidate (index) and whether it beats the plain choice."""
        near = self.log_gap <= np.log1p(max_gap)
        score = np.where(near, self.score + bonus + per_log_gap * self.log_gap + per_agreeing * self.agreeing, -np.inf)
        best = score.argmax(axis=1)
        return best, score[np.arange(len(best)), best] > self.chosen_score

    def decode(self, bonus: float, per_log_gap: float, per_agreeing: float, max_gap: float) -> np.ndarray:
        best, use = self.pick(bonus, per_log_gap, per_agreeing, max_gap)
        out = self.chosen.copy()
        out[use] = tag_sets(self.codes[use, best[use]], out.shape[1])
        return out

    def exact_match(self, y: np.ndarray):
        """A function of the settings giving the exact match of `decode(*settings)` on labels `y`, from
        which candidate is right (codes compared once), not from decoded (N, tags) sets: the grid search
        costs O(N k) a setting, whatever the number of tags."""
        plain_right = (self.chosen == y).all(axis=1)
        right = self.codes == tag_codes(y)[:, None]
        rows = np.arange(len(y))

        def exact(*setting) -> float:
            best, use = self.pick(*setting)
            return float(np.where(use, right[rows, best], plain_right).mean())
        return exact


def _score_of(base: LabelSetDecoder, logits: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """The score the plain decoder gave the set it chose (a common set, or the own set less its penalty)."""
    codes, common = tag_codes(chosen), tag_codes(base.sets)
    order = np.argsort(common)
    pos = order[np.minimum(np.searchsorted(common[order], codes), len(common) - 1)]
    known = common[pos] == codes
    prior = np.where(known, base.log_prior[pos], base.unseen_log_prior)
    score = (logits * chosen).sum(axis=1) + base.prior_weight * prior
    return np.where(known, score, score - (base.novel_penalty or 0.0))


class NeighbourSetDecoder:
    kind = "neighbour_sets"

    def __init__(self, base: LabelSetDecoder, bonus: float, per_log_gap: float, per_agreeing: float,
                 max_gap: int, k: int, neighbours: NeighbourSource | None = None):
        self.base, self.k, self.neighbours = base, int(k), neighbours
        self.bonus, self.per_log_gap = float(bonus), float(per_log_gap)
        self.per_agreeing, self.max_gap = float(per_agreeing), int(max_gap)
        self._shares = None

    def _scored(self, probs: np.ndarray, ids) -> _Scored:
        if self.neighbours is None or ids is None:
            raise ValueError("the neighbour-set decoder needs the photos' ids and the run's labelled neighbours"
                             " (OUT/neighbours.npz)")
        if self._shares is None:
            self._shares = SetShares(self.neighbours.codes)
        codes, gaps = self.neighbours.candidates(np.asarray(ids, np.int64), self.k)
        return _Scored(self.base, probs, codes, gaps, self._shares)

    def decode(self, probs: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
        return self._scored(np.asarray(probs), ids).decode(self.bonus, self.per_log_gap, self.per_agreeing,
                                                           self.max_gap)

    @classmethod
    def fit(cls, base: LabelSetDecoder, probs: np.ndarray, y: np.ndarray, ids: np.ndarray,
            neighbours: NeighbourSource, k: int) -> "NeighbourSetDecoder | LabelSetDecoder":
        """The settings with the best exact match on (probs, y) of photos `ids`; the plain `base` when none
        beats it there."""
        probe = cls(base, 0.0, 0.0, 0.0, 0, k, neighbours)
        scored = probe._scored(np.asarray(probs), ids)
        y = np.asarray(y, dtype=np.uint8)
        exact_match = scored.exact_match(y)
        best, best_exact = None, float((scored.chosen == y).all(axis=1).mean())
        for setting in itertools.product(BONUS, PER_LOG_GAP, PER_AGREEING, MAX_GAP):
            exact = exact_match(*setting)
            if exact > best_exact:
                best, best_exact = setting, exact
        return base if best is None else cls(base, *best, k, neighbours)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "base": self.base.to_dict(), "bonus": self.bonus, "per_log_gap": self.per_log_gap,
                "per_agreeing": self.per_agreeing, "max_gap": self.max_gap, "k": self.k}

    @classmethod
    def from_dict(cls, d: dict, n_tags: int, neighbours: NeighbourSource | None = None) -> "NeighbourSetDecoder":
        return cls(LabelSetDecoder.from_dict(d["base"], n_tags), d["bonus"], d["per_log_gap"], d["per_agreeing"],
                   d["max_gap"], d["k"], neighbours)
