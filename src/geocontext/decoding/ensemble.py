"""Combine the probabilities of several variants: a weighted mean, weights fitted by log loss."""
from __future__ import annotations

import numpy as np


def combine(probs: list[np.ndarray], weights) -> np.ndarray:
    out = np.zeros_like(probs[0], dtype=np.float32)
    for w, p in zip(weights, probs):
        out += np.float32(w) * p
    return out


def fit_weights(probs: list[np.ndarray], y: np.ndarray) -> np.ndarray:
    """Weights on the simplex that minimise the binary log loss of the weighted mean on (probs, y).

    Log loss is smooth, so a few L-BFGS steps find the weights; exact match itself is a step function
    that would let the weights chase noise."""
    if len(probs) == 1:
        return np.ones(1)
    from scipy.optimize import (
        minimize,  # here: scipy takes a third of a second to import, `predict` never fits
    )

    stacked = np.stack([np.clip(p, 1e-6, 1 - 1e-6).reshape(-1) for p in probs]).astype(np.float64)
    target = np.asarray(y, dtype=np.float64).reshape(-1)

    def loss(z: np.ndarray):
        w = np.exp(z - z.max())
        w /= w.sum()
        mean = w @ stacked
        dloss_dmean = -(target / mean - (1 - target) / (1 - mean)) / len(target)
        grad_w = stacked @ dloss_dmean
        value = -np.mean(target * np.log(mean) + (1 - target) * np.log(1 - mean))
        return value, w * (grad_w - w @ grad_w)  # chain rule through the softmax

    z = minimize(loss, np.zeros(len(probs)), jac=True, method="L-BFGS-B").x
    w = np.exp(z - z.max())
    return w / w.sum()
