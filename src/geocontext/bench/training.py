"""Training speed: our whole-tensor loop against a loop built like the published notebook.

The baseline is what the notebook does: a DataLoader over a TensorDataset of the raw image and title
embeddings, a per-sample Python collate that looks up each photo's location in a dict and
concatenates the row, batch 4096, float32. Both loops train the same head (same init seed), with the
same optimiser (AdamW, cosine schedule), learning rate, data and early stopping on hold-out exact match.
The physical limit next to each figure is the arithmetic an epoch needs (forward + weight gradients
of the training rows, forward of the hold-out rows) over the matrix-multiply throughput torch measures
here for the same shapes."""
from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..training.config import TrainConfig
from ..training.heads import build_head
from ..training.loop import fit, holdout_scores, storage_dtype


def matmul_gflops(dtype: torch.dtype, m: int = 4096, k: int = 1028, n: int = 256, repeats: int = 20) -> float:
    """Measured throughput of an (m x k) @ (k x n) product, the shape a training step is made of."""
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * m * k * n / statistics.median(times) / 1e9


def epoch_flops(head: str, n_train: int, n_val: int, d: int, t: int = 49, hidden: int = 256) -> float:
    """Floating-point operations of one epoch: forward + weight gradients on training rows (no gradient
    for the inputs, which need none), forward on hold-out rows."""
    if head == "linear":
        fwd = 2 * d * t
        return n_train * 2 * fwd + n_val * fwd
    fwd = 2 * (d * hidden + hidden * t)
    bwd = 2 * d * hidden + 2 * hidden * t * 2  # dW1, dW2 and the hidden activations' gradient
    return n_train * (fwd + bwd) + n_val * fwd


class LocationCollate:
    """The notebook's collate: one Python call per photo, its location looked up by id."""

    def __init__(self, location_by_id: dict):
        self.location_by_id = location_by_id

    def __call__(self, batch):
        rows, labels = [], []
        for image, title, gid, y in batch:
            loc = torch.tensor(self.location_by_id[int(gid)], dtype=torch.float32)
            rows.append(torch.cat([image, title, loc]))
            labels.append(y)
        return torch.stack(rows), torch.stack(labels)


def _notebook_tensors(x: np.ndarray, ids: np.ndarray, y: np.ndarray, blocks: tuple[int, int, int]):
    """Split fused rows back into what the notebook keeps: image and title tensors, locations by id."""
    a, b = blocks[0], blocks[0] + blocks[1]
    location = dict(zip(ids.tolist(), map(tuple, x[:, b:].tolist())))
    return (torch.from_numpy(x[:, :a].copy()), torch.from_numpy(x[:, a:b].copy()), torch.from_numpy(ids),
            torch.from_numpy(y.astype(np.float32))), location


def baseline_fit(train, val, location_by_id: dict, config: TrainConfig, max_epochs: int) -> dict:
    """Train like the notebook; per-epoch seconds (training + hold-out pass), time to the best epoch."""
    torch.manual_seed(config.seed)
    collate = LocationCollate(location_by_id)
    loader = DataLoader(TensorDataset(*train), batch_size=config.batch_size, shuffle=True, collate_fn=collate)
    val_loader = DataLoader(TensorDataset(*val), batch_size=config.batch_size, collate_fn=collate)
    in_dim = train[0].shape[1] + train[1].shape[1] + len(next(iter(location_by_id.values())))
    head = build_head(config.head, in_dim, train[3].shape[1], config.hidden, config.dropout)
    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * len(loader))
    loss_fn = nn.BCEWithLogitsLoss()
    seconds, scores, best_time, since, start = [], [], 0.0, 0, time.perf_counter()
    for _ in range(max_epochs):
        t = time.perf_counter()
        head.train()
        for xb, yb in loader:
            loss = loss_fn(head(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        head.eval()
        with torch.no_grad():
            pairs = [(head(xb), yb) for xb, yb in val_loader]
        score, _ = holdout_scores(torch.cat([p for p, _ in pairs]), torch.cat([q for _, q in pairs]))
        seconds.append(time.perf_counter() - t)
        if not scores or score > max(scores):
            best_time, since = time.perf_counter() - start, 0
        else:
            since += 1
        scores.append(score)
        if since >= config.patience:
            break
    return {"epoch_seconds": seconds, "scores": scores, "seconds_to_best": best_time}


def compare(x_fit: np.ndarray, y_fit: np.ndarray, ids_fit: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
            ids_val: np.ndarray, blocks: tuple[int, int, int], config: TrainConfig, max_baseline_epochs: int) -> dict:
    """Ours and the notebook-style baseline on the same (fused, standardised) rows, same head and seed.

    The baseline gets at most `max_baseline_epochs`; when it had not stopped by then its time to the
    best epoch is a lower bound (reported as such)."""
    dtype = storage_dtype(config.input_dtype)
    ours = fit(torch.from_numpy(x_fit).to(dtype), torch.from_numpy(y_fit), torch.from_numpy(x_val).to(dtype),
               torch.from_numpy(y_val), config, desc=f"ours {config.head}")
    ours_epochs = np.diff([0.0] + [h["seconds"] for h in ours.history])
    train, location = _notebook_tensors(x_fit, ids_fit, y_fit, blocks)
    val, val_location = _notebook_tensors(x_val, ids_val, y_val, blocks)
    base = baseline_fit(train, val, {**location, **val_location}, config, max_baseline_epochs)
    stopped = len(base["scores"]) < max_baseline_epochs
    return {
        "head": config.head, "rows": len(x_fit), "holdout_rows": len(x_val), "inputs": x_fit.shape[1],
        "epoch_gflop": epoch_flops(config.head, len(x_fit), len(x_val), x_fit.shape[1], y_fit.shape[1], config.hidden) / 1e9,
        "ours": {"epoch_s_median": float(np.median(ours_epochs)), "best_epoch": ours.best_epoch,
                 "epochs_run": len(ours.history), "seconds_to_best": ours.seconds_to_best,
                 "best_exact_match": ours.best_exact_match, "dtype": str(dtype).replace("torch.", "")},
        "baseline": {"epoch_s_median": float(np.median(base["epoch_seconds"])), "best_epoch": int(np.argmax(base["scores"])),
                     "epochs_run": len(base["scores"]), "stopped_early": stopped,
                     "seconds_to_best": base["seconds_to_best"], "best_exact_match": max(base["scores"]),
                     "dtype": "float32"},
    }
