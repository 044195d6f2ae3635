"""`geocontext embed merge`: the chunks of one or more embedding outputs (e.g. one per `--shard`) joined
into the FEATURES contract's {split}/ files, each chunk checked against DATA's id list."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..console import say
from ..competition import SPLITS
from ..data import readers
from ..data.readers import split_ids
from ..errors import DataError
from .blocks import write_blocks
from .chunks import Plan, mismatch
from .features import KINDS
from .jobs import chunk_stores, manifest_blocks

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
    say(f"{split}: {rows} rows of {', '.join(names)} -> {path}{photos}; {meta['titles']['empty']} empty titles")


def _ranges(ks: list[int]) -> str:
    shown = ", ".join(map(str, ks[:10]))
    return shown + (f" and {len(ks) - 10} more" if len(ks) > 10 else "")
