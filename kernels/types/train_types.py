"""Kaggle kernel "geocontext types": train the Geograph type classifier on a types dataset; on request, tag photos.

Input, found under /kaggle/input by what it holds (or given with --types / GEOCONTEXT_TYPES): a types
dataset, a .jsonl or .jsonl.gz file (gzip is recognised by its bytes, whatever the name) whose lines are
JSON objects with gridimage_id, embeddings (base64 float32 CLIP ViT-B/32 image embeddings), types,
distance and split, like the published types_dataset_1.jsonl.gz: your Geograph export, attached as the dataset
{username}/geograph-types. Writes /kaggle/working/run/: model.pth (the published checkpoint schema, with
the tuned thresholds), report.json (scores on the 'tes' rows) and confusion.png. Arguments it does not
know go to `geocontext types train` (e.g. --epochs 60, --seed 1, --tune-trials 0, --config types.json).

With --predict it then tags every usable photo of that dataset, those without types included (with
--predict FILE: of another types file, e.g. the published "unknown" file, rows without types or split), into /kaggle/working/predictions.jsonl: the published labeller's
lines (image_id, label, score, low_confidence) at --threshold (default 0.2, the labeller's), or at the
per-class thresholds tuned in training with --tuned.

Kaggle starts a script without arguments: to predict there, change `kernel.run(main)` on its last line
to `kernel.run(lambda: main(["--predict"]))` (in the kernel's editor, or here before `make push`).

Locally: python build/kernels/types/train_types.py --types FILE.jsonl[.gz] [--predict [FILE]] [--working OUT]
"""
from pathlib import Path

from geocontext import cli
from geocontext.kaggle import runtime as kernel

VERB = "types"
PREDICTIONS = "predictions.jsonl"


def main(argv=None) -> int:
    parser = kernel.argument_parser(__doc__, ["types"])
    parser.add_argument("--predict", nargs="?", const=True, type=Path, metavar="FILE",
                        help=f"after training, tag the photos of the types dataset (or of FILE) into {PREDICTIONS}")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--threshold", type=float, help="--predict: one threshold for every class (default 0.2)")
    chosen.add_argument("--tuned", action="store_true", help="--predict: the per-class thresholds tuned in training")
    args, extra = parser.parse_known_args(argv)
    if args.predict is None and (args.threshold is not None or args.tuned):
        parser.error("--threshold and --tuned say how --predict tags photos; add --predict")
    if not args.dry_run:  # a dry run shows its paths and commands first, then the same error
        cli.check_verb(VERB)
    paths = kernel.resolve(args, "types")
    to_tag = None if args.predict is None else paths.types if args.predict is True else args.predict
    if to_tag is not None and not kernel.is_types_dataset(to_tag):  # found out now, not after training
        raise kernel.KernelError(f"{to_tag}: not a types dataset file (given by --predict; expected"
                                 f" {kernel.INPUTS['types'].looks})")
    kernel.describe(paths)
    run = paths.working / "run"
    rc = cli.call(VERB, ["train", "--data", str(paths.types), "--out", str(run), *extra], dry_run=args.dry_run)
    if rc or to_tag is None:
        return rc
    thresholds = ["--tuned"] if args.tuned else [] if args.threshold is None else ["--threshold", str(args.threshold)]
    return cli.call(VERB, ["predict", "--model", str(run / "model.pth"), "--data", str(to_tag),
                              "--out", str(paths.working / PREDICTIONS), *thresholds], dry_run=args.dry_run)


if __name__ == "__main__":
    kernel.run(main)
