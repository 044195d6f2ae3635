"""`geocontext embed`: the competition's photos and titles -> CLIP embeddings -> the FEATURES folder.

Each split's id list (train.csv [+ train-extra.csv], test.csv) is cut into fixed-size chunks; a chunk is
embedded in batches (photos decoded by DataLoader workers, titles tokenized there too) and written
atomically under FEATURES/chunks/ (see `chunks`). Re-running skips finished chunks; `--shard I/N` embeds
a contiguous 1/N of them; `merge` joins the chunks into the contract's FEATURES/{split}/ files.

One call makes an image block (open_clip) and a title block (the same model's text tower, or a
sentence-transformers model with --title-encoder), or only one of them (--blocks): a block added to a
FEATURES folder that already holds others leaves those as they are (see `jobs` and `blocks`).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..competition import EXTRA_IMAGES, missing_share_error, photo_paths
from ..console import progress
from ..data import readers
from ..errors import DataError
from .blocks import write_blocks
from .chunks import Chunk, ChunkStore, Plan, mismatch
from .encoder import Encoder, EncoderConfig, load_encoder
from .features import KINDS
from .jobs import Job, chunk_stores, manifest_blocks, no_tokens
from .text import SentenceEncoder, is_sentence_transformer

SPLITS = ("train", "test")


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
        if self.title_encoder is not None and not is_sentence_transformer(self.title_encoder):
            raise ValueError(f"--title-encoder must look like sentence-transformers:NAME_OR_FOLDER, got {self.title_encoder!r}")

    def resolved(self, device_type: str) -> tuple[int, int]:
        batch = self.batch_size if self.batch_size is not None else (256 if device_type == "cuda" else 32)
        workers = self.workers if self.workers is not None else min(8, max(1, (os.cpu_count() or 2) - 1))
        if batch < 1 or workers < 0:
            raise ValueError(f"batch size must be >= 1 and workers >= 0, got {batch} and {workers}")
        return batch, workers


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


def split_ids(data_dir: str | Path, split: str) -> tuple[np.ndarray, str]:
    """The split's gridimage ids in the DATA lists' order, and which files listed them."""
    if split == "test":
        path = readers.require(data_dir, "test.csv", "test.csv.zip")
        return readers.read_ids(path), path.name
    main = readers.require(data_dir, "train.csv", "train.csv.zip")
    extra = readers.find(data_dir, "train-extra.csv", "train-extra.csv.zip")
    ids = readers.read_ids(main)
    if extra is None:
        return ids, main.name
    both = np.concatenate([ids, readers.read_ids(extra)])
    readers.check_unique(both, extra)
    return both, f"{main.name} + {extra.name}"


def parse_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    if not kinds or any(k not in KINDS for k in kinds) or len(set(kinds)) != len(kinds):
        raise ValueError(f"--blocks must be image, title or image,title; got {text!r}")
    return tuple(k for k in KINDS if k in kinds)


def load_job(config: EmbedConfig, encoder: Encoder | None = None) -> Job:
    """The encoders `config` asks for: open_clip for the image block (and the titles, unless another
    title encoder is named); sentence-transformers for --title-encoder sentence-transformers:..."""
    clip_titles = "title" in config.kinds and config.title_encoder is None
    if "image" in config.kinds or clip_titles:
        encoder = encoder or load_encoder(config.encoder)
    title = None
    if clip_titles:
        title = encoder
    elif "title" in config.kinds:
        title = SentenceEncoder(config.title_encoder, config.encoder.device, config.encoder.precision,
                                config.encoder.cache_dir)
    return Job(encoder if "image" in config.kinds else None, title)


def embed(data_dir: str | Path, out: str | Path, splits=SPLITS, config: EmbedConfig = EmbedConfig(),
          encoder: Encoder | None = None, job: Job | None = None) -> dict:
    """Embed `splits` of DATA into FEATURES `out`; merge each split whose chunks are then all there.

    Returns per split: rows, chunks done by this call, and the FEATURES path when merged."""
    for split in splits if "image" in config.kinds else ():  # before the model loads: a wrong DATA folder stops at once
        photos_on_disk(data_dir, split, config.accept_missing)
    job = job or load_job(config, encoder)
    for e in {id(e): e for e in (job.image, job.title) if e is not None}.values():
        print(f"encoder: {e.name}, {e.precision} on {e.device}", flush=True)
    if job.image is not None and job.image.weights.source == "random" or job.clip_titles and job.title.weights.source == "random":
        print("warning: RANDOM weights (--random-weights): the features carry no pretrained knowledge", flush=True)
    print(f"blocks: {', '.join(job.names())}", flush=True)
    return {split: embed_split(data_dir, out, split, config, job) for split in splits}


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
    ids, source = split_ids(data_dir, split)
    plan = Plan(split, ids, config.chunk_size)
    store = job.store(out, split)
    # precision binds: resuming in another one would mix bf16 and fp32 chunks in one split
    store.open(plan.manifest(job.describe(), {**job.identity(), "precision": (job.image or job.title).precision}))
    i, n = config.shard
    mine = plan.shard(i, n)
    todo = [k for k in mine if k not in store.done()]
    shard = f" shard {i}/{n} (chunks {mine.start}-{mine.stop - 1})" if n > 1 else ""
    print(f"{split}: {len(ids)} photos ({source}) in {plan.n_chunks} chunks of {plan.chunk_size};{shard}"
          f" {len(mine) - len(todo)} of {len(mine)} chunks already done", flush=True)
    summary = {"rows": len(ids), "chunks_done_now": len(todo)}
    if todo:
        store.remove_partial(todo)
        _embed_chunks(data_dir, plan, todo, store, config, job)
    missing = len(set(range(plan.n_chunks)) - store.done())
    if not missing:
        summary["features"] = merge_split(data_dir, out, split, [out], tuple(job.names()))
    else:
        print(f"{split}: {missing} chunk(s) still to embed by other shards; when all shards are done, run\n"
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
    from .photos import PhotoDataset, batches_within, photo_loader

    encoder = job.image
    paths, _ = photos_on_disk(data_dir, plan.split, accept_missing=True)
    dataset = PhotoDataset(paths, titles, encoder.preprocess, encoder.tokenizer if job.clip_titles else no_tokens)
    ranges = [plan.bounds(k) for k in todo]
    loader = photo_loader(dataset, batches_within(ranges, batch_size), workers, encoder.device.type == "cuda")
    owner = {start: k for k, (start, _) in zip(todo, ranges)}
    total = sum(stop - start for start, stop in ranges)
    buffer, began, done = None, time.perf_counter(), 0
    with progress(total=total, unit="photo", desc=f"embed {plan.split}", smoothing=0.1) as bar:
        for batch in loader:
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
            title = _encode_titles(job.title, titles[start:stop], batch_size)
            store.write(k, Chunk(plan.ids[start:stop], np.empty((stop - start, 0), np.float32), title,
                                 np.empty(0, np.int64), np.empty(0, str),
                                 {**info, "seconds": round(time.perf_counter() - t, 3)}))
            bar.update(stop - start)
    _log_rate(plan.split, total, "titles", time.perf_counter() - began)


def _log_rate(split: str, total: int, what: str, seconds: float) -> None:
    print(f"{split}: embedded {total} {what} in {seconds:.0f} s ({total / max(seconds, 1e-9):.1f} {what}/s)", flush=True)


def _log_chunk(split: str, done: int, total: int, seconds: float) -> None:
    rate = done / max(seconds, 1e-9)
    left = (total - done) / max(rate, 1e-9)
    print(f"{split}: {done}/{total} photos embedded, {rate:.1f} photos/s, about {left / 60:.0f} min left", flush=True)


def _clip_titles(encoder: Encoder, tokens: np.ndarray, batch_size: int) -> np.ndarray:
    """Titles through the open_clip text tower, sorted by length so each batch is cut to its longest title."""
    pad = encoder.tokenize([""])[0, -1].item()  # what fills a title's unused context
    tokens = torch.as_tensor(tokens)
    order = np.argsort(_lengths(tokens, pad), kind="stable")
    title = np.empty((len(tokens), encoder.dim), dtype=np.float32)
    for b in range(0, len(tokens), batch_size):
        rows = order[b:b + batch_size]
        title[rows] = encoder.encode_tokens(tokens[rows])
    return title


def _encode_titles(encoder, texts: list[str], batch_size: int) -> np.ndarray:
    if isinstance(encoder, Encoder):
        return _clip_titles(encoder, encoder.tokenize(texts), batch_size)
    return encoder.encode_texts(texts, batch_size)


def _finish(buffer: _ChunkBuffer, plan: Plan, job: Job, titles: list[str], batch_size: int, info: dict) -> Chunk:
    """Embed the chunk's titles and pack it."""
    stats = {}
    if job.clip_titles:
        title = _clip_titles(job.title, buffer.tokens, batch_size)
        pad = job.title.tokenize([""])[0, -1].item()
        stats["titles_at_context_limit"] = int((buffer.tokens[:, -1] != pad).sum())
    elif job.title is not None:
        title = job.title.encode_texts(titles[buffer.start:buffer.start + buffer.n], batch_size)
    else:
        title = np.empty((buffer.n, 0), dtype=np.float32)
    failed = np.flatnonzero(buffer.reasons != "")
    stats["seconds"] = round(time.perf_counter() - buffer.began, 3)
    return Chunk(plan.ids[buffer.start:buffer.start + buffer.n], buffer.image, title, failed,
                 buffer.reasons[failed].astype(str), {**info, **stats})


