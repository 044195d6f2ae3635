"""What one `embed` call computes: an image block from an open_clip model and/or a title block from that
model's text tower or another title encoder (embedding.encoders), and where its chunks live.

    FEATURES/chunks/{split}/                  image@M + title@M from one open_clip model M (as before blocks)
    FEATURES/chunks/{block+block}/{split}/    any other set of blocks (e.g. title@bge-small-en-v1.5 alone)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .blocks import block_name
from .chunks import ChunkStore
from .encoders import ImageEncoder, TitleEncoder, TokenizingTitleEncoder


def no_tokens(texts) -> torch.Tensor:
    """The tokenizer of photo batches when titles are not embedded with the open_clip model."""
    return torch.zeros((len(texts), 1), dtype=torch.int64)


@dataclass
class Job:
    image: ImageEncoder | None  # the image block's encoder (open_clip); None: no image block
    title: TitleEncoder | None  # the title block's encoder (often the image encoder's text tower); None: none

    def __post_init__(self):
        if self.image is None and self.title is None:
            raise ValueError("nothing to embed: --blocks must name image, title or both")

    @property
    def clip_titles(self) -> bool:
        """Titles tokenized by the photo loader's workers and encoded as token rows (open_clip's text tower)."""
        return isinstance(self.title, TokenizingTitleEncoder)

    @property
    def classic(self) -> bool:
        """Image and title blocks from one open_clip model: the chunk layout of folders made before blocks."""
        return self.image is not None and self.title is self.image

    @property
    def device(self) -> torch.device:
        return (self.image or self.title).device

    def names(self) -> list[str]:
        return ([block_name("image", self.image.label)] if self.image is not None else []) + \
               ([block_name("title", self.title.label)] if self.title is not None else [])

    def identity(self) -> dict:
        """What fixes the numbers (chunks made with another identity are refused)."""
        if self.classic:
            return self.image.identity()
        return {"blocks": self.names(), "image": self.image.identity() if self.image else None,
                "title": self.title.identity() if self.title else None}

    def describe(self) -> dict:
        """The manifest's (and meta.json's) description, with one entry per block."""
        parts = [(n, e) for n, e in zip(self.names(), [e for e in (self.image, self.title) if e is not None])]
        blocks = {n: {"kind": n.split("@")[0], "encoder": e.name, "identity": e.identity()} for n, e in parts}
        base = self.image.describe() if self.classic else {"encoder": " + ".join(f"{n} ({e.name})" for n, e in parts)}
        return {**base, "blocks": blocks}

    def store(self, out, split: str) -> ChunkStore:
        """The chunk folder of this job's `split` in `out`."""
        legacy = ChunkStore(Path(out) / "chunks" / split)
        manifest = legacy.manifest()
        if self.classic and (manifest is None or manifest_blocks(manifest) == self.names()):
            return legacy
        return ChunkStore(Path(out) / "chunks" / job_key(self.names()) / split)


def job_key(names: list[str]) -> str:
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", "+".join(names))


def manifest_blocks(manifest: dict) -> list[str]:
    """The blocks a chunk manifest's job makes; manifests from before blocks made image@M and title@M."""
    if "blocks" in manifest.get("encoder", {}):
        return list(manifest["encoder"]["blocks"])
    model = manifest["identity"]["model"]
    return [block_name("image", model), block_name("title", model)]


def chunk_stores(inputs: list[Path], split: str) -> dict[tuple[str, ...], list[tuple[ChunkStore, dict]]]:
    """Every job's chunk folders of `split` under the embedding outputs `inputs`, by the blocks they make."""
    found: dict[tuple[str, ...], list] = {}
    for out in inputs:
        roots = [Path(out) / "chunks" / split] + sorted(Path(out).glob(f"chunks/*/{split}"))
        for root in roots:
            store = ChunkStore(root)
            manifest = store.manifest()
            if manifest is not None:
                found.setdefault(tuple(manifest_blocks(manifest)), []).append((store, manifest))
    return found
