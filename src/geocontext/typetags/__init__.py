"""Geograph type tags: the published 7-class, distance-aware classifier on CLIP image embeddings.

Data flows one way: types dataset (reader) -> distance index (distance) + targets and weights (labels)
-> distance dropout (dropout) -> training (trainer, classifier; the epoch loop of ..training.loop)
-> probabilities -> thresholds (..decoding) -> scores and plots (scoring) or the labeller's output
(labeller). Checkpoints (checkpoint) keep the published schema. `workflow` ties the steps together for
the `types` verbs (`verbs`); ..synthetic.types_data and ..synthetic.types_demo make and run a
generated dataset.
"""
