"""Kaggle kernel "geocontext embed" (GPU): embed the competition's photos and titles into FEATURES.

Input, found under /kaggle/input by what it holds (or given with --data / GEOCONTEXT_DATA): the
competition's files with train_images/ and test_images/. Writes /kaggle/working/features/
(train/ and test/), which the train kernel attaches through kernel_sources; `make dataset` can
publish it as a dataset too. Arguments it does not know go to `geocontext embed` (e.g. --model,
--pretrained /kaggle/input/<weights>/open_clip_pytorch_model.bin --quick-gelu, --batch-size 256,
--shard 1/2, --title-encoder sentence-transformers:/kaggle/input/<model folder>).

Several blocks: --add-title-encoder sentence-transformers:NAME_OR_FOLDER (repeatable) embeds, after the
main pass, each such model's title block into the same FEATURES folder (titles only, no photo is read
again), e.g. --add-title-encoder sentence-transformers:/kaggle/input/bge-small-en-v1-5/bge-small-en-v1.5.

Internet is on for this kernel: open_clip fetches the pretrained CLIP weights, and pip installs
open_clip_torch when the Kaggle image lacks it. With weights attached as an input (--pretrained
PATH) and open_clip in the image, the kernel runs with internet off as well.

Locally: python build/kernels/embed/embed.py --data DATA [--working OUT]
"""
import importlib.util
import subprocess
import sys

from geocontext import cli
from geocontext.kaggle import runtime as kernel

VERB = "embed"
OPEN_CLIP = "open_clip_torch==3.3.0"  # the versions requirements.txt pins
SENTENCE_TRANSFORMERS = "sentence-transformers==6.2.0"


def ensure_package(module: str, requirement: str, dry_run: bool) -> None:
    if importlib.util.find_spec(module) is not None:
        return
    print(f"{module} is not in this image: pip install {requirement}", flush=True)
    if dry_run:
        return
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement], check=False)
    importlib.invalidate_caches()
    if importlib.util.find_spec(module) is None:
        raise kernel.KernelError(f"{module} is missing and `pip install {requirement}` failed; turn the kernel's"
                                 " internet on, or attach a wheel of it as a dataset and pip install that")


def main(argv=None) -> int:
    parser = kernel.argument_parser(__doc__, ["data"])
    parser.add_argument("--add-title-encoder", action="append", default=[], metavar="SPEC",
                        help="also embed the titles with this sentence-transformers model into the same FEATURES")
    args, extra = parser.parse_known_args(argv)
    if not args.dry_run:  # a dry run shows its paths and command first, then the same error
        cli.check_verb(VERB)
    paths = kernel.resolve(args, "embed")
    kernel.describe(paths)
    ensure_package("open_clip", OPEN_CLIP, args.dry_run)
    if args.add_title_encoder or any(a.startswith("sentence-transformers:") for a in extra):
        ensure_package("sentence_transformers", SENTENCE_TRANSFORMERS, args.dry_run)
    if not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            print("warning: no GPU in this session; embedding every photo on the CPU takes days."
                  " Turn on a GPU accelerator for this kernel.", flush=True)
    base = ["--data", str(paths.data), "--out", str(paths.working / "features")]
    rc = cli.call(VERB, [*base, *extra], dry_run=args.dry_run)
    for spec in args.add_title_encoder:  # one more block each, beside the main pass's (those are kept)
        if rc == 0:
            rc = cli.call(VERB, [*base, *extra, "--blocks", "title", "--title-encoder", spec], dry_run=args.dry_run)
    return rc


if __name__ == "__main__":
    kernel.run(main)
