"""`make demo` end to end at a smaller size (issue 31, item 6): the kit's real pipeline (embed with an
open_clip model, run, evaluate, the types task), with the demo's small CLIP and its fewer Optuna trials,
which make it take seconds rather than minutes."""
import json

from geocontext.synthetic.demo import DEMO_CLIP, DEMO_TRIALS, main


def test_the_demo_runs_the_kit_with_its_small_clip(tmp_path, capsys):
    score = main(tmp_path, n_train=200, n_test=50, n_types=1200)
    assert 0 < score["exact_match"] <= 1 and score["rows"] == 50
    meta = json.loads((tmp_path / "features" / "train" / "meta.json").read_text())
    assert meta["model"] == "demo-clip" and meta["dim"] == DEMO_CLIP["embed_dim"] and meta["random_weights"]
    decode = json.loads((tmp_path / "run" / "run.json").read_text())["config"]["decode"]
    assert {k: decode[k] for k in DEMO_TRIALS} == DEMO_TRIALS
    out = capsys.readouterr().out
    assert "local leaderboard: exact match" in out and "types: test exact match" in out and "demo finished in" in out