def _lengths(tokens, pad: int) -> np.ndarray:
    return (tokens != pad).sum(dim=1).numpy()


def merge(data_dir: str | Path, out: str | Path, inputs=None, splits=None) -> dict[str, Path]:
    """Join chunk folders (this FEATURES folder's, or the given shard outputs) into FEATURES/{split}/.

    With `splits` None, every split that has chunks in some input is merged; every job's blocks are."""
    inputs = [Path(p) for p in (inputs or [out])]
    for p in inputs:
        if not p.is_dir():
            raise DataError(f"{p}: not a folder (expected an embedding output with chunks/{{train,test}}/)")
    if splits is None:
        splits = [s for s in SPLITS if chunk_stores(inputs, s)]
        if not splits:
            raise DataError(f"no embedding chunks under {', '.join(map(str, inputs))} (expected chunks/train/ or"
                            " chunks/test/ inside each): run `geocontext embed` first")
    return {split: merge_split(data_dir, out, split, inputs) for split in splits}


def merge_split(data_dir, out, split: str, inputs: list, blocks: tuple[str, ...] | None = None) -> Path:
    """Merge the chunks of `split` of every job in `inputs` (or of the job making `blocks`) into FEATURES."""
    ids, source = split_ids(data_dir, split)
    jobs = chunk_stores([Path(p) for p in inputs], split)
    if blocks is not None:
        jobs = {blocks: jobs[blocks]} if blocks in jobs else {}
    if not jobs:
        raise DataError(f"no {split} chunks under {', '.join(map(str, inputs))}: run `geocontext embed --split {split}`")
    return [_merge_job(data_dir, out, split, ids, source, stores) for stores in jobs.values()][-1]


