"""The encoder contract, and the table of encoder families `embed` can load.

An encoder turns photos or titles into one FEATURES block (image@LABEL or title@LABEL). Whatever the
library behind it, it is what `ImageEncoder` or `TitleEncoder` below says; the rest of the kit (chunks,
blocks, meta.json, the archive worker) reads nothing else of it.

To add an encoder family: write a module in this package whose class meets the protocol, then add one
row to `TITLE_FAMILIES` (a `--title-encoder PREFIX:NAME` loader). open_clip (`encoder.py`) makes the image
block and, by default, the title block with its text tower.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from .encoder import EncoderConfig


@runtime_checkable
class BlockEncoder(Protocol):
    """What every encoder tells about itself."""

    name: str  # for people: "open_clip ViT-B-32 (openai)"
    label: str  # names its FEATURES blocks: image@LABEL, title@LABEL
    dim: int  # width of its embeddings
    device: torch.device
    precision: str  # the arithmetic it runs in (fp32, bf16, fp16): chunks of another precision are not mixed

    def identity(self) -> dict:
        """What fixes the numbers (model, weights and their tensors' digest, QuickGELU, image size, precision,
        ...; embedding.identity): recorded per block in meta.json and per variant in a run, and compared
        wherever features meet (chunks of a split, train and test, a run and the features it is given)."""

    def describe(self) -> dict:
        """identity() plus what people want to read in meta.json (library versions, sources)."""


@runtime_checkable
class ImageEncoder(BlockEncoder, Protocol):
    preprocess: Callable  # PIL image -> tensor; runs in the photo loader's worker processes

    def encode_images(self, images: torch.Tensor) -> np.ndarray:
        """A batch of preprocessed photos -> (N, dim) float32, raw (not normalised)."""


@runtime_checkable
class TitleEncoder(BlockEncoder, Protocol):
    def encode_texts(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Titles -> (N, dim) float32, raw (not normalised), in `batch_size` batches."""


@runtime_checkable
class TokenizingTitleEncoder(TitleEncoder, Protocol):
    """A title encoder whose tokenizer can run in the photo loader's workers, beside the JPEG decoding
    (open_clip's text tower): `embed` then tokenizes titles there and encodes the token rows."""

    tokenizer: Callable  # list of titles -> (N, context) int64 tokens

    def pad_token(self) -> int:
        """What fills a title's unused context (a title reaching the end of it was cut)."""

    def encode_token_rows(self, tokens, batch_size: int) -> np.ndarray:
        """Token rows -> (N, dim) float32, as encode_texts would give for their titles."""


def _sentence_transformers(spec: str, config: EncoderConfig) -> TitleEncoder:
    from .text import SentenceEncoder

    return SentenceEncoder(spec, config.device, config.precision, config.cache_dir)


# --title-encoder PREFIX:NAME_OR_FOLDER -> (that whole spec, the image encoder's device/precision/cache
# settings) -> a TitleEncoder.
TITLE_FAMILIES: dict[str, Callable[[str, EncoderConfig], TitleEncoder]] = {
    "sentence-transformers": _sentence_transformers,
}


def split_title_spec(spec: str) -> tuple[str, str]:
    """`PREFIX:NAME` -> (PREFIX, NAME), checked against the table."""
    prefix, sep, source = spec.partition(":")
    if not sep or prefix not in TITLE_FAMILIES:
        forms = ", ".join(f"{p}:NAME_OR_FOLDER" for p in TITLE_FAMILIES)
        raise ValueError(f"--title-encoder must look like {forms}; got {spec!r}")
    if not source:
        raise ValueError(f"--title-encoder {spec!r}: name the model or folder after '{prefix}:'")
    return prefix, source


def load_title_encoder(spec: str, config: EncoderConfig) -> TitleEncoder:
    """The title encoder `--title-encoder spec` names, on the device and cache of `config`."""
    prefix, _ = split_title_spec(spec)
    return TITLE_FAMILIES[prefix](spec, config)
