"""`geocontext label`: workers that tag photos from Geograph's labeller queue (../shared/geograph-labeller.md).

queue.py        the queue client: fetch a batch, post records, retries with backoff, idempotency keys
replies.py      what the queue's replies mean: a stored post (the server's `<id>: <n>` lines), its errors
policy.py       the retry policy, and the stop on a signal (downloads end, posts get a few seconds)
transfer.py     HTTP exchanges with a total deadline, a size cap and an abort on stop (a watchdog thread)
photos.py       photo downloads: which URLs and hosts are fetched, redirects, whose fault a failure is
credentials.py  the queue's credentials (--token-env, --header) and masking secrets (by value) in log lines
fleet.py        N workers sharing one queue behind one IP: each one's offsets; the slot (unique_number)
batches.py      the rows a worker answers next: fetched at its offsets, titles joined, repeats set aside
records.py      the protocol's records: labels ("None" 0, "Failed" -1), float32 embeddings, vector checks
worker.py       the loop both workers share: ask, answer, post (labels first), back off on nothing new or an outage
context.py      context tags: download photos, embed photos and titles, apply a finished run
types.py        type tags: decode the posted CLIP vectors, apply a type-classifier checkpoint
verbs.py        the command line (`label types`, `label context`)
labeler_php.py  Geograph's labeler.json.php as state (photos, labels, per-IP offsets): what it answers
standin.py      a loopback stand-in of the queue (labeler_php.py by default, scripted faults on demand) and photo host
"""
