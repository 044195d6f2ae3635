"""Shared fixtures: a small synthetic competition (built once per session) and access to ../shared."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GEOCONTEXT_PROGRESS", "0")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
# A tiny open_clip model config (`--model` accepts a .json config): real code paths, seconds on a CPU.
TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}


def shared_file(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: ../shared/data (real competition files and published models) is absent")
    return path


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """A DATA folder in the competition's layout: 240 train + 60 test photos, JPEGs, metadata, solution."""
    from geocontext.synthetic.demo import build_dataset

    return build_dataset(tmp_path_factory.mktemp("demo") / "data", n_train=240, n_test=60, seed=3)


@pytest.fixture(scope="session")
def demo_features(demo_data, tmp_path_factory) -> Path:
    """Synthetic FEATURES for `demo_data` (fast; the embedding tests cover the real encoder)."""
    from geocontext.synthetic.world import write_feature_folder

    return write_feature_folder(demo_data, tmp_path_factory.mktemp("features") / "features", seed=3, dim=32, noise=0.25)


def small_config():
    """A run configuration that trains in seconds on the demo data: a linear head and a small MLP."""
    from geocontext.decoding.select import DecodeConfig
    from geocontext.pipeline.config import RunConfig
    from geocontext.training.config import TrainConfig, VariantConfig
    from geocontext.training.inputs import FeatureSpec

    return RunConfig(
        variants=[VariantConfig("linear", train=TrainConfig(head="linear", epochs=8, lr=5e-2)),
                  VariantConfig("mlp-img-loc", FeatureSpec(("image", "location")), TrainConfig(head="mlp", epochs=8, lr=1e-2))],
        decode=DecodeConfig(global_trials=8, per_tag_trials=6, label_sets=200))
