"""Shared pieces of the labeller fault tests: fast retry options, a type-classifier checkpoint, a small
finished run with a tiny random-weight CLIP for `label context`, and a stopper that records waits."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch

from geocontext.cli import main
from geocontext.decoding.select import DecodeConfig
from geocontext.labeller.queue import Stopper
from geocontext.pipeline.config import RunConfig
from geocontext.pipeline.run import run
from geocontext.training.config import TrainConfig, VariantConfig
from geocontext.typetags.checkpoint import save_checkpoint
from geocontext.typetags.classifier import TypeClassifier

FAST = ["--retry-base", "0.01", "--retry-cap", "0.05", "--timeout", "2", "--unique-number", "5"]
TINY_CLIP = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 32, "patch_size": 8},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


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
    work = tmp_path_factory.mktemp("label-faults")
    (work / "tiny.json").write_text(json.dumps(TINY_CLIP))
    encoder = ["--model", str(work / "tiny.json"), "--random-weights", "--device", "cpu", "--precision", "fp32"]
    assert main(["embed", "--data", str(demo_data), "--out", str(work / "features"), "--workers", "0",
                 "--accept-missing", *encoder]) == 0
    config = RunConfig(variants=[VariantConfig("linear", train=TrainConfig(head="linear", epochs=2, lr=5e-2))],
                       decode=DecodeConfig(global_trials=4, per_tag_trials=4, label_sets=50))
    run(demo_data, work / "features", work / "run", config, accept_missing=True)
    return ["--run", str(work / "run"), *encoder, "--threshold", "0", *FAST], demo_data


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
