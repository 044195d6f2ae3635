"""Shared pieces of the labeller fault tests: fast retry options, a type-classifier checkpoint, a small
finished run with a tiny random-weight CLIP for `label context`, and a stopper that records waits."""
from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

from geocontext.bench.label_fleet import tiny_run
from geocontext.cli import main
from geocontext.labeller.queue import Stopper
from geocontext.typetags.checkpoint import save_checkpoint
from geocontext.typetags.classifier import TypeClassifier

FAST = ["--retry-base", "0.01", "--retry-cap", "0.05", "--timeout", "2", "--unique-number", "5"]


def b64(vector) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def type_row(image_id) -> dict:
    return {"gridimage_id": image_id, "embeddings": b64(np.ones(512)), "distance": "8"}


def by_id(posts: list[list[dict]], key: str = "label") -> dict:
    """Records of the stored posts that carry `key`, grouped by image_id."""
    out: dict = {}
    for body in posts:
        for record in body:
            if key in record:
                out.setdefault(record["image_id"], []).append(record)
    return out


@pytest.fixture(scope="module")
def types_checkpoint(tmp_path_factory) -> str:
    torch.manual_seed(0)
    return str(save_checkpoint(tmp_path_factory.mktemp("types") / "model.pth", TypeClassifier(clip_dim=512).eval()))


@pytest.fixture(scope="module")
def context_setup(demo_data, tmp_path_factory):
    """(arguments of `label context` but the endpoint, the demo photo folder): a one-variant run on the
    demo photos embedded by a tiny random-weight CLIP, the worker's own encoder (another is refused)."""
    run_dir, encoder = tiny_run(tmp_path_factory.mktemp("label-faults"), demo_data)
    return ["--run", str(run_dir), *encoder, "--threshold", "0", *FAST], demo_data


def label_types(queue, checkpoint, *extra) -> int:
    return main(["label", "types", "--endpoint", queue.endpoint("types"), "--model", checkpoint, *FAST, *extra])


class RecordingStopper(Stopper):
    """A stopper whose waits return at once, recording how long the worker meant to wait."""

    def __init__(self):
        super().__init__()
        self.waits: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.stopped