def _block_dims(manifest: dict) -> dict[str, int]:
    identity = manifest["identity"]
    if "blocks" not in identity:  # one open_clip model: image and title blocks of its width
        return {"image": identity["dim"], "title": identity["dim"]}
    return {k: identity[k]["dim"] if identity.get(k) else 0 for k in KINDS}


def _merge_job(data_dir, out, split: str, ids: np.ndarray, source: str, stores: list) -> Path:
    first_store, manifest = stores[0]
    for store, other in stores[1:]:
        clash = mismatch(manifest, other)
        if clash:
            raise DataError(f"{store.root} and {first_store.root} cannot be merged: {store.root} has {clash}")
    plan = Plan(split, ids, manifest["chunk_size"])
    if mismatch(manifest, plan.manifest(manifest["encoder"], manifest["identity"])):
        raise DataError(f"{first_store.root}: chunks made for another id list ({manifest['rows']} ids) than"
                        f" {source} in {data_dir} ({len(ids)} ids); re-run `geocontext embed --split {split}`")
    where = {}
    for store, _ in stores:
        for k in store.done():
            where.setdefault(k, store)
    missing = [k for k in range(plan.n_chunks) if k not in where]
    if missing:
        raise DataError(f"{split}: {len(missing)} of {plan.n_chunks} chunks not found in"
                        f" {', '.join(str(s.root) for s, _ in stores)} (first missing: {_ranges(missing)});"
                        " finish those shards (re-running a shard resumes it), then merge again")
    dims = _block_dims(manifest)
    image = np.empty((len(ids), dims["image"]), dtype=np.float32)
    title = np.empty((len(ids), dims["title"]), dtype=np.float32)
    failed, precisions, at_limit = [], {}, 0
    for k in range(plan.n_chunks):
        start, stop = plan.bounds(k)
        chunk = where[k].read(k)
        if (not np.array_equal(chunk.ids, ids[start:stop]) or chunk.image.shape != (stop - start, dims["image"])
                or chunk.title.shape != (stop - start, dims["title"])):
            raise DataError(f"{where[k].path(k)}: rows do not match ids {start}-{stop - 1} of {source};"
                            " delete the file and re-run the embedding to redo it")
        image[start:stop], title[start:stop] = chunk.image, chunk.title
        failed += [{"gridimage_id": int(chunk.ids[r]), "reason": str(why)} for r, why in zip(chunk.failed, chunk.reasons)]
        tag = f"{chunk.info.get('precision')} on {chunk.info.get('device')}"
        precisions[tag] = precisions.get(tag, 0) + 1
        at_limit += int(chunk.info.get("titles_at_context_limit", 0))
    titles = readers.read_metadata(data_dir, ids)
    describe = {k: v for k, v in manifest["encoder"].items() if k != "blocks"}
    photos = {"missing_photo_count": len(failed), "missing_photos": failed} if dims["image"] else {}
    meta = {**describe, "normalized": False, "split": split, "ids_from": source, **photos,
            "titles": {"no_metadata_row": titles.not_found, "empty": int(sum(1 for t in titles.title if not t)),
                       "at_context_limit": at_limit},
            "chunk_size": plan.chunk_size, "chunks": plan.n_chunks, "made_with": precisions}
    arrays = {"image": image, "title": title}
    infos = _block_infos(manifest)
    path = write_blocks(out, split, ids, {n: (arrays[i["kind"]], {**i, **({"missing_photo_count": len(failed)} if i["kind"] == "image" else {})})
                                          for n, i in infos.items()}, meta)
    _say_merged(split, len(ids), path, failed, meta, list(infos))
    return path


