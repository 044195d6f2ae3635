"""The types dataset reader: usable rows kept bit for bit, every unusable line counted and named."""
import base64
import json

import numpy as np
import pytest

from geocontext.errors import DataError
from geocontext.synthetic.types_data import BAD_LINES, sample, write_dataset
from geocontext.typetags.reader import TypeRows, iter_rows, read_types


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("types") / "types.jsonl", n=400, seed=5)


def _vector(values, dtype="<f4") -> str:
    return base64.b64encode(np.asarray(values, dtype=dtype).tobytes()).decode("ascii")


def _write(path, records) -> None:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")


def test_generated_file_reports_each_bad_line_by_number(generated):
    rows, report = read_types(generated.path)
    assert len(rows) == report.rows == generated.photos == 400
    assert report.blank == len(generated.blank_lines) == 1
    assert dict(report.skipped) == {reason: 1 for reason in BAD_LINES}
    for reason, line in generated.bad_lines.items():
        assert report.examples[reason][0].startswith(f"line {line}"), (reason, report.examples[reason])
        assert f"line {line}" in report.summary()
    assert report.lines == 400 + len(BAD_LINES) + 1
    assert report.examples["duplicate gridimage_id"][0].endswith("first on line 3")  # it repeats the third line
    # rows keep their source line numbers, and no bad line slipped in
    assert not set(rows.line) & set(generated.bad_lines.values())


def test_rows_round_trip_the_written_values(generated):
    rows, _ = read_types(generated.path)
    fields = sample(400, seed=5)
    order = np.argsort(fields["ids"])
    assert np.array_equal(np.sort(rows.ids), fields["ids"][order])
    pos = np.searchsorted(fields["ids"], rows.ids)
    assert np.array_equal(rows.embeddings, fields["embeddings"][pos])  # bit for bit, no zero vector anywhere
    assert np.abs(rows.embeddings).sum(axis=1).min() > 0
    assert list(rows.distance) == list(fields["distance"][pos])
    assert list(rows.types) == list(fields["types"][pos])
    given = ~np.isnan(fields["weight"][pos])
    assert np.array_equal(np.isnan(rows.weight), ~given) and np.all(rows.weight[given] == 0.5)


def test_chunks_add_up_to_the_whole_file(generated):
    whole, _ = read_types(generated.path)
    chunks = list(iter_rows(generated.path, chunk_rows=64))
    assert [len(c) for c in chunks[:-1]] == [64] * (len(chunks) - 1)
    joined = TypeRows.concat(chunks)
    assert np.array_equal(joined.ids, whole.ids) and np.array_equal(joined.embeddings, whole.embeddings)


def test_strict_mode_stops_at_the_first_bad_line(generated):
    first = min(generated.bad_lines.values())
    with pytest.raises(DataError, match=rf"types.jsonl, line {first}: malformed JSON"):
        read_types(generated.path, strict=True)


def test_little_endian_decoding_and_field_defaults(tmp_path):
    values = np.linspace(-1, 1, 8, dtype=np.float32)
    path = tmp_path / "small.jsonl"
    _write(path, [{"gridimage_id": "17", "embeddings": _vector(values)},  # id as a digit string; no other field
                  {"gridimage_id": 18, "embeddings": _vector(values, ">f4"), "distance": 256, "types": "Inside",
                   "split": "tes", "weight": "0.25"}])
    rows, report = read_types(path, dim=8)
    assert report.n_skipped == 0
    assert list(rows.ids) == [17, 18]
    assert np.array_equal(rows.embeddings[0], values)
    assert not np.array_equal(rows.embeddings[1], values)  # big-endian bytes are not silently "fixed"
    assert list(rows.distance) == ["Unknown", "256"] and list(rows.split) == ["", "tes"]
    assert list(rows.types) == ["", "Inside"]
    assert np.isnan(rows.weight[0]) and rows.weight[1] == 0.25


