import numpy as np
import pytest
import torch

from geocontext.training.config import TrainConfig
from geocontext.training.heads import build_head, predict_proba
from geocontext.training.inputs import Standardizer
from geocontext.training.loop import fit


def separable(n=3000, d=16, t=5, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=(n, t)) < 0.25).astype(np.float32)
    y[~y.any(axis=1), 0] = 1
    w = rng.normal(size=(t, d))
    x = y @ w + rng.normal(0, 0.3, (n, d))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


@pytest.mark.parametrize("config", [
    TrainConfig(head="linear", epochs=15, lr=1e-2, input_dtype="fp32"),
    TrainConfig(head="mlp", epochs=15, lr=3e-3, input_dtype="fp32"),
    TrainConfig(head="mlp", epochs=15, lr=3e-3, mixup_alpha=0.4, input_dtype="fp32"),
])
def test_heads_learn_and_keep_their_best_epoch(config):
    x, y = separable()
    result = fit(x[:2400], y[:2400], x[2400:], y[2400:], config)
    history = [h["holdout_exact_match"] for h in result.history]
    assert result.best_exact_match == max(history) > 0.8
    assert history[result.best_epoch] == result.best_exact_match
    logits_best = result.head(x[2400:]).detach()
    exact = ((logits_best >= 0) == y[2400:].bool()).all(dim=1).float().mean().item()
    assert exact == pytest.approx(result.best_exact_match, abs=0.02)  # the returned weights are the best epoch's


def test_early_stopping_stops_when_the_holdout_stops_improving():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(600, 64, generator=gen)  # noise: a wide MLP can only memorise, the hold-out gets worse
    y = (torch.rand(600, 5, generator=gen) < 0.3).float()
    config = TrainConfig(head="mlp", epochs=60, patience=3, lr=1e-2, dropout=0.0, input_dtype="fp32")
    result = fit(x[:300], y[:300], x[300:], y[300:], config)
    assert len(result.history) == result.best_epoch + 1 + config.patience < 60


def test_same_seed_same_model_and_bf16_storage_learns():
    x, y = separable()
    config = TrainConfig(head="mlp", epochs=3, seed=7, input_dtype="fp32")
    a = fit(x[:2400], y[:2400], x[2400:], y[2400:], config)
    b = fit(x[:2400], y[:2400], x[2400:], y[2400:], config)
    for pa, pb in zip(a.head.parameters(), b.head.parameters()):
        assert torch.equal(pa, pb)
    xb = x.to(torch.bfloat16)
    c = fit(xb[:2400], y[:2400], xb[2400:], y[2400:], TrainConfig(head="linear", epochs=15, lr=1e-2))
    assert c.best_exact_match > 0.8 and c.head.weight.dtype == torch.float32


def test_published_head_layouts():
    assert set(build_head("mlp", 1026, 49).state_dict()) == {"0.weight", "0.bias", "3.weight", "3.bias"}
    assert set(build_head("linear", 1026, 49).state_dict()) == {"weight", "bias"}
    with pytest.raises(ValueError, match="unknown head 'tree'"):
        build_head("tree", 3, 2)


def test_standardizer_fits_training_rows_only():
    x = np.array([[1.0, 5.0], [3.0, 5.0], [100.0, 0.0]], dtype=np.float32)
    scaler = Standardizer.fit(x, np.array([0, 1]))
    assert scaler.mean.tolist() == [2.0, 5.0] and scaler.std.tolist() == [1.0, 1.0]  # constant column kept as is
    assert scaler.transform_(x.copy())[:2].tolist() == [[-1.0, 0.0], [1.0, 0.0]]


def test_predict_proba_is_batched_and_in_eval_mode():
    head = build_head("mlp", 4, 3)
    x = torch.randn(10, 4)
    a = predict_proba(head, x, batch_size=3)
    b = predict_proba(head, x, batch_size=100)
    assert a.shape == (10, 3) and np.allclose(a, b)  # dropout off: batching changes nothing


def test_the_returned_head_is_the_best_epoch_not_the_last():
    """A wide MLP on weak signal overfits: the hold-out gets worse after an early best epoch, and training
    runs on (patience covers every epoch). The head returned must score exactly its best epoch's record."""
    from geocontext.training.loop import _logits, holdout_scores

    gen = torch.Generator().manual_seed(1)
    y = (torch.rand(800, 5, generator=gen) < 0.3).float()
    x = 0.4 * y @ torch.randn(5, 64, generator=gen) + torch.randn(800, 64, generator=gen)
    config = TrainConfig(head="mlp", hidden=256, epochs=14, patience=14, lr=1e-2, dropout=0.0, input_dtype="fp32")
    result = fit(x[:400], y[:400], x[400:], y[400:], config)
    best, last = result.history[result.best_epoch], result.history[-1]
    assert result.best_epoch < len(result.history) - 1 and last["holdout_loss"] > best["holdout_loss"] + 0.01
    exact, loss = holdout_scores(_logits(result.head, x[400:], False), y[400:])
    assert exact == best["holdout_exact_match"] and loss == pytest.approx(best["holdout_loss"], abs=1e-6)


def test_mixup_softens_the_heads_confidence():
    """MixUp trains on blended rows with blended targets, so on separable data the head stays less sure of
    its training rows than the same head, seed and data without it; both still learn."""
    x, y = separable()
    plain = TrainConfig(head="mlp", epochs=10, lr=3e-3, dropout=0.0, patience=10, input_dtype="fp32")
    mixed = TrainConfig(**{**plain.to_dict(), "mixup_alpha": 0.4})
    confidence = {}
    for name, config in (("plain", plain), ("mixup", mixed)):
        result = fit(x[:2400], y[:2400], x[2400:], y[2400:], config)
        assert result.best_exact_match > 0.8
        p = predict_proba(result.head, x[:2400])
        confidence[name] = float(np.abs(p - 0.5).mean())
    assert confidence["mixup"] < confidence["plain"] - 0.01, confidence


def test_label_smoothing_keeps_probabilities_off_0_and_1():
    """Separable rows: plain BCE drives the probabilities toward 0 and 1; with smoothing s the best
    answer for a present tag is 1 - s/2 (the median photo's)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 6, generator=gen)
    y = torch.stack([(x[:, 0] > 0), (x[:, 1] > 0)], dim=1).float()
    peak = {}
    for s in (0.0, 0.2):
        config = TrainConfig(head="linear", epochs=40, lr=5e-2, label_smoothing=s, input_dtype="fp32")
        head = fit(x, y, None, None, config, epochs=40).head
        p = torch.sigmoid(head(x))
        peak[s] = float(p[y.bool()].median())
    assert peak[0.0] > 0.97 and 0.8 < peak[0.2] < 0.93, peak


def test_bf16_storage_widened_to_float32_products_without_bf16_units(monkeypatch):
    """Where the CPU has no bf16 units, bf16-held inputs train exactly as their float32 values would
    (each batch widened, no emulated bf16 products); half the memory either way."""
    from geocontext.training import loop

    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: False)
    x, y = separable()
    xb = x.to(torch.bfloat16)
    config = TrainConfig(head="mlp", epochs=3, seed=7)
    held = fit(xb[:2400], y[:2400], xb[2400:], y[2400:], config)
    wide = fit(xb[:2400].float(), y[:2400], xb[2400:].float(), y[2400:], config)
    for pa, pb in zip(held.head.parameters(), wide.head.parameters()):
        assert torch.equal(pa, pb)
    assert loop.storage_dtype("auto") == torch.bfloat16 and loop.storage_dtype("fp32") == torch.float32
