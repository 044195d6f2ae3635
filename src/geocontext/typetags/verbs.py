"""`geocontext types STEP`: train / evaluate / predict the Geograph type classifier (one call each)."""
from __future__ import annotations

import json
from pathlib import Path


def _train(args) -> int:
    from .trainer import TypesTrainConfig
    from .workflow import train_run

    config = TypesTrainConfig.from_file(args.config) if args.config else TypesTrainConfig()
    for name in ("epochs", "seed", "tune_trials"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    train_run(args.data, args.out, config)
    return 0


def _evaluate(args) -> int:
    from .workflow import evaluate_file

    report = evaluate_file(args.model, args.data, args.split, args.out, args.threshold)
    print(f"report: {Path(report['confusion_png']).parent / 'report.json'}; confusion matrices: {report['confusion_png']}")
    return 0


def _predict(args) -> int:
    from .predict import predict_file

    result = predict_file(args.model, args.data, args.out, None if args.tuned else args.threshold)
    print(result["read_summary"])
    print(json.dumps({k: result[k] for k in ("photos", "lines", "low_confidence", "thresholds", "out")}))
    return 0


def add_parser(sub) -> None:
    """Add the `types` verb and its steps to the main parser's subcommands."""
    types = sub.add_parser("types", help="Geograph type tags (7 classes, distance-aware): train, evaluate, predict",
                           description="The published Geograph type classifier (CLIP image embedding + distance)."
                           " Data: JSON lines (.jsonl, or gzipped .jsonl.gz) with gridimage_id, types, distance, embeddings, split.")
    steps = types.add_subparsers(dest="types_step", required=True, metavar="STEP")

    p = steps.add_parser("train", help="train on 'tra', stop early on 'val', tune thresholds, report on 'tes'")
    p.add_argument("--data", required=True, type=Path, help="types dataset (.jsonl or .jsonl.gz)")
    p.add_argument("--out", required=True, type=Path, help="run folder to write (model.pth, report.json, confusion.png)")
    p.add_argument("--config", type=Path, help="JSON training configuration (fields of TypesTrainConfig)")
    p.add_argument("--epochs", type=int, help="most epochs (default 40; early stopping usually ends sooner)")
    p.add_argument("--seed", type=int)
    p.add_argument("--tune-trials", dest="tune_trials", type=int, help="Optuna threshold trials (0: thresholds 0.5)")
    p.set_defaults(func=_train)

    p = steps.add_parser("evaluate", help="per-class precision/recall/F1, macro F1, exact match, confusion PNG")
    p.add_argument("--checkpoint", "--model", dest="model", required=True, metavar="FILE", type=Path,
                   help="type-classifier checkpoint (ours or a published best_geograph_model_*.pth; --model is the"
                   " same option)")
    p.add_argument("--data", required=True, type=Path, help="labelled types dataset (.jsonl or .jsonl.gz)")
    p.add_argument("--split", default="tes", help="rows to score: tra, val, tes or all (default: tes)")
    p.add_argument("--threshold", type=float, help="one threshold for every class (default: the checkpoint's tuned"
                   " per-class thresholds, or 0.5 for a published checkpoint)")
    p.add_argument("--out", type=Path, help="folder for report.json and confusion.png (default: beside the model)")
    p.set_defaults(func=_evaluate)

    p = steps.add_parser("predict", help="write the labeller's output: image_id, label, score per line")
    p.add_argument("--checkpoint", "--model", dest="model", required=True, metavar="FILE", type=Path,
                   help="type-classifier checkpoint (ours or a published one; --model is the same option)")
    p.add_argument("--data", required=True, type=Path, help="types dataset (.jsonl or .jsonl.gz; types and split not needed)")
    p.add_argument("--out", required=True, type=Path, help="predictions to write (.jsonl)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--threshold", type=float, default=0.2, help="one threshold for every class (default 0.2,"
                       " the published labeller's)")
    group.add_argument("--tuned", action="store_true", help="use the checkpoint's tuned per-class thresholds")
    p.set_defaults(func=_predict)
