"""`geocontext check`: exit 2 for what a run cannot use; counted warnings for what reads fine but looks
wrong (test ids also in train, metadata for photos in neither split, photos without metadata, tag
columns with no positive photo, undecodable bytes)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import shared_file

from geocontext.cli import main
from geocontext.competition import ID
from geocontext.data.readers import read_ids


def own_data(demo_data: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for item in demo_data.iterdir():
        (data / item.name).symlink_to(item) if item.is_dir() else shutil.copy(item, data / item.name)
    return data


def warnings_of(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("warning: ")]


def test_what_looks_wrong_is_warned_and_counted(demo_data, tmp_path, capsys):
    data = own_data(demo_data, tmp_path)
    train = pd.read_csv(data / "train.csv")
    test = pd.read_csv(data / "test.csv")
    train["tag950"] = 0  # a tag no photo has
    train.to_csv(data / "train.csv", index=False)
    pd.concat([test, train[[ID]].head(20)]).to_csv(data / "test.csv", index=False)  # 20 training photos again
    lines = (data / "metadata.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    dropped = set(train[ID].head(30).astype(str))
    kept = [line for line in lines if line.split(",")[0] not in dropped]
    strangers = [f"{9_000_000 + i},Somewhere else,SX1234,2020-01-01\n" for i in range(7)]
    (data / "metadata.csv").write_text("".join(kept + strangers), encoding="utf-8")
    capsys.readouterr()
    assert main(["check", "--data", str(data), "--accept-missing"]) == 0
    out = capsys.readouterr().out
    said = warnings_of(out)
    assert any(re.search(r"\d tag column\(s\) have no positive photo in train\.csv: .*tag950", w) for w in said), said
    assert any(re.search(r"20 test id\(s\) are also training photos \(e\.g\. \d+", w) for w in said), said
    assert any("30 of 240 (12.50%) train photos have no metadata row" in w for w in said), said
    assert any("7 metadata row(s) describe photos in neither train nor test" in w for w in said), said
    assert f"check: ok, a run would start; {len(said)} warning(s)" in out


def test_the_real_labels_beside_another_competitions_files(demo_data, tmp_path, capsys):
    """The issue's case: the real train.csv.zip beside another competition's test.csv and metadata."""
    real = shared_file("kaggle-competition", "train.csv.zip")
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv.zip").symlink_to(real)
    shutil.copy(real.parent / "tags-top.csv", data / "tags-top.csv")
    shutil.copy(demo_data / "metadata.csv", data / "metadata.csv")
    ids = pd.read_csv(demo_data / "test.csv")[ID]
    some_real = pd.Series(read_ids(real)[:20], name=ID)
    pd.concat([ids, some_real]).to_frame().to_csv(data / "test.csv", index=False)
    capsys.readouterr()
    assert main(["check", "--data", str(data)]) == 0
    said = warnings_of(capsys.readouterr().out)
    assert any(re.search(r"609\d{3} of 609\d{3} \(100\.00%\) train photos have no metadata row", w) for w in said), said
    both = [int(m.group(1)) for w in said for m in [re.search(r"(\d+) test id\(s\) are also training photos", w)] if m]
    assert both and both[0] >= 20, said  # the 20 put there (and any of the other file's ids that happen to be)
    assert any(re.search(r"\d+ metadata row\(s\) describe photos in neither train nor test", w) for w in said), said


@pytest.mark.parametrize("name", ["train.csv", "test.csv"])
def test_a_header_only_file_stops_check_and_run_before_anything_is_written(demo_data, demo_features, tmp_path, capsys,
                                                                         name):
    data = own_data(demo_data, tmp_path)
    (data / name).write_text((data / name).read_text().splitlines()[0] + "\n")
    capsys.readouterr()
    assert main(["check", "--data", str(data), "--accept-missing"]) == 2
    assert f"{name}: no photos, only the header line" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["run", "--data", str(data), "--features", str(demo_features), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {data / name}: no photos") and err.count("\n") == 1
    assert not (out / "split.npz").exists()


@pytest.mark.parametrize("world", ["interleaved", "far", "shuffled"])
def test_check_judges_the_test_against_the_labelled_ids(world, tmp_path, capsys):
    """Issue 30: upload runs of 6 photos share a set. Test photos among the labelled ones can use that;
    test photos 10,000,000 ids away cannot, however strongly the labelled ids agree among themselves;
    shuffled ids say nothing. Gaps print as plain numbers."""
    import numpy as np

    from upload_runs import uploads

    data, _, _ = uploads(tmp_path / "w", shuffled=world == "shuffled")
    if world == "far":
        test = pd.read_csv(data / "test.csv")
        test[ID] += 10_000_000
        test.to_csv(data / "test.csv", index=False)
        meta = pd.read_csv(data / "metadata.csv")
        meta[ID] = np.where(meta[ID].isin(test[ID] - 10_000_000), meta[ID] + 10_000_000, meta[ID])
        meta.to_csv(data / "metadata.csv", index=False)
    assert main(["check", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("test photos are a median"))
    assert "e+" not in line and re.search(r"a median [\d,]+ ids", line)
    verdict = out.splitlines()[out.splitlines().index(line) + 1]
    if world == "interleaved":
        assert "can use it" in verdict
    elif world == "far":
        assert "the test is far from the labelled ids (100% beyond 100 ids)" in verdict and "1.0x random" in verdict
        assert "10,00" in line or "9,99" in line
    else:
        assert verdict.startswith("ids say nothing here")
