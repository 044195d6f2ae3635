"""`geocontext label types|context`: a worker that tags photos from Geograph's labeller queue."""
from __future__ import annotations

import math
from pathlib import Path


def _client(args):
    from .credentials import queue_headers
    from .fleet import Share
    from .queue import QueueClient, RetryPolicy, Stopper, unique_number

    args.share = Share.of(args.workers, args.worker_index)  # checked before any model loads, as the rest
    _check_numbers(args)
    slot = unique_number() if args.unique_number is None else args.unique_number
    photos = {}  # `label context` only: the types worker downloads nothing
    if hasattr(args, "photo_deadline"):
        photos = {"photo_deadline": args.photo_deadline, "photo_max_bytes": int(args.photo_max_mb * 2**20)}
    policy = RetryPolicy(base=args.retry_base, cap=args.retry_cap, timeout=args.timeout, **photos)
    headers = queue_headers(args.token_env, args.header)
    return QueueClient(args.endpoint, slot, policy, Stopper(), headers=headers,
                       allow_photo_hosts=getattr(args, "allow_photo_host", ()), ca_file=_ca_file(args.ca_file))


def _check_numbers(args) -> None:
    """The numeric options, checked before any model loads: a NaN, infinite, zero or negative one would make
    the worker spin against the queue (--retry-base 0), crash (--timeout inf), or post wrong labels
    (--threshold nan: every photo "None")."""
    seconds = [("--timeout", args.timeout), ("--retry-base", args.retry_base), ("--retry-cap", args.retry_cap)]
    if hasattr(args, "photo_deadline"):
        seconds += [("--photo-deadline", args.photo_deadline), ("--photo-max-mb", args.photo_max_mb)]
    for option, value in seconds:
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{option} must be a positive finite number, got {value:g}")
    if args.retry_cap < args.retry_base:
        raise ValueError(f"--retry-cap ({args.retry_cap:g}) must be at least --retry-base ({args.retry_base:g})")
    if not (math.isfinite(args.threshold) and 0 <= args.threshold < 1):
        raise ValueError(f"--threshold must be a probability in [0, 1) (default 0.2), got {args.threshold:g}")
    if args.limit < 1 or args.loops < 0:
        raise ValueError(f"--limit must be >= 1 and --loops >= 0, got {args.limit} and {args.loops}")


def _ca_file(path) -> str | None:
    """--ca-file, checked now: a file of PEM certificates that ssl can load."""
    import ssl

    if path is None:
        return None
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ValueError(f"--ca-file {path}: expected a readable file of PEM CA certificates"
                         f" ({getattr(exc, 'strerror', None) or exc})") from None
    return str(path)


def _serve(args, client, worker, name: str) -> int:
    from .queue import user_agent
    from .worker import serve

    share = args.share
    client.agent = user_agent(name, **worker.facts)
    client.say(f"{name}: {client.shown} as unique_number {client.slot}, {share.describe(args.limit)}, up to"
               f" {args.limit} photos a batch, {'until stopped' if not args.loops else f'{args.loops} rounds'};"
               f" User-Agent: {client.agent}")
    client.stopper.install()
    try:
        serve(client, worker, args.limit, args.loops, getattr(worker, "fields", None), name, share)
    finally:
        client.stopper.uninstall()
    return 0


def _types(args) -> int:
    from .types import TypesWorker

    client = _client(args)
    return _serve(args, client, TypesWorker(args.model, args.threshold), "label types")


def _context(args) -> int:
    from ..console import say
    from ..embedding.encoder import load_encoder
    from ..embedding.options import encoder_config
    from ..embedding.embed import EmbedConfig
    from .context import ContextWorker

    client = _client(args)  # checks the endpoint before the model loads
    encoder = load_encoder(encoder_config(args))
    say(f"encoder: {encoder.name}, {encoder.precision} on {encoder.device}; embeddings posted as float32")
    if encoder.weights.source == "random":
        say("warning: RANDOM weights (--random-weights): the tags mean nothing (speed tests, dry runs)")
    batch, _ = EmbedConfig(batch_size=args.batch_size, workers=0).resolved(encoder.device.type)
    worker = ContextWorker(args.run, encoder, client, args.threshold, batch, args.fetchers, args.data)
    return _serve(args, client, worker, "label context")


