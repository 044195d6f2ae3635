"""`geocontext label`: workers that tag photos from Geograph's labeller queue (../shared/geograph-labeller.md).

queue.py        the queue client: fetch a batch, post records (accepted only when the reply says so), retries
                with backoff, idempotency keys, stop on a signal
transfer.py     HTTP exchanges with a total deadline, a size cap and an abort on stop (a watchdog thread)
photos.py       photo downloads: which URLs and hosts are fetched, redirects, attempts within a deadline
credentials.py  the queue's credentials (--token-env, --header) and masking secrets in log lines
records.py      the protocol's records: labels ("None" 0, "Failed" -1), float32 embeddings, vector checks
worker.py       the loop both workers share: fetch, answer, post, back off on nothing new, one line per batch
context.py      context tags: download photos, embed photos and titles, apply a finished run
types.py        type tags: decode the posted CLIP vectors, apply a type-classifier checkpoint
verbs.py        the command line (`label types`, `label context`)
standin.py      a loopback stand-in of the queue and photo host, with fault modes, for tests and the benchmark
"""
