"""An encoder's weights: read from checkpoint files without running code from them, digested (the file's
bytes, and the tensors themselves, so a tag and a file of the same weights are known as the same), and
loaded into an open_clip model with the conversions open_clip applies."""
from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch


class WeightsError(ValueError):
    """The encoder's weights cannot be had or do not fit the model."""


@dataclass(frozen=True)
class WeightsInfo:
    source: str  # "tag", "file" or "random"
    name: str  # the tag, the file path, or "random (seed N)"
    digest: str  # identity of the weights: tag name, file sha256, or the seed
    sha256: str | None = None  # of the weights' tensors (state_digest); None for random weights

    @property
    def identity(self) -> str:
        return f"{self.source}:{self.digest}"


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict's tensors (names, dtypes, shapes, values): the same weights give the same
    digest whether they came by tag or in a .bin or .safetensors file."""
    h = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().contiguous()
        h.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") for name in archive.namelist())


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a checkpoint file, without running code from it.

    torch files load with weights_only=True (never falling back to full unpickling, which open_clip's
    own loader does on a TypeError); .safetensors files through safetensors."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types
            raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc
    else:
        if _is_torchscript(path):
            raise WeightsError(
                f"{path}: a TorchScript archive (OpenAI's original ViT-B-32.pt?), which cannot be read safely."
                " Use open_clip's state-dict file instead: open_clip_pytorch_model.bin or open_clip_model.safetensors"
                " from https://huggingface.co/timm/vit_base_patch32_clip_224.openai")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # UnpicklingError, RuntimeError, EOFError, TypeError from a bad file
            raise WeightsError(f"{path}: cannot be read as a torch checkpoint with weights_only=True ({exc})") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict (parameter name -> tensor), got {type(state).__name__}")
    if next(iter(state)).startswith("module."):  # saved from DistributedDataParallel
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def apply_state_dict(model: torch.nn.Module, state: dict, source: str) -> None:
    """Load `state` into an open_clip model, with the conversions open_clip's load_checkpoint applies."""
    from open_clip.convert import convert_state_dict
    from open_clip.model import (
        convert_to_custom_text_state_dict,
        resize_pos_embed,
        resize_text_pos_embed,
    )

    state = convert_state_dict(model, dict(state))
    if "positional_embedding" in state and not hasattr(model, "positional_embedding"):
        state = convert_to_custom_text_state_dict(state)
    for key in ("logit_scale", "logit_bias"):
        if key in state and getattr(model, key, None) is not None and model.get_parameter(key).ndim != state[key].ndim:
            state[key] = state[key].reshape(model.get_parameter(key).shape)
    if "logit_bias" not in state and getattr(model, "logit_bias", None) is not None and "logit_scale" in state:
        state["logit_bias"] = torch.zeros_like(state["logit_scale"])
    state.pop("text.transformer.embeddings.position_ids", None)
    resize_pos_embed(state, model)
    resize_text_pos_embed(state, model)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).split("\n\t", 2)[:2]
        raise WeightsError(f"{source}: the checkpoint does not fit this model ({' '.join(first)[:400]})") from exc
