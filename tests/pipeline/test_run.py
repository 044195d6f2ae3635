"""End to end: run -> submission -> evaluate -> predict, on the synthetic competition."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, small_config

from geocontext.cli import main
from geocontext.data.readers import read_labels
from geocontext.decoding.select import DecodeConfig
from geocontext.embedding.features import load_features, save_features
from geocontext.errors import DataError
from geocontext.pipeline.config import RunConfig
from geocontext.pipeline.evaluate import evaluate
from geocontext.pipeline.predict import load_run, predict
from geocontext.pipeline.prepare import load_inputs
from geocontext.pipeline.run import run
from geocontext.training.config import TrainConfig, VariantConfig
from geocontext.training.inputs import fuse


@pytest.fixture(scope="module")
def finished(demo_data, demo_features, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    report = run(demo_data, demo_features, out, small_config())
    return out, report


def test_run_writes_a_valid_submission_and_an_honest_report(finished, demo_data):
    out, report = finished
    for name in ("submission.csv.zip", "report.json", "run.json", "split.npz"):
        assert (out / name).exists(), name
    tuned = report["final"]["decoder"] in ("global", "per_tag", "label_set")  # the 0.5 threshold tunes nothing
    assert (out / "optuna.db").exists() == tuned
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    assert set(report["variants"]) == {"linear", "mlp-img-loc"}
    assert report["final"]["name"] in report["candidates"]
    final = report["final"]
    assert final["selection_exact_match"] == max(c["exact_match"] for c in report["candidates"].values())
    assert final["rows"] + report["rows"]["holdout_choosing_epochs"] == report["rows"]["holdout"]
    assert len(final["fold_choices"]) == 2 and 0 <= final["exact_match"] <= 1
    assert report["rows"]["holdout"] + report["rows"]["train_used"] + report["rows"]["dropped_many_tags"] == 240
    train = report["inputs"]["train"]
    assert train["metadata"]["malformed_lines"] >= 1 and train["locations"]["known"] < 240
    assert report["inputs"]["test"]["rows"] == 60
    score = evaluate(out / "submission.csv.zip", demo_data / "solution.csv")
    # Learnt, not guessed: well above tagging every photo with the commonest training tag set.
    train, solution = read_labels(demo_data / "train.csv"), read_labels(demo_data / "solution.csv")
    sets, counts = np.unique(train.y, axis=0, return_counts=True)
    guess = (solution.y == sets[counts.argmax()]).all(axis=1).mean()
    assert score["rows"] == 60 and score["exact_match"] > max(3 * guess, 0.1)


def test_predict_reuses_the_run(finished, demo_data, demo_features, tmp_path):
    out, _ = finished
    result = predict(out, demo_data, demo_features, tmp_path / "again.csv.zip", tmp_path / "p.npy")
    assert result["rows"] == 60
    same = evaluate(tmp_path / "again.csv.zip", demo_data / "solution.csv")
    assert same == evaluate(out / "submission.csv.zip", demo_data / "solution.csv")  # no retraining, same tags
    probs = np.load(tmp_path / "p.npy")
    assert probs.shape == (60, 49) and ((probs >= 0) & (probs <= 1)).all()
    _, _, choice = load_run(out)  # the same probabilities the run computed for the test photos
    saved = [np.load(out / "variants" / m / "test_probs.npy") for m in choice.members]
    np.testing.assert_allclose(probs, choice.combine(saved), atol=1e-5)


def test_variants_sharing_a_feature_spec_fuse_their_inputs_once(finished, demo_data, demo_features):
    out, _ = finished
    _, variants, _ = load_run(out)
    variant = variants.get("linear") or next(iter(variants.values()))
    ids = load_features(demo_features, "test").ids
    inputs = load_inputs(demo_data, demo_features, "test", ids, "test ids")
    args = (inputs.features, inputs.rows, inputs.location, inputs.irish)
    alone = variant.predict_proba(*args)
    fused = {}
    first, second = variant.predict_proba(*args, fused=fused), variant.predict_proba(*args, fused=fused)
    assert variant.features in fused  # one fused input, kept unstandardised for the next variant
    np.testing.assert_array_equal(fused[variant.features], fuse(variant.features, *args))
    np.testing.assert_array_equal(first, alone)
    np.testing.assert_array_equal(second, alone)


def test_every_variant_used_the_same_holdout(finished):
    out, _ = finished
    held = np.load(out / "split.npz")["holdout_ids"]
    for name in ("linear", "mlp-img-loc"):
        assert np.load(out / "variants" / name / "holdout_probs.npy").shape == (len(held), 49)


def test_ids_missing_from_features_are_named(demo_data, demo_features, tmp_path):
    broken = tmp_path / "features"
    shutil.copytree(demo_features, broken)
    fs = load_features(broken, "test")
    save_features(broken, "test", fs.ids[1:], fs.image[1:], fs.title[1:], fs.meta)
    with pytest.raises(DataError, match=rf"1 gridimage_id\(s\) listed in test.csv have no features, e.g. {fs.ids[0]}"):
        run(demo_data, broken, tmp_path / "out", small_config())


def test_train_and_test_features_must_share_a_dim(demo_data, demo_features, tmp_path):
    broken = tmp_path / "features"
    shutil.copytree(demo_features, broken)
    fs = load_features(broken, "test")
    save_features(broken, "test", fs.ids, np.zeros((len(fs), 8), np.float32), np.zeros((len(fs), 8), np.float32), {})
    with pytest.raises(DataError, match="train features have blocks .*'image': 32.*test features .*'image': 8"):
        run(demo_data, broken, tmp_path / "out", small_config())


def test_cli_run_with_defaults_then_evaluate(demo_data, demo_features, tmp_path):
    """The kit's default configuration, through the real command line, as a user would call it."""
    cmd = [sys.executable, "-m", "geocontext"]
    env_path = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "GEOCONTEXT_PROGRESS": "0"}
    subprocess.run([*cmd, "run", "--data", demo_data, "--features", demo_features, "--out", tmp_path / "out"],
                   check=True, env=env_path, capture_output=True)
    done = subprocess.run([*cmd, "evaluate", "--submission", tmp_path / "out" / "submission.csv.zip",
                           "--solution", demo_data / "solution.csv"], check=True, env=env_path, capture_output=True, text=True)
    score = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(score) >= {"exact_match", "macro_f1", "public", "private"}
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(report["variants"]) == len(RunConfig().variants)


