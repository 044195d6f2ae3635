"""Prototype: the label-set decoder with each photo's nearest labelled neighbours' tag sets as extra
candidates (issue 23). Nothing here is used by `run`; `bench.neighbours` measures it.

The label-set decoder scores a set S by logit(p) . S + prior_weight * log freq(S) (logits taken against
its own threshold) and picks the best of the common training sets, or the photo's own thresholded set
when that wins by a novel penalty. Here each of the photo's k nearest labelled ids adds its own tag set
as a candidate, scored the same way plus a bonus a + b * log(1 + gap) + c * (other neighbours among the
k with the same set) (a neighbour's set is likelier than its frequency says, the less the further off it
was uploaded, the more if its neighbours agree), for neighbours within max_gap; a, b, c and max_gap are
tuned on the rows given.
A neighbour's set may be rare (outside the 1,000 common sets), so this can reach sets the decoder cannot.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..decoding.decoders import LabelSetDecoder
from ..training.neighbours import tag_codes, tag_sets

BONUS_A = (-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0)
BONUS_B = (0.0, -0.25, -0.5, -1.0, -1.5)
BONUS_C = (0.0, 0.5, 1.0, 2.0)
MAX_GAP = (8, 32, 128, 1024, 1 << 20)  # candidates further off are not offered


class SetFrequency:
    """log share of each tag set in the training labels (every set seen, not only the common ones)."""

    def __init__(self, y: np.ndarray):
        self.codes, counts = np.unique(tag_codes(y), return_counts=True)
        self.log_share = np.log(counts / len(y)).astype(np.float32)
        self.unseen = float(np.log(1 / len(y)))

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(self.codes, codes), len(self.codes) - 1)
        return np.where(self.codes[pos] == codes, self.log_share[pos], self.unseen).astype(np.float32)


def _chosen_scores(decoder: LabelSetDecoder, logits: np.ndarray, chosen: np.ndarray, freq: SetFrequency) -> np.ndarray:
    """The score the decoder gave the set it chose (a common set, or the own set less the penalty)."""
    codes, top = tag_codes(chosen), tag_codes(decoder.sets)
    order = np.argsort(top)
    pos = order[np.minimum(np.searchsorted(top[order], codes), len(top) - 1)]
    known = top[pos] == codes
    prior = np.where(known, decoder.log_prior[pos], decoder.unseen_log_prior)
    score = (logits * chosen).sum(axis=1) + decoder.prior_weight * prior
    return np.where(known, score, score - (decoder.novel_penalty or 0.0))


class NeighbourSets:
    """Decoded sets and the neighbour candidates' scores, precomputed once for a grid of bonuses."""

    def __init__(self, decoder: LabelSetDecoder, probs: np.ndarray, codes: np.ndarray, gaps: np.ndarray,
                 freq: SetFrequency):
        logits = decoder.logits(probs)
        self.base = decoder.decode(probs)
        self.base_score = _chosen_scores(decoder, logits, self.base, freq)
        valid = codes > 0  # -1: no neighbour; 0: an empty set (never a candidate: every photo has a tag)
        sets = tag_sets(np.maximum(codes, 0), probs.shape[1]).astype(np.float32)  # (N, k, T)
        self.cand_score = np.einsum("nkt,nt->nk", sets, logits) + decoder.prior_weight * freq(codes)
        self.cand_score[~valid] = -np.inf
        self.codes, self.loggap = codes, np.log1p(gaps).astype(np.float32)
        self.agree = ((codes[:, :, None] == codes[:, None, :]) & valid[:, None, :]).sum(axis=2) - 1.0

    def decode(self, a: float, b: float, c: float = 0.0, max_gap: float = np.inf) -> np.ndarray:
        score = np.where(self.loggap <= np.log1p(max_gap), self.cand_score + a + b * self.loggap + c * self.agree,
                         -np.inf)
        best = score.argmax(axis=1)
        use = score[np.arange(len(best)), best] > self.base_score
        out = self.base.copy()
        out[use] = tag_sets(self.codes[use, best[use]], self.base.shape[1])
        return out


def tune_bonus(decoder: LabelSetDecoder, probs: np.ndarray, y: np.ndarray, codes: np.ndarray, gaps: np.ndarray,
               freq: SetFrequency) -> tuple[float, float, float, int, float]:
    """(a, b, c, max_gap, exact match) with the best exact match on (probs, y); a = -inf: no bonus beat
    the plain decoder there, so none is used."""
    sets = NeighbourSets(decoder, probs, codes, gaps, freq)
    right = lambda tags: float((tags == y).all(axis=1).mean())  # noqa: E731
    best = (-np.inf, 0.0, 0.0, 0, right(sets.base))
    for a, b, c, g in itertools.product(BONUS_A, BONUS_B, BONUS_C, MAX_GAP):
        e = right(sets.decode(a, b, c, g))
        if e > best[4]:
            best = (a, b, c, g, e)
    return best


def decode_with_neighbours(decoder: LabelSetDecoder, probs: np.ndarray, codes: np.ndarray, gaps: np.ndarray,
                           freq: SetFrequency, a: float, b: float, c: float, max_gap: int) -> np.ndarray:
    if not np.isfinite(a):  # tuning found no bonus that helps: the plain label-set decoder
        return decoder.decode(probs)
    return NeighbourSets(decoder, probs, codes, gaps, freq).decode(a, b, c, max_gap)
