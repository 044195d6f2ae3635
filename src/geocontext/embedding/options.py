"""The encoder's command-line options, shared by `embed` and `label context`."""
from __future__ import annotations

from .encoder import EncoderConfig


def add_encoder_options(p) -> None:
    p.add_argument("--arch", "--model", dest="model", default="ViT-B-32", metavar="ARCH",
                   help="open_clip model (architecture) name, or a model config .json (default: ViT-B-32);"
                   " --model is the same option")
    p.add_argument("--pretrained", default="openai", help="open_clip pretrained tag (downloads; needs internet) or a"
                   " local checkpoint file, e.g. open_clip_pytorch_model.bin (default: openai)")
    p.add_argument("--random-weights", action="store_true", help="no pretrained weights: random ones (demo, dry runs)")
    p.add_argument("--tokenizer", help="local Hugging Face tokenizer folder, for models whose tokenizer is on the hub"
                   " (SigLIP's) when there is no internet")
    p.add_argument("--quick-gelu", action="store_true", help="QuickGELU activations, as OpenAI's weights need when"
                   " given as a file (automatic with --pretrained openai)")
    p.add_argument("--batch-size", type=int, help="photos per batch (default: 256 on CUDA, 32 on CPU)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="default auto: fp16 autocast on CUDA, bf16 weights on CPUs with native bf16, else fp32")
    p.add_argument("--seed", type=int, default=0, help="seed of --random-weights")
    p.add_argument("--cache-dir", help="where open_clip keeps downloaded weights")


def encoder_config(args) -> EncoderConfig:
    return EncoderConfig(model=args.model, pretrained=args.pretrained, random_weights=args.random_weights,
                         quick_gelu=args.quick_gelu, seed=args.seed, device=args.device, precision=args.precision,
                         cache_dir=args.cache_dir, tokenizer=args.tokenizer)
