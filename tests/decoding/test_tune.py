import numpy as np
import optuna
import pytest

from geocontext.decoding.decoders import ThresholdDecoder
from geocontext.decoding.ensemble import fit_weights
from geocontext.decoding.select import Candidate, DecodeConfig, candidates, choose
from geocontext.decoding.thresholds import (
    coordinate_ascent,
    exact_match_at,
    tune_thresholds,
)


def fake_model(n=4000, t=6, seed=0):
    """Labels and probabilities from a miscalibrated model: per-tag bias, so per-tag thresholds help."""
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=(n, t)) < 0.15).astype(np.uint8)
    y[~y.any(axis=1), 0] = 1
    bias = np.linspace(-2.5, 1.5, t)
    logit = (2 * y.astype(float) - 1) * 2.5 + rng.normal(0, 1.2, y.shape) + bias
    return (1 / (1 + np.exp(-logit))).astype(np.float32), y


def test_exact_match_at_matches_the_decoder():
    probs, y = fake_model()
    for t in (0.2, 0.5, np.linspace(0.2, 0.8, 6)):
        tags = ThresholdDecoder(t).decode(probs)
        assert exact_match_at(probs, y, t) == pytest.approx((tags == y).all(axis=1).mean())


def test_tuning_beats_the_published_threshold_on_new_rows():
    probs, y = fake_model(8000)
    a, b = slice(0, 4000), slice(4000, None)
    glob = tune_thresholds(probs[a], y[a], per_tag=False, n_trials=30, seed=0)
    per_tag = tune_thresholds(probs[a], y[a], per_tag=True, n_trials=20, seed=0)
    base = exact_match_at(probs[b], y[b], 0.5)
    assert exact_match_at(probs[b], y[b], glob.thresholds) >= base
    assert exact_match_at(probs[b], y[b], per_tag.thresholds) > base + 0.05
    assert exact_match_at(probs[a], y[a], per_tag.thresholds) >= exact_match_at(probs[a], y[a], glob.thresholds)


def test_coordinate_ascent_never_loses_on_its_rows():
    probs, y = fake_model()
    start = exact_match_at(probs, y, 0.5)
    t = coordinate_ascent(probs, y, 0.5)
    assert exact_match_at(probs, y, t) > start and ((t >= 0.02) & (t <= 0.98)).all()


def test_a_stored_study_resumes_instead_of_restarting(tmp_path):
    probs, y = fake_model()
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    tune_thresholds(probs, y, per_tag=False, n_trials=12, seed=0, storage=storage, study_name="s")
    (name,) = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    first = [t.params for t in optuna.load_study(study_name=name, storage=storage).trials]
    tune_thresholds(probs, y, per_tag=False, n_trials=20, seed=0, storage=storage, study_name="s")
    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert len(trials) == 20  # 8 more, not 20 new ones
    assert [t.params for t in trials[:12]] == first
    # other data -> a different study, never a mix of two data sets
    tune_thresholds(probs[:100], y[:100], per_tag=False, n_trials=5, seed=0, storage=storage, study_name="s")
    assert len(optuna.get_all_study_summaries(storage)) == 2


def test_ensemble_weights_follow_the_informative_member():
    probs, y = fake_model()
    noise = np.random.default_rng(1).uniform(size=probs.shape).astype(np.float32)
    w = fit_weights([noise, probs], y)
    assert w.sum() == pytest.approx(1) and w[1] > 0.9


def test_tuning_never_sees_the_rows_it_is_scored_on(monkeypatch):
    n = 2000
    probs, y = fake_model(n)
    ids = np.arange(n) * 13 + 5
    marker = np.arange(n, dtype=np.float32) / n  # row identity hidden in an extra probability column
    holdout = {"a": np.column_stack([probs, marker]), "b": np.column_stack([probs[:, ::-1], marker])}
    y2 = np.column_stack([y, np.zeros(n, np.uint8)])
    seen = []
    original = Candidate.tune

    shared_rows = {}  # weights and global thresholds shared between candidates: one set of rows per cache

    def spy(self, probs_, y_, *args, **kwargs):
        rows = set(np.rint(probs_[0][:, -1] * n).astype(int))
        seen.append((kwargs.get("study") or args[-1], rows))
        if kwargs.get("shared") is not None:
            assert shared_rows.setdefault(id(kwargs["shared"]), rows) == rows
        return original(self, probs_, y_, *args, **kwargs)

    monkeypatch.setattr(Candidate, "tune", spy)
    config = DecodeConfig(global_trials=5, per_tag_trials=5)
    choice, report, predicted = choose(holdout, y2, ids, y2, config)
    from geocontext.data.split import folds
    fold = folds(ids, 2, config.seed)
    for study, rows in seen:
        if study.startswith("fold"):
            k = int(study[4])
            assert rows == set(np.flatnonzero(fold != k))  # tuned on the other fold only
        else:
            assert study.startswith("final/") and rows == set(range(n))
    assert len(shared_rows) == 3 * config.folds  # a, b and their ensemble, each per fold
    assert len(report) == len(candidates(["a", "b"], config)) == 15  # 5 decoders x (a, b, ensemble)
    assert choice.name == max(report, key=lambda k: report[k]["exact_match"])
    assert (predicted == y2).all(axis=1).mean() == report[choice.name]["exact_match"]
