"""Train the variants that share a feature spec: one fused, standardised input (with its location priors),
then each head on it. `run` trains them stopped early on the hold-out's stop rows; `refit` trains the
chosen ones again on every labelled row for the epochs that chose."""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from ..console import say
from ..training.config import TrainConfig
from ..training.heads import predict_proba
from ..training.inputs import FeatureSpec
from ..training.loop import FitResult, fit, storage_dtype
from ..training.variant import Variant
from .prepare import Prepared
from .tensors import spec_inputs


@dataclass(frozen=True)
class Job:
    """One head to train."""

    name: str
    train: TrainConfig
    epochs: int | None = None  # None: stop early on the stop rows; N: exactly N epochs, no rows to stop on
    info: dict = field(default_factory=dict)  # recorded in its variant.json with what training adds


@dataclass
class Trained:
    job: Job
    variant: Variant
    result: FitResult
    holdout: np.ndarray | None  # its hold-out probabilities (None when trained on the hold-out too)
    test: np.ndarray
    far: np.ndarray | None = None  # its probabilities on the far view's rows (pipeline.bands), when there is one


def train_group(prep: Prepared, spec: FeatureSpec, jobs: list[Job], learn: np.ndarray, timings: dict,
                seed: int, label: str = "") -> Iterator[Trained]:
    """Train `jobs` (all on `spec`) on the labelled rows `learn` (bool), one after another; each yields its
    variant with hold-out (when `learn` leaves the hold-out out) and test probabilities."""
    t = time.perf_counter()
    stopped = any(job.epochs is None for job in jobs)
    dtypes = sorted({storage_dtype(job.train.input_dtype) for job in jobs}, key=str)
    selections = {f"learn {dt}": (learn, dt) for dt in dtypes}
    if stopped:
        selections |= {f"stop {dt}": (prep.stop, dt) for dt in dtypes}
    held_out = not (learn & prep.holdout).any()
    if held_out:
        selections["holdout"] = (prep.holdout, torch.float32)
    inputs = spec_inputs(prep, spec, learn, selections, seed)
    timings[f"{label}features {spec.name}"] = time.perf_counter() - t
    y_learn = torch.from_numpy(prep.labels.y[learn])
    y_stop = torch.from_numpy(prep.labels.y[prep.stop]) if stopped else None
    for job in jobs:
        dt = storage_dtype(job.train.input_dtype)
        x = inputs.train[f"learn {dt}"]
        if job.epochs is None:
            say(f"training {job.name}: {len(x)} rows x {x.shape[1]} inputs ({x.dtype})")
            result = fit(x, y_learn, inputs.train[f"stop {dt}"], y_stop, job.train, desc=job.name)
        else:
            say(f"{label}{job.name}: {len(x)} labelled rows for {job.epochs} epochs")
            result = fit(x, y_learn, None, None, job.train, desc=f"{job.name} ({label.strip() or 'fixed'})",
                         epochs=job.epochs)
        info = {**job.info, "train": job.train.to_dict(), "encoders": Variant.encoders(spec, prep.train.features)}
        if job.epochs is None:
            info |= {"best_epoch": result.best_epoch, "history": result.history}
        variant = Variant(job.name, spec, job.train.head, result.head, inputs.scaler, prep.labels.columns,
                          job.train.hidden, job.train.dropout, info=info, priors=inputs.priors,
                          neighbours=inputs.neighbours, peers=inputs.peers)
        holdout = predict_proba(variant.head, inputs.train["holdout"]) if held_out else None
        far = None
        if held_out and prep.far.any():  # without the block, the far view's rows read what they read anyway
            far = predict_proba(variant.head, inputs.far) if inputs.far is not None else \
                holdout[np.flatnonzero(prep.far[prep.holdout])]
        yield Trained(job, variant, result, holdout, predict_proba(variant.head, inputs.test), far)
