"""The command line: one option name per thing across verbs, the old spellings kept as aliases; `--help`
shows what is required."""
from pathlib import Path

import pytest

from geocontext.cli import build_parser


@pytest.mark.parametrize("argv, dest, value", [
    (["submit", "--file", "s.csv.zip", "--message", "m"], "file", "s.csv.zip"),
    (["submit", "--submission", "s.csv.zip", "--message", "m"], "file", "s.csv.zip"),  # as evaluate spells it
    (["evaluate", "--submission", "s.csv", "--solution", "x.csv"], "submission", "s.csv"),
    (["evaluate", "--file", "s.csv", "--solution", "x.csv"], "submission", "s.csv"),  # as submit spells it
    (["leaderboard", "r1", "--run", "r2"], "run_options", [Path("r2")]),
    (["embed", "--data", "d", "--out", "f", "--arch", "ViT-L-14"], "model", "ViT-L-14"),
    (["embed", "--data", "d", "--out", "f", "--model", "ViT-L-14"], "model", "ViT-L-14"),
    (["label", "context", "--endpoint", "e", "--run", "r", "--arch", "ViT-L-14"], "model", "ViT-L-14"),
    (["types", "predict", "--checkpoint", "m.pth", "--data", "d", "--out", "o"], "model", Path("m.pth")),
    (["types", "evaluate", "--model", "m.pth", "--data", "d"], "model", Path("m.pth")),
    (["label", "types", "--endpoint", "e", "--checkpoint", "m.pth"], "model", Path("m.pth")),
    (["label", "types", "--endpoint", "e", "--model", "m.pth"], "model", Path("m.pth")),
])
def test_old_and_new_option_names_mean_the_same(argv, dest, value):
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == (Path(value) if isinstance(value, str) and dest in ("file", "submission") else value)


def test_embed_help_shows_its_required_options(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["embed", "--help"])
    help_text = capsys.readouterr().out
    assert "usage: geocontext embed --data DATA --out FEATURES" in help_text
    required = help_text.split("required arguments:")[1]
    assert "--data DATA" in required and "--out OUT" in required
    args = build_parser().parse_args(["embed", "merge", "--data", "d", "--out", "f", "s1", "s2"])  # merge still parses
    assert args.inputs == [Path("s1"), Path("s2")] and args.data == Path("d")
