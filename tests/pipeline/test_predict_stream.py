"""`predict` streams: the chunked path gives the same tags and probabilities as the whole-matrix one."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import small_config

from geocontext.embedding.features import load_features
from geocontext.pipeline.predict import load_run
from geocontext.pipeline.prepare import load_inputs
from geocontext.pipeline.run import run
from geocontext.pipeline.stream import predict_chunks, streamed_inputs


@pytest.fixture(scope="module")
def finished(demo_data, demo_features, tmp_path_factory):
    out = tmp_path_factory.mktemp("stream-run")
    run(demo_data, demo_features, out, small_config())
    return out


def test_chunks_give_the_whole_matrix_answer(finished, demo_data, demo_features, tmp_path):
    _, variants, choice = load_run(finished)
    features = load_features(demo_features, "test")
    inputs = load_inputs(demo_data, demo_features, "test", features.ids, "ids")
    fused: dict = {}
    whole = [variants[m].predict_proba(inputs.features, inputs.rows, inputs.location, inputs.irish, fused)
             for m in choice.members]
    tags = predict_chunks(variants, choice, inputs, tmp_path / "p.npy", chunk=7)  # 60 rows: 9 chunks, the last short
    np.testing.assert_array_equal(tags, choice.decode(whole, inputs.ids))
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), choice.combine(whole, inputs.ids), atol=1e-6)
    assert not list(tmp_path.glob("*.part"))


def test_a_failed_prediction_leaves_no_half_written_probs(finished, demo_data, demo_features, tmp_path):
    _, variants, choice = load_run(finished)
    features = load_features(demo_features, "test")
    inputs = load_inputs(demo_data, demo_features, "test", features.ids, "ids")
    inputs.location = inputs.location[:25]  # the second chunk lacks locations: predict_proba fails there
    with pytest.raises(ValueError):
        predict_chunks(variants, choice, inputs, tmp_path / "p.npy", chunk=20)
    assert not list(tmp_path.iterdir())


def test_streamed_inputs_equal_load_inputs(demo_data, demo_features, monkeypatch):
    """Locations and summary as prepare.load_inputs gives them (malformed metadata lines, blank, garbled
    and Irish references, an id without a metadata row), read 7 lines at a time."""
    from geocontext.data.readers import iter_metadata
    from geocontext.pipeline import stream

    features = load_features(demo_features, "test")
    ids = features.ids[::-1].copy()  # not in file order
    whole = load_inputs(demo_data, demo_features, "test", ids, "ids")
    monkeypatch.setattr(stream, "iter_metadata", lambda data_dir: iter_metadata(data_dir, chunk_bytes=300))
    streamed = streamed_inputs(demo_data, features, ids, "ids")
    np.testing.assert_array_equal(streamed.rows, whole.rows)
    np.testing.assert_array_equal(streamed.location, whole.location)
    np.testing.assert_array_equal(streamed.irish, whole.irish)
    assert streamed.summary == whole.summary
    assert whole.summary["metadata"]["malformed_lines"] > 0 and 0 < whole.summary["locations"]["known"] < len(ids)
