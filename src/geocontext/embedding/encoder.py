"""A CLIP encoder from open_clip: model, preprocessing and tokenizer, weights loaded safely, batched encoding.

Weights come from an open_clip pretrained tag (downloaded, needs internet), from a local checkpoint file
(read with `torch.load(weights_only=True)` or safetensors), or are random with an explicit opt-in.
"""
from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..hardware import cpu_has_native_bf16
from .weights import WeightsError, WeightsInfo, apply_state_dict, file_digest, read_checkpoint, state_digest

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class EncoderConfig:
    model: str = "ViT-B-32"  # an open_clip model name, or a path to an open_clip model config (.json)
    pretrained: str = "openai"  # an open_clip pretrained tag, or a path to a checkpoint file
    random_weights: bool = False  # ignore `pretrained`; features then carry no pretrained knowledge
    quick_gelu: bool = False  # forced on when the pretrained tag was trained with QuickGELU (OpenAI's)
    seed: int = 0  # random weights only: the same seed gives the same model in every process
    device: str = "auto"  # auto | cpu | cuda[:N]
    precision: str = "auto"  # auto: fp16 autocast on CUDA, bf16 on CPUs with native bf16 (`weights_dtype`), else fp32
    cache_dir: str | None = None  # where open_clip downloads tagged weights (default: its own cache)
    tokenizer: str | None = None  # a local Hugging Face tokenizer folder, for models whose tokenizer is on the hub (SigLIP)

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not self.random_weights and not self.pretrained:
            raise WeightsError("no weights given: pass --pretrained TAG|FILE, or --random-weights for a dry run")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA GPU (use --device cpu or auto)")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {name!r}")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision == "auto":
        if device.type == "cuda":
            return "fp16"
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 autocast is for CUDA; on the CPU use --precision bf16 or fp32")
    return precision


def weights_dtype(precision: str, device: torch.device) -> str:
    """open_clip precision the model is built in. bf16 on the CPU means bf16 weights (open_clip keeps its
    LayerNorms in fp32): autocast there sends the attention projections through a slow copy-heavy path
    (measured ~4x slower than bf16 weights on an AVX512-BF16 EPYC, torch 2.15). Otherwise fp32 weights,
    with fp16/bf16 autocast on CUDA."""
    return "bf16" if precision == "bf16" and device.type == "cpu" else "fp32"


def _missing_weights_message(model: str, tag: str, cfg: dict, exc: Exception) -> str:
    hub = (cfg.get("hf_hub") or "").rstrip("/")
    where = f"https://huggingface.co/{hub}" if hub else cfg.get("url", "the open_clip pretrained table")
    qg = " --quick-gelu" if cfg.get("quick_gelu") else ""
    return (
        f"cannot download open_clip's {tag!r} weights for {model} (this needs internet: {str(exc).splitlines()[0][:200]}).\n"
        f"Provide them as a local file instead: download open_clip_pytorch_model.bin (or open_clip_model.safetensors)"
        f" from {where} on a machine with internet (on Kaggle: attach it as a dataset, or run with internet on),"
        f" then pass\n  --pretrained /path/to/open_clip_pytorch_model.bin{qg}\n"
        f"(weights already in the Hugging Face cache load offline with HF_HUB_OFFLINE=1). For a dry run that"
        f" needs no weights, --random-weights (the features then carry no pretrained knowledge).")


