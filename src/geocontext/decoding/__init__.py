"""Probabilities -> tags: decoders, tuned thresholds, ensembles, the honest choice among candidates, metrics."""
