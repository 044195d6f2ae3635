"""Kaggle kernel "geocontext train": train the kit's heads on FEATURES and write the submission.

Inputs, found under /kaggle/input by what they hold (or given with --data/--features, or
GEOCONTEXT_DATA/GEOCONTEXT_FEATURES): the competition's files, and a FEATURES folder: the embed
kernel's output (attached through kernel_sources) or the geocontext-features dataset.
Writes /kaggle/working/run/ (report.json, run.json, the trained variants) and
/kaggle/working/submission.csv.zip. Arguments it does not know go to `geocontext run`
(e.g. --seed 1, --config run.json).

Locally: python build/kernels/train/train.py --data DATA --features FEATURES [--working OUT]
"""
import shutil

from geocontext import cli
from geocontext.kaggle import runtime as kernel

VERB = "run"


def main(argv=None) -> int:
    args, extra = kernel.argument_parser(__doc__, ["data", "features"]).parse_known_args(argv)
    if not args.dry_run:  # a dry run shows its paths and command first, then the same error
        cli.check_verb(VERB)
    paths = kernel.resolve(args, "train")
    kernel.describe(paths)
    out = paths.working / "run"
    rc = cli.call(VERB, ["--data", str(paths.data), "--features", str(paths.features), "--out", str(out), *extra],
                     dry_run=args.dry_run)
    if rc == 0 and not args.dry_run:
        # At the top of the output, where Kaggle's "Submit" button and `kaggle kernels output` find it first.
        shutil.copyfile(out / "submission.csv.zip", paths.working / "submission.csv.zip")
        print(f"submission: {paths.working / 'submission.csv.zip'}")
    return rc


if __name__ == "__main__":
    kernel.run(main)
