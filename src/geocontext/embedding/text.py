"""Title encoders from sentence-transformers: `embed --title-encoder sentence-transformers:NAME_OR_FOLDER`.

NAME is a model on the Hugging Face hub (all-MiniLM-L6-v2, BAAI/bge-small-en-v1.5; downloads, needs
internet); FOLDER is one saved with `SentenceTransformer.save` or downloaded from the hub, read offline.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from .encoder import WeightsError, resolve_device

PREFIX = "sentence-transformers:"
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.json", "*.txt", "*.model")  # what fixes the numbers


def is_sentence_transformer(spec: str | None) -> bool:
    return bool(spec) and spec.startswith(PREFIX)


def folder_digest(folder: Path) -> str:
    """sha256 over the folder's weight, config and vocabulary files (names and contents)."""
    h = hashlib.sha256()
    files = sorted({p for pattern in WEIGHT_FILES for p in folder.rglob(pattern) if p.is_file()})
    for path in files:
        h.update(str(path.relative_to(folder)).encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def _missing_model_message(name: str, exc: Exception) -> str:
    folder = name.split("/")[-1]
    return (f"cannot load sentence-transformers model {name!r}: not a local folder, and it could not be downloaded"
            f" ({str(exc).splitlines()[0][:160]}).\nOn a machine with internet, save it to a folder:\n"
            f"  python -c \"from sentence_transformers import SentenceTransformer; SentenceTransformer('{name}')"
            f".save('{folder}')\"\nbring the folder over (on Kaggle: attach it as a dataset), then pass\n"
            f"  --title-encoder {PREFIX}/path/to/{folder}")


class SentenceEncoder:
    """A sentence-transformers model embedding titles in batches; `encode_texts` returns float32."""

    def __init__(self, spec: str, device: str = "auto", precision: str = "auto", cache_dir: str | None = None):
        if not is_sentence_transformer(spec):
            raise ValueError(f"--title-encoder must look like {PREFIX}NAME_OR_FOLDER, got {spec!r}")
        from sentence_transformers import SentenceTransformer

        self.source = spec[len(PREFIX):]
        if not self.source:
            raise ValueError(f"--title-encoder {spec!r}: name the model or folder after '{PREFIX}'")
        self.device = resolve_device(device)
        folder = Path(self.source)
        if folder.exists() and not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
            raise WeightsError(f"{folder}: not a sentence-transformers folder (no modules.json or config.json)")
        looks_like_path = folder.exists() or self.source.startswith((".", "/", "~"))
        if looks_like_path and not folder.is_dir():
            raise WeightsError(f"--title-encoder {spec}: folder not found")
        try:
            self.model = SentenceTransformer(str(folder) if folder.is_dir() else self.source, device=str(self.device),
                                             cache_folder=cache_dir)
        except WeightsError:
            raise
        except Exception as exc:  # OSError offline, hub errors, a folder that does not load
            if folder.is_dir():
                raise WeightsError(f"{folder}: cannot be read as a sentence-transformers model ({exc})") from exc
            raise WeightsError(_missing_model_message(self.source, exc)) from exc
        self.model.eval()
        # fp16 on CUDA (as the CLIP encoder's autocast); fp32 on the CPU, where small BERTs gain little from bf16
        self.precision = "fp16" if self.device.type == "cuda" and precision in ("auto", "fp16") else "fp32"
        if self.precision == "fp16":
            self.model.half()
        self.weights = f"folder:{folder_digest(folder)}" if folder.is_dir() else f"hub:{self.source}"
        self.label = folder.resolve().name if folder.is_dir() else self.source.rstrip("/").split("/")[-1]
        self.dim = int(self.model.get_embedding_dimension())

    @property
    def name(self) -> str:
        return f"sentence-transformers {self.label}"

    def identity(self) -> dict:
        return {"model": f"{PREFIX}{self.label}", "weights": self.weights, "dim": self.dim,
                "max_seq_length": int(self.model.max_seq_length), "precision": self.precision}

    def describe(self) -> dict:
        import sentence_transformers

        return {"encoder": self.name, **self.identity(), "source": self.source,
                "sentence_transformers": sentence_transformers.__version__, "torch": torch.__version__}

    def encode_texts(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Raw (un-normalised) sentence embeddings, as the CLIP blocks are; sentence-transformers sorts the
        texts by length itself, so each batch is padded only to its longest title."""
        with torch.inference_mode():
            out = self.model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                                    normalize_embeddings=False, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)
