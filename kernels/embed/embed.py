"""Kaggle kernel "geocontext embed" (GPU): embed the competition's photos and titles into FEATURES.

Input, found under /kaggle/input by what it holds (or given with --data / GEOCONTEXT_DATA): the
competition's files with train_images/ and test_images/. Writes /kaggle/working/features/
(train/ and test/), which the train kernel attaches through kernel_sources; `make dataset` can
publish it as a dataset too. Arguments it does not know go to `geocontext embed` (e.g. --model,
--pretrained /kaggle/input/<weights>/open_clip_pytorch_model.bin --quick-gelu, --batch-size 256,
--shard 1/2).

Internet is on for this kernel: open_clip fetches the pretrained CLIP weights, and pip installs
open_clip_torch when the Kaggle image lacks it. With weights attached as an input (--pretrained
PATH) and open_clip in the image, the kernel runs with internet off as well.

Locally: python build/kernels/embed/embed.py --data DATA [--working OUT]
"""
import importlib.util
import subprocess
import sys

from geocontext.kaggle import runtime as kernel

VERB = "embed"
OPEN_CLIP = "open_clip_torch==3.3.0"  # the version requirements.txt pins


def ensure_open_clip(dry_run: bool) -> None:
    if importlib.util.find_spec("open_clip") is not None:
        return
    print(f"open_clip is not in this image: pip install {OPEN_CLIP}", flush=True)
    if dry_run:
        return
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", OPEN_CLIP], check=False)
    importlib.invalidate_caches()
    if importlib.util.find_spec("open_clip") is None:
        raise kernel.KernelError(f"open_clip is missing and `pip install {OPEN_CLIP}` failed; turn the kernel's"
                                 " internet on, or attach a wheel of it as a dataset and pip install that")


def main(argv=None) -> int:
    args, extra = kernel.argument_parser(__doc__, ["data"]).parse_known_args(argv)
    if not args.dry_run:  # a dry run shows its paths and command first, then the same error
        kernel.check_verb(VERB)
    paths = kernel.resolve(args, "embed")
    kernel.describe(paths)
    ensure_open_clip(args.dry_run)
    if not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            print("warning: no GPU in this session; embedding every photo on the CPU takes days."
                  " Turn on a GPU accelerator for this kernel.", flush=True)
    return kernel.call(VERB, ["--data", str(paths.data), "--out", str(paths.working / "features"), *extra],
                       dry_run=args.dry_run)


if __name__ == "__main__":
    kernel.run(main)
