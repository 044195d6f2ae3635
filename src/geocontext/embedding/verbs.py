"""`geocontext embed` (photos + titles -> FEATURES, resumable, shardable) and `embed merge` (shard
outputs -> FEATURES): their options and the calls they make."""
from __future__ import annotations

from pathlib import Path

from ..competition import SPLITS
from .features import KINDS
from .options import add_encoder_options, encoder_config


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like I/N (e.g. 2/4), got {text!r}") from None
    if not 1 <= i <= n:
        raise ValueError(f"--shard I/N needs 1 <= I <= N, got {text!r}")
    return i, n


def parse_splits(text: str) -> tuple[str, ...]:
    if text == "all":
        return SPLITS
    if text not in SPLITS:
        raise ValueError(f"--split must be train, test or all, got {text!r}")
    return (text,)


def parse_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    if not kinds or any(k not in KINDS for k in kinds) or len(set(kinds)) != len(kinds):
        raise ValueError(f"--blocks must be image, title or image,title; got {text!r}")
    return tuple(k for k in KINDS if k in kinds)


def _embed(args) -> int:
    from .embed import EmbedConfig, embed

    if args.data is None or args.out is None:
        raise ValueError("embed needs --data DATA and --out FEATURES (or: embed merge ...)")
    config = EmbedConfig(encoder_config(args), args.batch_size, args.workers, args.chunk_size, parse_shard(args.shard),
                         args.title_encoder, parse_kinds(args.blocks), args.accept_missing)
    embed(args.data, args.out, parse_splits(args.split), config)
    return 0


def _merge(args) -> int:
    from .merge import merge

    merge(args.data, args.out, args.inputs or None, parse_splits(args.split) if args.split else None)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("embed", help="embed photos and titles with open_clip into a FEATURES folder (resumable, shardable)",
                       usage="geocontext embed --data DATA --out FEATURES [options]\n       geocontext embed merge"
                       " --data DATA --out FEATURES [SHARD_OUT ...]",
                       description="Embed DATA's photos and titles with an open_clip CLIP model into FEATURES. Work is"
                       " saved in chunks: re-running the same command resumes. `embed merge` joins --shard outputs.")
    # Checked by the handler, not by argparse: `embed merge` takes its own --data and --out after the word.
    needed = p.add_argument_group("required arguments")
    needed.add_argument("--data", type=Path, help="DATA folder in the competition's layout")
    needed.add_argument("--out", type=Path, help="FEATURES folder to write")
    p.add_argument("--split", default="all", help="train, test or all (default: all)")
    add_encoder_options(p)
    p.add_argument("--title-encoder", help="sentence-transformers:NAME_OR_FOLDER (e.g. all-MiniLM-L6-v2, or a saved"
                   " model's folder offline) embeds the titles instead of the open_clip text tower")
    p.add_argument("--blocks", default="image,title", help="blocks to make: image, title or image,title (default);"
                   " into an existing FEATURES folder they are added beside its other blocks")
    p.add_argument("--workers", type=int, help="JPEG-decoding worker processes (default: one per spare core, at most 8)")
    p.add_argument("--shard", default="1/1", help="I/N: embed the I-th of N slices (N machines in parallel)")
    p.add_argument("--chunk-size", type=int, default=2048, help="photos per chunk file (default: 2048); all shards"
                   " of one FEATURES folder must use the same")
    p.add_argument("--accept-missing", action="store_true", help="go on when more than 1%% of a split's photos are"
                   " in neither {split}_images/ nor extra_images/ (they are embedded as missing)")
    p.set_defaults(func=_embed)
    actions = p.add_subparsers(dest="embed_action", metavar="merge")
    m = actions.add_parser("merge", prog="geocontext embed merge", help="join embedding outputs (e.g. one per --shard) into one FEATURES folder",
                           description="Join the chunks of embedding outputs into FEATURES/{train,test}/, checking"
                           " that every chunk is there and the ids match DATA's lists.")
    m.add_argument("--data", type=Path, required=True, help="DATA folder the embeddings were made from")
    m.add_argument("--out", type=Path, required=True, help="FEATURES folder to write")
    m.add_argument("--split", help="train, test or all (default: every split that has chunks)")
    m.add_argument("inputs", nargs="*", type=Path, help="embedding outputs (--out of each shard); default: --out itself")
    m.set_defaults(func=_merge)