def _block_infos(manifest: dict) -> dict[str, dict]:
    """Each block's meta.json entry: kind, encoder (its name) and identity."""
    if "blocks" in manifest["encoder"]:
        return manifest["encoder"]["blocks"]
    names = manifest_blocks(manifest)
    return {n: {"kind": n.split("@")[0], "encoder": manifest["encoder"].get("encoder"), "identity": manifest["identity"]}
            for n in names}


def _say_merged(split: str, rows: int, path: Path, failed: list, meta: dict, names: list[str]) -> None:
    reasons = {}
    for f in failed:
        kind = f["reason"].split(":")[0]
        reasons[kind] = reasons.get(kind, 0) + 1
    detail = f" ({', '.join(f'{v} {k}' for k, v in reasons.items())})" if failed else ""
    photos = (f"; {len(failed)} photo(s) missing or unreadable{detail}, NaN image rows listed in meta.json"
              if "missing_photos" in meta else "")
    print(f"{split}: {rows} rows of {', '.join(names)} -> {path}{photos}; {meta['titles']['empty']} empty titles",
          flush=True)


def _ranges(ks: list[int]) -> str:
    shown = ", ".join(map(str, ks[:10]))
    return shown + (f" and {len(ks) - 10} more" if len(ks) > 10 else "")
