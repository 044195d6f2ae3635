"""`geocontext embed`: the competition's photos and titles -> embeddings -> the FEATURES folder.

Each split's id list (train.csv [+ train-extra.csv], test.csv) is cut into fixed-size chunks; a chunk is
embedded in batches (photos decoded by DataLoader workers, titles tokenized there too) and written
atomically under FEATURES/chunks/ (see `chunks`). Re-running skips finished chunks; `--shard I/N` embeds
a contiguous 1/N of them; when a split's chunks are all there they are merged into the contract's
FEATURES/{split}/ files (`merge`).

One call makes an image block (open_clip) and a title block (the same model's text tower, or another
family's title encoder with --title-encoder; see `encoders`), or only one of them (--blocks): a block
added to a FEATURES folder that already holds others leaves those as they are (see `jobs` and `blocks`).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..competition import EXTRA_IMAGES, SPLITS, missing_share_error, photo_paths
from ..console import progress, say
from ..data import readers
from ..data.readers import split_ids
from ..errors import DataError
from .chunks import Chunk, ChunkStore, Plan
from .encoder import Encoder, EncoderConfig, load_encoder
from .encoders import load_title_encoder, split_title_spec
from .features import KINDS, block_table
from .identity import check_same
from .jobs import Job, no_tokens
from .merge import merge_split

@dataclass(frozen=True)
class EmbedConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    batch_size: int | None = None  # None: 256 on CUDA, 32 on the CPU
    workers: int | None = None  # DataLoader processes decoding JPEGs; None: one per spare core, at most 8
    chunk_size: int = 2048  # rows per chunk file: the most a killed run can lose
    shard: tuple[int, int] = (1, 1)  # (I, N): embed the I-th of N contiguous slices of the chunks
    title_encoder: str | None = None  # None: the open_clip model's text tower; or sentence-transformers:NAME_OR_FOLDER
    kinds: tuple[str, ...] = KINDS  # the blocks to make: image, title or both
    accept_missing: bool = False  # go on when more than MISSING_LIMIT of a split's photos are missing

    def __post_init__(self):
        for name, low in (("batch_size", 1), ("workers", 0), ("chunk_size", 1)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < low):
                raise ValueError(f"--{name.replace('_', '-')} must be a whole number >= {low}, got {value!r}")
        if self.title_encoder is not None:
            split_title_spec(self.title_encoder)

    def resolved(self, device_type: str) -> tuple[int, int]:
        batch = self.batch_size if self.batch_size is not None else (256 if device_type == "cuda" else 32)
        workers = self.workers if self.workers is not None else min(8, max(1, (os.cpu_count() or 2) - 1))
        if batch < 1 or workers < 0:
            raise ValueError(f"batch size must be >= 1 and workers >= 0, got {batch} and {workers}")
        return batch, workers


def load_job(config: EmbedConfig, encoder: Encoder | None = None) -> Job:
    """The encoders `config` asks for: open_clip for the image block (and the titles, unless another
    title encoder is named); the family `--title-encoder PREFIX:...` names for the titles (encoders.TITLE_FAMILIES)."""
    clip_titles = "title" in config.kinds and config.title_encoder is None
    if "image" in config.kinds or clip_titles:
        encoder = encoder or load_encoder(config.encoder)
    title = None
    if clip_titles:
        title = encoder
    elif "title" in config.kinds:
        title = load_title_encoder(config.title_encoder, config.encoder)
    return Job(encoder if "image" in config.kinds else None, title)


def embed(data_dir: str | Path, out: str | Path, splits=SPLITS, config: EmbedConfig = EmbedConfig(),
          encoder: Encoder | None = None, job: Job | None = None) -> dict:
    """Embed `splits` of DATA into FEATURES `out`; merge each split whose chunks are then all there.

    Returns per split: rows, chunks done by this call, and the FEATURES path when merged."""
    for split in splits if "image" in config.kinds else ():  # before the model loads: a wrong DATA folder stops at once
        photos_on_disk(data_dir, split, config.accept_missing)
    job = job or load_job(config, encoder)
    for e in {id(e): e for e in (job.image, job.title) if e is not None}.values():
        say(f"encoder: {e.name}, {e.precision} on {e.device}")
    if job.image is not None and job.image.weights.source == "random" or job.clip_titles and job.title.weights.source == "random":
        say("warning: RANDOM weights (--random-weights): the features carry no pretrained knowledge")
    say(f"blocks: {', '.join(job.names())}")
    _warn_other_splits(out, splits, job)
    return {split: embed_split(data_dir, out, split, config, job) for split in splits}


def _warn_other_splits(out, splits, job: Job) -> None:
    """Say at once when a split not embedded now holds these blocks from another encoder (train embedded
    with other weights than test): `check`, `run` and `predict` refuse the two together."""
    encoders = dict(zip(job.names(), [e for e in (job.image, job.title) if e is not None]))
    for split in [s for s in SPLITS if s not in splits]:
        try:
            table = block_table(json.loads((Path(out) / split / "meta.json").read_text()))
        except (OSError, ValueError):
            continue
        for name, encoder in encoders.items():
            try:
                check_same(table.get(name, {}).get("identity"), encoder.identity(), f"{Path(out) / split}: {name}",
                           f"the {name} embedded now", f"embed {split} with this encoder too (a run refuses the two"
                           " together), or embed into another --out")
            except DataError as exc:
                say(f"warning: {exc}")


def photos_on_disk(data_dir, split: str, accept_missing: bool) -> tuple[list[str], np.ndarray]:
    """Each photo's path ({split}_images/ or extra_images/) and the mask of those in neither; more than
    MISSING_LIMIT missing stops unless `accept_missing`."""
    ids, source = split_ids(data_dir, split)
    photos = Path(data_dir) / f"{split}_images"
    if not photos.is_dir() and not (Path(data_dir) / EXTRA_IMAGES).is_dir():  # else every photo is "missing", slowly
        raise DataError(f"{photos}: folder not found; DATA keeps {split} photos as {split}_images/NNNNN/ID.jpg")
    paths, missing = photo_paths(data_dir, split, ids)
    problem = missing_share_error(split, ids[missing], len(ids), f"listed in {source} are in neither {photos.name}/"
                                  f" nor {EXTRA_IMAGES}/", "--accept-missing")
    if problem and not accept_missing:
        raise DataError(problem)
    return paths, missing


def embed_split(data_dir, out, split: str, config: EmbedConfig, job: Job) -> dict:
    respelt: list = []
    ids, source = split_ids(data_dir, split, respelt)
    for odd in respelt:  # ids.npy holds the numbers (data.ids)
        say(f"warning: {odd}")
    plan = Plan(split, ids, config.chunk_size)
    store = job.store(out, split)
    # precision binds: resuming in another one would mix bf16 and fp32 chunks in one split
    store.open(plan.manifest(job.describe(), {**job.identity(), "precision": (job.image or job.title).precision}))
    i, n = config.shard
    mine = plan.shard(i, n)
    todo = [k for k in mine if k not in store.done()]
    shard = f" shard {i}/{n} (chunks {mine.start}-{mine.stop - 1})" if n > 1 else ""
    say(f"{split}: {len(ids)} photos ({source}) in {plan.n_chunks} chunks of {plan.chunk_size};{shard}"
        f" {len(mine) - len(todo)} of {len(mine)} chunks already done")
    summary = {"rows": len(ids), "chunks_done_now": len(todo)}
    if todo:
        store.remove_partial(todo)
        _embed_chunks(data_dir, plan, todo, store, config, job)
    missing = len(set(range(plan.n_chunks)) - store.done())
    if not missing:
        summary["features"] = merge_split(data_dir, out, split, [out], tuple(job.names()))
    else:
        say(f"{split}: {missing} chunk(s) still to embed by other shards; when all shards are done, run\n"
            f"  python -m geocontext embed merge --data {data_dir} --out FEATURES SHARD_OUT [SHARD_OUT ...]")
    return summary


class _ChunkBuffer:
    """One chunk being filled batch by batch."""

    def __init__(self, k: int, start: int, stop: int, dim: int, context: int):
        self.k, self.start, self.n = k, start, stop - start
        self.image = np.full((self.n, dim), np.nan, dtype=np.float32)
        self.tokens = np.zeros((self.n, context), dtype=np.int64)
        self.reasons = np.full(self.n, "", dtype=object)
        self.filled = 0
        self.began = time.perf_counter()


def _embed_chunks(data_dir, plan: Plan, todo: list[int], store: ChunkStore, config: EmbedConfig, job: Job) -> None:
    batch_size, workers = config.resolved(job.device.type)
    titles = readers.read_metadata(data_dir, plan.ids).title.tolist()
    info = {"device": str(job.device), "precision": (job.image or job.title).precision, "batch_size": batch_size}
    if job.image is None:
        return _embed_titles(plan, todo, store, job, titles, batch_size, info)
    from .photos import PhotoDataset, batches_within, each_batch, photo_loader

    encoder = job.image
    paths, _ = photos_on_disk(data_dir, plan.split, accept_missing=True)
    dataset = PhotoDataset(paths, titles, encoder.preprocess, encoder.tokenizer if job.clip_titles else no_tokens)
    ranges = [plan.bounds(k) for k in todo]
    loader = photo_loader(dataset, batches_within(ranges, batch_size), workers, encoder.device.type == "cuda")
    owner = {start: k for k, (start, _) in zip(todo, ranges)}
    total = sum(stop - start for start, stop in ranges)
    buffer, began, done = None, time.perf_counter(), 0
    with progress(total=total, unit="photo", desc=f"embed {plan.split}", smoothing=0.1) as bar:
        for batch in each_batch(loader):
            first = int(batch.positions[0])
            if buffer is None:
                k = owner[first]
                buffer = _ChunkBuffer(k, *plan.bounds(k), encoder.dim, batch.tokens.shape[1])
            local = batch.positions.numpy() - buffer.start
            ok = batch.ok.numpy()
            if ok.all():
                buffer.image[local] = encoder.encode_images(batch.images)
            elif ok.any():
                buffer.image[local[ok]] = encoder.encode_images(batch.images[batch.ok])
            buffer.tokens[local] = batch.tokens.numpy()
            buffer.reasons[local] = batch.reasons
            buffer.filled += len(local)
            bar.update(len(local))
            done += len(local)
            if buffer.filled == buffer.n:
                store.write(buffer.k, _finish(buffer, plan, job, titles, batch_size, info))
                buffer = None
                if bar.disable:  # logs (a Kaggle kernel's, say) get a line per chunk instead of the bar
                    _log_chunk(plan.split, done, total, time.perf_counter() - began)
    _log_rate(plan.split, total, "photos", time.perf_counter() - began)


def _embed_titles(plan: Plan, todo: list[int], store: ChunkStore, job: Job, titles: list[str], batch_size: int,
                  info: dict) -> None:
    """A job without an image block: no photo is opened, chunk by chunk of titles."""
    total = sum(plan.bounds(k)[1] - plan.bounds(k)[0] for k in todo)
    began = time.perf_counter()
    with progress(total=total, unit="title", desc=f"embed {plan.split} titles", smoothing=0.1) as bar:
        for k in todo:
            start, stop = plan.bounds(k)
            t = time.perf_counter()
            title = job.title.encode_texts(titles[start:stop], batch_size)
            store.write(k, Chunk(plan.ids[start:stop], np.empty((stop - start, 0), np.float32), title,
                                 np.empty(0, np.int64), np.empty(0, str),
                                 {**info, "seconds": round(time.perf_counter() - t, 3)}))
            bar.update(stop - start)
    _log_rate(plan.split, total, "titles", time.perf_counter() - began)


def _log_rate(split: str, total: int, what: str, seconds: float) -> None:
    say(f"{split}: embedded {total} {what} in {seconds:.0f} s ({total / max(seconds, 1e-9):.1f} {what}/s)")


def _log_chunk(split: str, done: int, total: int, seconds: float) -> None:
    rate = done / max(seconds, 1e-9)
    left = (total - done) / max(rate, 1e-9)
    say(f"{split}: {done}/{total} photos embedded, {rate:.1f} photos/s, about {left / 60:.0f} min left")






def _finish(buffer: _ChunkBuffer, plan: Plan, job: Job, titles: list[str], batch_size: int, info: dict) -> Chunk:
    """Embed the chunk's titles and pack it."""
    stats = {}
    if job.clip_titles:
        title = job.title.encode_token_rows(buffer.tokens, batch_size)
        stats["titles_at_context_limit"] = int((buffer.tokens[:, -1] != job.title.pad_token()).sum())
    elif job.title is not None:
        title = job.title.encode_texts(titles[buffer.start:buffer.start + buffer.n], batch_size)
    else:
        title = np.empty((buffer.n, 0), dtype=np.float32)
    failed = np.flatnonzero(buffer.reasons != "")
    stats["seconds"] = round(time.perf_counter() - buffer.began, 3)
    return Chunk(plan.ids[buffer.start:buffer.start + buffer.n], buffer.image, title, failed,
                 buffer.reasons[failed].astype(str), {**info, **stats})