def test_every_verb_has_help(capsys):
    from geocontext.cli import build_parser

    verbs = build_parser()._subparsers._group_actions[0].choices
    for verb in verbs:
        with pytest.raises(SystemExit) as exit_:
            main([verb, "--help"])
        assert exit_.value.code == 0
    assert {"run", "predict", "evaluate", "demo"} <= set(verbs)


def test_bad_config_is_a_clear_error(demo_data, demo_features, tmp_path, capsys):
    (tmp_path / "c.json").write_text('{"variants": [{"name": "x", "train": {"head": "tree"}}]}')
    code = main(["run", "--data", str(demo_data), "--features", str(demo_features), "--out", str(tmp_path / "o"),
                 "--config", str(tmp_path / "c.json")])
    assert code == 2 and "unknown head 'tree'" in capsys.readouterr().err


def test_report_md_links_its_chart_and_decoder_table(finished):
    from PIL import Image

    out, report = finished
    text = (out / "report.md").read_text()
    assert f"**Final choice: {report['final']['name']}**" in text and "![per-tag F1](per_tag_f1.png)" in text
    assert "## Decoder settings" in text and "Coastal" in text  # tag names, not just column ids
    assert Image.open(out / "per_tag_f1.png").size[1] > 500


def test_a_rerun_reuses_finished_variants(finished, demo_data, demo_features, capsys):
    out, report = finished
    again = run(demo_data, demo_features, out, small_config())
    assert "reusing linear" in capsys.readouterr().out
    assert not any(k.startswith("train ") for k in again["timings_s"])
    assert again["variants"] == report["variants"] and again["final"] == report["final"]


def test_with_adds_another_runs_variants_as_members(finished, demo_data, demo_features, tmp_path):
    out, _ = finished
    config = RunConfig(variants=[VariantConfig("solo", train=TrainConfig(epochs=3))],
                       decode=DecodeConfig(decoders=("0.5", "global"), global_trials=5))
    report = run(demo_data, demo_features, tmp_path / "mixed", config, with_runs=[out])
    members = set(report["variants"])
    assert "solo" in members and len(members) > 1
    assert (tmp_path / "mixed" / "variants" / sorted(members - {"solo"})[0] / "model.pt").exists()
    assert len(members) == 3  # solo + both variants of the other run
    assert all(report["variants"][m]["same_holdout_split"] for m in members - {"solo"})
    assert any(set(c["members"]) == members for c in report["candidates"].values())


def test_leaderboard_ranks_candidates(finished, capsys):
    from geocontext.pipeline.reports.leaderboard import collect

    out, report = finished
    rows = collect([out])
    assert [r["exact_match"] for r in rows] == sorted((r["exact_match"] for r in rows), reverse=True)
    assert sum(r["final"] for r in rows) == 1 and len(rows) == len(report["candidates"])
    assert main(["leaderboard", str(out), "--final"]) == 0
    table = capsys.readouterr().out
    assert f"{report['final']['selection_exact_match']:.4f}" in table and "*" in table
    assert main(["leaderboard", str(out.parent / "nowhere")]) == 2
    assert main(["leaderboard", "--run", str(out), "--final"]) == 0  # --run, as the other verbs name a run
    assert capsys.readouterr().out == table
    assert main(["leaderboard"]) == 2