@pytest.mark.parametrize("record, reason", [
    ({"gridimage_id": 1, "embeddings": [0.0] * 8}, "undecodable embeddings"),
    ({"gridimage_id": 1, "embeddings": "QUJD"}, "wrong-length vector"),
    ({"gridimage_id": 1}, "missing embeddings"),
    ({"gridimage_id": "x1", "embeddings": "AAAA"}, "bad gridimage_id"),
    ({"gridimage_id": True, "embeddings": "AAAA"}, "bad gridimage_id"),
    ({"gridimage_id": -5, "embeddings": "AAAA"}, "bad gridimage_id"),
    ({"gridimage_id": 1, "embeddings": _vector([0, 0, 0, 0, 0, 0, 0, np.inf])}, "NaN/Inf values"),
    ({"gridimage_id": 1, "embeddings": _vector(np.ones(8)), "weight": -1}, "bad weight"),
    ("null", "not a JSON object"),
    ('{"gridimage_id": 1,', "malformed JSON"),
])
def test_each_kind_of_bad_line_is_named(tmp_path, record, reason):
    path = tmp_path / "one.jsonl"
    _write(path, [{"gridimage_id": 99, "embeddings": _vector(np.ones(8))}, record])
    rows, report = read_types(path, dim=8)
    assert list(rows.ids) == [99]
    assert dict(report.skipped) == {reason: 1}
    assert report.examples[reason][0].startswith("line 2")


def test_no_usable_line_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    _write(path, ["not json", ""])
    with pytest.raises(DataError, match="bad.jsonl.*0 photos from 2 lines.*malformed JSON \\(line 1"):
        read_types(path)
    with pytest.raises(DataError, match="missing.jsonl: file not found"):
        read_types(tmp_path / "missing.jsonl")


def test_distances_and_splits_outside_the_published_ones_are_counted_by_line(tmp_path):
    """Kept (as before) but no longer absorbed silently: each kind counted, the lines named."""
    path = tmp_path / "odd.jsonl"
    records = [{"gridimage_id": 1, "embeddings": _vector(np.ones(8)), "distance": "256", "split": "tra"}]
    usual = [("0", "val"), ("", "tes"), ("Unknown", ""), (None, None), (1048576, "tra"), ("1", " tra ")]
    odd = [("257", "tra"), (-4, "val"), (64.0, "tes"), ("unknown", "train"), ("8", "test"), ("4", "TRA")]
    for i, (distance, split) in enumerate(usual + odd):
        record = {"gridimage_id": 10 + i, "embeddings": _vector(np.ones(8))}
        if distance is not None:
            record["distance"] = distance
        if split is not None:
            record["split"] = split
        records.append(record)
    _write(path, records)
    rows, report = read_types(path, dim=8)
    assert len(rows) == 1 + len(usual) + len(odd) and report.n_skipped == 0  # every line still kept
    distance_lines = [f"line {2 + len(usual) + i}" for i in range(4)]  # "257", -4, 64.0, "unknown"
    split_lines = [f"line {2 + len(usual) + i}" for i in (3, 4, 5)]  # "train", "test", "TRA"
    assert dict(report.unusual) == {"distance not in the published table (read as Unknown)": 4,
                                    "split not tra/val/tes": 3}
    shown = report.unusual_examples["distance not in the published table (read as Unknown)"]
    assert [e.split(":")[0] for e in shown] == distance_lines
    assert [e.split(": ", 1)[1] for e in shown] == ["gridimage_id 16: '257'", "gridimage_id 17: '-4'",
                                                     "gridimage_id 18: '64.0'", "gridimage_id 19: 'unknown'"]
    assert [e.split(":")[0] for e in report.unusual_examples["split not tra/val/tes"]] == split_lines
    assert "'train'" in report.unusual_examples["split not tra/val/tes"][0]
    summary = report.summary()
    assert "no line skipped; kept with unusual values: 4 distance not in the published table" in summary
    assert all(line in summary for line in distance_lines + split_lines)
    saved = json.loads(json.dumps(report.to_dict()))
    assert saved["unusual"] == dict(report.unusual) and saved["unusual_examples"] == report.unusual_examples


def test_usual_values_are_not_flagged(generated):
    _, report = read_types(generated.path)  # generated distances and splits are all published ones
    assert not report.unusual and "unusual" not in report.summary()
