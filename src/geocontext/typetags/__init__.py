"""Geograph type tags: the published 7-class, distance-aware classifier on CLIP image embeddings.

Data flows one way: types dataset (reader) -> distance index (distance) + targets and weights (labels)
-> distance dropout (dropout) -> training (train, model) -> probabilities -> thresholds (..decode,
..tune) -> scores and plots (evaluate) or the labeller's output (predict). Checkpoints (checkpoint)
keep the published schema. `run` ties the steps together for the CLI (`cli`); `synth` and `demo`
make and run a generated dataset.
"""