def _model_name(model: str) -> str:
    """The open_clip model name; a .json config file is registered with open_clip under its stem."""
    import open_clip

    path = Path(model)
    if path.suffix == ".json":
        if not path.is_file():
            raise ValueError(f"{path}: model config file not found")
        try:
            cfg = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        if not all(k in cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
            raise ValueError(f"{path}: an open_clip model config needs embed_dim, vision_cfg and text_cfg")
        open_clip.add_model_config(path)
        return path.stem
    if open_clip.get_model_config(model) is None:
        raise ValueError(f"unknown open_clip model {model!r} (e.g. ViT-B-32, ViT-L-14; or a path to a model config .json)")
    return model


class Encoder:
    """An open_clip model ready for batched inference: an ImageEncoder and a TitleEncoder (its text tower)
    in the sense of embedding.encoders; `encode_images` / `encode_texts` return float32."""

    def __init__(self, model, preprocess, tokenizer, config: EncoderConfig, model_name: str, weights: WeightsInfo,
                 quick_gelu: bool, device: torch.device, precision: str):
        self.model, self.preprocess, self.tokenizer, self.config = model, preprocess, tokenizer, config
        self.model_name, self.weights, self.quick_gelu = model_name, weights, quick_gelu
        self.device, self.precision = device, precision
        self.input_dtype = torch.bfloat16 if weights_dtype(precision, device) == "bf16" else torch.float32
        self.model.to(self.device).eval()
        size = getattr(model.visual, "image_size", None)
        self.image_size = list(size) if isinstance(size, (tuple, list)) else size
        self.context_length = int(getattr(tokenizer, "context_length", 77))
        self.dim = _embed_dim(model, model_name)

    @property
    def name(self) -> str:
        weights = {"tag": self.weights.name, "file": Path(self.weights.name).name, "random": "RANDOM weights"}
        return f"open_clip {self.model_name} ({weights[self.weights.source]}{', QuickGELU' if self.quick_gelu else ''})"

    def identity(self) -> dict:
        """What fixes the numbers: chunks made with another identity cannot be mixed with these."""
        tokenizer = {"tokenizer": self.config.tokenizer} if self.config.tokenizer else {}
        digest = {"weights_sha256": self.weights.sha256} if self.weights.sha256 else {}
        preprocess = _preprocess_identity(self.preprocess)
        return {"model": self.model_name, "weights": self.weights.identity, **digest, "quick_gelu": self.quick_gelu,
                "dim": self.dim, "context_length": self.context_length, "image_size": self.image_size,
                **({"preprocess": preprocess} if preprocess else {}), **tokenizer, "precision": self.precision}

    @property
    def label(self) -> str:
        """Names the encoder's blocks in a FEATURES folder: image@LABEL, title@LABEL."""
        return self.model_name

    def describe(self) -> dict:
        import open_clip

        return {"encoder": self.name, **self.identity(), "pretrained": self.weights.name,
                "random_weights": self.weights.source == "random", "open_clip": open_clip.__version__, "torch": torch.__version__}

    def autocast(self):
        if self.precision == "fp32" or weights_dtype(self.precision, self.device) != "fp32":
            return contextlib.nullcontext()
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    def encode_images(self, images: torch.Tensor) -> np.ndarray:
        with torch.inference_mode(), self.autocast():
            out = self.model.encode_image(images.to(self.device, self.input_dtype, non_blocking=True))
        return out.float().cpu().numpy()

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(list(texts))

    def pad_token(self) -> int:
        """What fills a title's unused context."""
        return int(self.tokenize([""])[0, -1].item())

    def encode_texts(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Titles through the text tower (the TitleEncoder contract, embedding.encoders)."""
        return self.encode_token_rows(self.tokenize(texts), batch_size)

    def encode_token_rows(self, tokens, batch_size: int) -> np.ndarray:
        """Tokenized titles in batches sorted by length, so each batch is cut to its longest title."""
        tokens = torch.as_tensor(tokens)
        order = np.argsort((tokens != self.pad_token()).sum(dim=1).numpy(), kind="stable")
        out = np.empty((len(tokens), self.dim), dtype=np.float32)
        for b in range(0, len(tokens), batch_size):
            rows = order[b:b + batch_size]
            out[rows] = self.encode_tokens(tokens[rows])
        return out

    def encode_tokens(self, tokens: torch.Tensor) -> np.ndarray:
        """Text embeddings; for causal CLIP text towers the padding past the longest title is cut off
        first (the end-of-text token never attends to it, so the result is the same, several times faster)."""
        tokens = tokens.to(self.device, non_blocking=True)
        with torch.inference_mode(), self.autocast():
            if _trimmable(self.model):
                out = encode_text_trimmed(self.model, tokens)
            else:
                out = self.model.encode_text(tokens)
        return out.float().cpu().numpy()


def _preprocess_identity(preprocess) -> dict:
    """What the photo transform does, read from the transform itself (a pretrained tag may bring its own
    normalisation): its steps, the normalisation's mean and std, the resizing's interpolation."""
    steps = list(getattr(preprocess, "transforms", []))
    out: dict = {"steps": [type(t).__name__ for t in steps]} if steps else {}
    for step in steps:
        if hasattr(step, "mean") and hasattr(step, "std"):
            out["mean"] = [round(float(x), 6) for x in step.mean]
            out["std"] = [round(float(x), 6) for x in step.std]
        if hasattr(step, "interpolation"):
            out["interpolation"] = str(getattr(step.interpolation, "value", step.interpolation))
    return out


def _embed_dim(model, name: str) -> int:
    proj = getattr(model, "text_projection", None)
    if isinstance(proj, torch.nn.Linear):
        return int(proj.out_features)
    if isinstance(proj, torch.Tensor):
        return int(proj.shape[1])
    import open_clip  # towers without a text projection (SigLIP, PE-Core, MobileCLIP): the config's width

    return int(open_clip.get_model_config(name)["embed_dim"])


def load_tokenizer(name: str, folder: str | None = None, cache_dir: str | None = None):
    """open_clip's tokenizer for model `name`; from the local Hugging Face tokenizer `folder` when given.
    Families whose tokenizer lives on the Hugging Face hub (SigLIP's) need internet, or that folder."""
    import open_clip
    from open_clip.tokenizer import HFTokenizer

    text_cfg = (open_clip.get_model_config(name) or {}).get("text_cfg", {})
    hub = text_cfg.get("hf_tokenizer_name") or ""
    if folder is not None:
        if not Path(folder, "tokenizer_config.json").is_file():
            raise WeightsError(f"--tokenizer {folder}: not a Hugging Face tokenizer folder (no tokenizer_config.json)")
        return HFTokenizer(str(folder), context_length=text_cfg.get("context_length", 77),
                           tokenizer_mode=text_cfg.get("tokenizer_mode"), **text_cfg.get("tokenizer_kwargs", {}))
    try:
        return open_clip.get_tokenizer(name, cache_dir=cache_dir)
    except Exception as exc:  # OSError from transformers offline, network errors, missing sentencepiece
        if not hub:
            raise
        raise WeightsError(
            f"cannot load the {name} tokenizer: it comes from the Hugging Face hub ({hub}) and could not be fetched"
            f" ({str(exc).splitlines()[0][:160]}).\nOn a machine with internet, save it to a folder:\n"
            f"  python -c \"from transformers import AutoTokenizer; AutoTokenizer.from_pretrained('{hub}')"
            f".save_pretrained('{hub.split('/')[-1]}-tokenizer')\"\n"
            f"(or: hf download {hub} --local-dir {hub.split('/')[-1]}-tokenizer), bring the folder over (on Kaggle:"
            f" attach it as a dataset), then pass --tokenizer /path/to/{hub.split('/')[-1]}-tokenizer") from exc


def _trimmable(model) -> bool:
    from open_clip.model import CLIP

    return (isinstance(model, CLIP) and getattr(model, "attn_mask", None) is not None
            and model.text_pool_type in ("argmax", "eos"))


def text_ends(model, tokens: torch.Tensor) -> torch.Tensor:
    """Position of each row's end-of-text token (where the CLIP text tower pools)."""
    if model.text_pool_type == "argmax":
        return tokens.argmax(dim=-1)
    return (tokens == model.text_eos_id).int().argmax(dim=-1)


def encode_text_trimmed(model, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's CLIP.encode_text on tokens cut after the batch's last end-of-text token."""
    from open_clip.transformer import text_global_pool

    length = int(text_ends(model, tokens).max()) + 1
    tokens = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype)
    x = x + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    if model.text_projection is not None:
        x = model.text_projection(x) if isinstance(model.text_projection, torch.nn.Linear) else x @ model.text_projection
    return x


def load_encoder(config: EncoderConfig) -> Encoder:
    """Create the model with open_clip and load its weights (tag, file or random), or raise WeightsError."""
    import open_clip

    name = _model_name(config.model)
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    quick_gelu = config.quick_gelu or name.endswith("-quickgelu")
    preprocess_cfg: dict = {}
    if config.random_weights:
        state, weights = None, WeightsInfo("random", f"random (seed {config.seed})", str(config.seed))
    elif Path(config.pretrained).is_file():
        path = Path(config.pretrained).resolve()
        state = read_checkpoint(path)
        weights = WeightsInfo("file", str(path), file_digest(path), state_digest(state))
    else:
        cfg = open_clip.get_pretrained_cfg(name, config.pretrained)
        if not cfg:
            looks_like_path = any(c in config.pretrained for c in "/\\.")
            raise WeightsError(
                f"--pretrained {config.pretrained!r}: " + ("file not found" if looks_like_path else
                f"not an open_clip tag for {name} (tags: {', '.join(open_clip.list_pretrained_tags_by_model(name)) or 'none'})")
                + "; give a tag or the path of a checkpoint file")
        try:
            path = open_clip.download_pretrained(cfg, cache_dir=config.cache_dir)
        except Exception as exc:  # network, hub and file errors all mean the same here: no weights
            raise WeightsError(_missing_weights_message(name, config.pretrained, cfg, exc)) from exc
        if not path:
            raise WeightsError(_missing_weights_message(name, config.pretrained, cfg, RuntimeError("no download source")))
        state = read_checkpoint(path)
        weights = WeightsInfo("tag", config.pretrained, config.pretrained, state_digest(state))
        quick_gelu = quick_gelu or bool(cfg.get("quick_gelu"))
        preprocess_cfg = {f"image_{k}": cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in cfg}

    tokenizer = load_tokenizer(name, config.tokenizer, config.cache_dir)  # before the model: fails fast
    torch.manual_seed(config.seed)  # random weights: every process (shard) builds the same model
    with _quiet_logging():  # open_clip warns "initialized randomly" before our weights go in
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=None, precision=weights_dtype(precision, device), force_quick_gelu=quick_gelu,
            pretrained_text=False, pretrained_image=False, **preprocess_cfg)
    if state is not None:
        apply_state_dict(model, state, weights.name)
    return Encoder(model, preprocess, tokenizer, config, name, weights, quick_gelu, device, precision)


@contextlib.contextmanager
def _quiet_logging():
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