def _common(p, limit: int) -> None:
    p.add_argument("--endpoint", required=True, help="the queue's URL including ?model=..., e.g."
                   " https://www.geograph.org.uk/_scripts/labeler.json.php?model=clip")
    p.add_argument("--threshold", type=float, default=0.2, help="post every label scoring above this (default 0.2)")
    p.add_argument("--limit", type=int, default=limit, help=f"most photos asked for per batch (default {limit})")
    p.add_argument("--loops", type=int, default=0, help="stop after N rounds, a round asking for a batch and"
                   " answering it (default 0: until SIGINT/SIGTERM)")
    p.add_argument("--workers", type=int, metavar="N", help="N workers share the queue (behind one IP, the server"
                   " would give them the same rows): each asks from its own offset; default $GEOCONTEXT_LABEL_WORKERS,"
                   " else one worker at the server's offset")
    p.add_argument("--worker-index", type=int, metavar="I", help="this worker's index 0..N-1 among --workers N"
                   " (default $JOB_COMPLETION_INDEX, set by a Kubernetes Indexed Job)")
    p.add_argument("--ca-file", type=Path, metavar="PEM", help="trust the CA certificates in this file (queue and"
                   " photo hosts alike) instead of the system's, e.g. for a queue behind a private CA")
    p.add_argument("--unique-number", type=int, help="this worker's slot 0..31 (default: SHA-256 of the pod uid or"
                   " name, notebook id or container hostname, modulo 32)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to connect, and for each read of a"
                   " reply (default 60); a queue request may take 5x this in all")
    p.add_argument("--retry-base", type=float, default=1.0, help="first retry wait in seconds, doubled per failure")
    p.add_argument("--retry-cap", type=float, default=120.0, help="longest retry wait in seconds (default 120)")
    p.add_argument("--token-env", metavar="NAME", help="send 'Authorization: Bearer $NAME' to the queue (the token is"
                   " read from the environment variable NAME, so it is not on the command line)")
    p.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="an extra header for the queue's requests (repeatable; never sent to photo hosts, never logged)")


def _photo_options(p) -> None:
    p.add_argument("--allow-photo-host", action="append", default=[], metavar="HOST",
                   help="also fetch photos from HOST (repeatable; .example.org: the domain and its subdomains);"
                   " by default only from the endpoint's host")
    p.add_argument("--photo-deadline", type=float, default=30.0, help="seconds one photo may take in all, its retries"
                   " and redirects included (default 30); past it the photo is Failed")
    p.add_argument("--photo-max-mb", type=float, default=20.0, help="a photo larger than this many MiB is Failed"
                   " (default 20)")


def add_parser(sub) -> None:
    from ..embedding.options import add_encoder_options

    label = sub.add_parser("label", help="tag photos from Geograph's labeller queue (types or context tags)",
                           description="A worker for Geograph's labeller queue: fetch a batch, label it, post the"
                           " records, again. SIGINT/SIGTERM: downloads in flight stop, what is done is posted, then the"
                           " worker stops; a second signal stops at once.")
    kinds = label.add_subparsers(dest="label_kind", required=True, metavar="KIND")
    p = kinds.add_parser("types", help="type tags from the queue's CLIP vectors and a type-classifier checkpoint")
    p.add_argument("--checkpoint", "--model", dest="model", required=True, type=Path, metavar="FILE",
                   help="type-classifier checkpoint (ours or a published one; --model is the same option)")
    _common(p, 250)  # the server sends at most 250 rows whatever the limit asks
    p.set_defaults(func=_types)

    p = kinds.add_parser("context", help="context tags: download photos, embed them and their titles, apply a run")
    p.add_argument("--run", required=True, type=Path, help="OUT folder of a finished `run` (its final choice)")
    p.add_argument("--data", type=Path, help="folder with tags-top.csv for the tag names (default: the kit's copy)")
    p.add_argument("--fetchers", type=int, default=16, help="photos downloaded at once (default 16)")
    _common(p, 250)
    _photo_options(p)
    add_encoder_options(p)
    p.set_defaults(func=_context)
