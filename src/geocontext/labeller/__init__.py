"""`geocontext label`: workers that tag photos from Geograph's labeller queue (../shared/geograph-labeller.md).

queue.py    the HTTP client: fetch a batch, post records, retries with backoff, stop on a signal
records.py  the protocol's records: labels ("None" 0, "Failed" -1), float32 embeddings, vector checks
worker.py   the loop both workers share: fetch, answer, post, one progress line per batch
context.py  context tags: download photos, embed photos and titles, apply a finished run
types.py    type tags: decode the posted CLIP vectors, apply a type-classifier checkpoint
verbs.py    the command line (`label types`, `label context`)
"""
