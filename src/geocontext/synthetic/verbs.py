"""`geocontext demo`: a small synthetic competition, the whole kit run on it, its score."""
from __future__ import annotations

from pathlib import Path


def _demo(args) -> int:
    from .demo import main as demo

    demo(args.work, args.train, args.test, args.seed)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="build a small synthetic competition, run the kit on it and score it")
    p.add_argument("--work", type=Path, default=Path("work/demo"), help="work folder (default: work/demo)")
    p.add_argument("--train", type=int, default=800, help="training photos (default: 800)")
    p.add_argument("--test", type=int, default=200, help="test photos (default: 200)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)
