"""`make push` and `make submit` drive the real `kaggle` CLI; here it talks to a loopback stand-in.

No request leaves the machine: the CLI is pointed at the stand-in (see kaggle_standin.py), and a
guard loaded into every Python process refuses and logs any non-loopback connection or lookup.
Credentials are fake, made by the test in a temporary KAGGLE_CONFIG_DIR."""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from kaggle_standin import KaggleStandIn, network_guard_env

from geocontext.cli import main
from geocontext.competition import COMPETITION
from geocontext.data.readers import read_labels, read_test_ids
from geocontext.data.submission import write_submission
from geocontext.embedding.features import load_features
from geocontext.kaggle import command as kaggle_cli
from geocontext.kaggle.dataset import prepare
from geocontext.kaggle.render import render_all

USER, KEY = "fake-user", "fake-key-0123456789abcdef"
pytestmark = pytest.mark.skipif(subprocess.run(["make", "--version"], capture_output=True).returncode != 0,
                                reason="make is not installed")


@pytest.fixture
def kaggle(tmp_path):
    """The stand-in, and a clean environment for `make` whose Kaggle CLI can reach only it."""
    config = tmp_path / "kaggle-config"
    config.mkdir()
    (config / "kaggle.json").write_text(json.dumps({"username": USER, "key": KEY}))
    (config / "kaggle.json").chmod(0o600)
    guard = network_guard_env(tmp_path / "guard")
    with KaggleStandIn() as api:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("KAGGLE_", "GEOCONTEXT_", "PYTHON")) and "proxy" not in k.lower()}
        env.update(api.env(), NETWORK_GUARD_LOG=guard["NETWORK_GUARD_LOG"], HOME=str(tmp_path / "home"),
                   KAGGLE_CONFIG_DIR=str(config), GEOCONTEXT_PROGRESS="0",
                   VERBOSE="1")  # would make the CLI print its Authorization header; the kit must drop it
        api.make_vars = [f"PY={sys.executable}", f"PYTHONPATH={guard['PYTHONPATH']}{os.pathsep}{REPO / 'src'}"]
        api.make_env = env
        yield api
    assert Path(guard["NETWORK_GUARD_LOG"]).read_text() == "", "a request tried to leave the machine"


def make(api, *args: str, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["make", "-s", *args, *api.make_vars], cwd=REPO, env={**api.make_env, **env},
                            capture_output=True, text=True, timeout=120)
    secret = base64.b64encode(f"{USER}:{KEY}".encode()).decode()
    assert KEY not in result.stdout + result.stderr and secret not in result.stdout + result.stderr
    return result


def test_make_push_sends_the_rendered_kernel(kaggle, tmp_path):
    out = tmp_path / "build"
    result = make(kaggle, "push", "KERNEL=train", f"KERNELS_OUT={out}", KAGGLE_USERNAME=USER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Kernel version 1 successfully pushed" in result.stdout
    assert f"kaggle kernels output {USER}/geocontext-train" in result.stdout

    (call,) = kaggle.to("SaveKernel")
    sent = call.json
    assert sent["slug"] == f"{USER}/geocontext-train" and sent["newTitle"] == "geocontext train"
    assert sent["text"] == (out / "train" / "train.py").read_text()  # the rendered script, vendored core and all
    fresh = tmp_path / "fresh"
    render_all(REPO / "kernels", fresh, USER, names=["train"])
    assert sent["text"] == (fresh / "train" / "train.py").read_text()
    assert "_CORE_SHA256" in sent["text"] and "'geocontext/pipeline/run.py'" in sent["text"]
    assert (sent["language"], sent["kernelType"]) == ("python", "script")
    assert (sent["isPrivate"], sent["enableGpu"], sent["enableInternet"]) == (True, False, False)
    assert sent["competitionDataSources"] == [COMPETITION]
    assert sent["kernelDataSources"] == [f"{USER}/geocontext-embed"]
    assert sent.get("datasetDataSources", []) == []  # kagglesdk leaves empty lists out
    assert call.headers["Authorization"] == "Basic " + base64.b64encode(f"{USER}:{KEY}".encode()).decode()
    assert [c.path for c in kaggle.calls] == ["/api/v1/kernels.KernelsApiService/SaveKernel"]
    assert KEY not in sent["text"]


def test_make_submit_validates_then_uploads_the_file(kaggle, demo_data, tmp_path):
    path = tmp_path / "first try.csv.zip"
    ids, columns = read_test_ids(demo_data), read_labels(demo_data / "train.csv").columns
    tags = np.random.default_rng(0).uniform(size=(len(ids), len(columns))) < 0.1
    write_submission(path, ids, tags, columns, ids)
    message = 'baseline "mlp"; $HOME stays literal'
    result = make(kaggle, "submit", FILE=str(path), MSG=message, DATA=str(demo_data))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"valid, {len(ids)} rows" in result.stdout and f"Successfully submitted to {COMPETITION}" in result.stdout

    (start,) = kaggle.to("StartSubmissionUpload")
    assert start.json["competitionName"] == COMPETITION
    assert (start.json["fileName"], int(start.json["contentLength"])) == (path.name, path.stat().st_size)
    (create,) = kaggle.to("CreateSubmission")
    token = create.json["blobFileTokens"]
    assert kaggle.uploads == {token: path.read_bytes()}  # the bytes Kaggle would score
    assert create.json["competitionName"] == COMPETITION
    assert create.json["submissionDescription"] == message


def test_make_submit_refuses_an_invalid_file_before_any_request(kaggle, demo_data, tmp_path):
    path = tmp_path / "short.csv.zip"
    ids, columns = read_test_ids(demo_data), read_labels(demo_data / "train.csv").columns
    write_submission(path, ids[1:], np.zeros((len(ids) - 1, len(columns))), columns, ids[1:])
    result = make(kaggle, "submit", FILE=str(path), MSG="x", DATA=str(demo_data))
    assert result.returncode != 0
    assert f"not submitted: {path}: 1 test id(s) missing (e.g. [{ids[0]}])" in result.stderr
    assert kaggle.calls == []
    result = make(kaggle, "submit", FILE=str(path))
    assert result.returncode != 0 and "usage: make submit FILE=" in result.stdout


def test_push_needs_a_username_and_credentials(kaggle, tmp_path):
    result = make(kaggle, "push", "KERNEL=train", f"KERNELS_OUT={tmp_path}")
    assert result.returncode != 0 and "set KAGGLE_USERNAME" in result.stderr
    result = make(kaggle, "push", "KERNEL=train", f"KERNELS_OUT={tmp_path}", KAGGLE_USERNAME=USER,
                  KAGGLE_CONFIG_DIR=str(tmp_path / "empty"))
    assert result.returncode != 0 and "no Kaggle credentials found" in result.stderr
    assert "https://www.kaggle.com/settings/api" in result.stderr
    assert kaggle.calls == [] and not (tmp_path / "train").exists()


# ---- credentials and the CLI, without a server ----

def test_the_pinned_kaggle_cli_starts(tmp_path):
    """kaggle 2.2.4 imports `six` without declaring it; requirements.txt pins it."""
    env = {**os.environ, "HOME": str(tmp_path), "KAGGLE_CONFIG_DIR": str(tmp_path / "kaggle")}
    result = subprocess.run(kaggle_cli.cli_command() + ["--version"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "Kaggle CLI 2.2.4" in result.stdout, result.stderr[-2000:]


def test_credential_source_names_where_never_what(tmp_path):
    home = tmp_path / "home"
    assert kaggle_cli.credential_source({"HOME": str(home)}) is None
    assert kaggle_cli.credential_source({"HOME": str(home), "KAGGLE_API_TOKEN": "t"}) == "$KAGGLE_API_TOKEN"
    assert kaggle_cli.credential_source({"HOME": str(home), "KAGGLE_USERNAME": "u"}) is None
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "access_token").write_text("secret-token")
    assert kaggle_cli.credential_source({"HOME": str(home)}) == str(home / ".kaggle" / "access_token")
    config = tmp_path / "config"
    config.mkdir()
    (config / "kaggle.json").write_text("{}")
    assert kaggle_cli.credential_source({"HOME": str(tmp_path), "KAGGLE_CONFIG_DIR": str(config)}) \
        == str(config / "kaggle.json")


def test_push_refuses_a_kernel_whose_verb_this_checkout_lacks(tmp_path, monkeypatch, capsys):
    kernels = tmp_path / "kernels"
    shutil.copytree(REPO / "kernels" / "train", kernels / "later")
    entry = kernels / "later" / "train.py"
    entry.write_text(entry.read_text().replace('VERB = "run"', 'VERB = "not-yet"'))
    monkeypatch.setenv("KAGGLE_API_TOKEN", "fake")  # credentials present: the verb is what stops it
    assert main(["kernels", "push", "later", "--kernels", str(kernels), "--out", str(tmp_path / "out"),
                 "--username", USER]) == 2
    assert "drives `geocontext not-yet`, which this checkout does not have yet" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_cli_is_explained(monkeypatch):
    monkeypatch.setattr(kaggle_cli.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(kaggle_cli.shutil, "which", lambda name: None)
    with pytest.raises(kaggle_cli.KaggleSetupError, match="Kaggle CLI is not installed: run `make setup`"):
        kaggle_cli.cli_command()


def test_submit_finds_test_ids_and_explains_when_it_cannot(demo_data, tmp_path, monkeypatch, capsys):
    path = tmp_path / "x.csv.zip"
    ids, columns = read_test_ids(demo_data), read_labels(demo_data / "train.csv").columns
    write_submission(path, ids, np.ones((len(ids), len(columns))), columns, ids)
    monkeypatch.chdir(tmp_path)  # neither data/ nor ../shared/data/kaggle-competition here
    assert main(["submit", "--file", str(path), "--message", "m", "--dry-run"]) == 2
    assert "no test.csv found in data or ../shared/data/kaggle-competition" in capsys.readouterr().err
    (tmp_path / "data").symlink_to(demo_data)
    assert main(["submit", "--file", str(path), "--message", "m", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "test ids from data" in out and f"would run `kaggle competitions submit -c {COMPETITION} -f" in out
    assert main(["submit", "--file", str(path), "--message", " ", "--dry-run"]) == 2
    assert "needs a message" in capsys.readouterr().err


# ---- the shared dataset ----

def test_dataset_prepare_lays_out_features_with_metadata(demo_features, tmp_path, capsys):
    out = tmp_path / "dataset"
    assert main(["dataset", "prepare", "--features", str(demo_features), "--out", str(out), "--username", USER,
                 "--metadata", str(REPO / "dataset-metadata.json")]) == 0
    assert "kaggle datasets create -p" in capsys.readouterr().out
    meta = json.loads((out / "dataset-metadata.json").read_text())
    assert meta["id"] == f"{USER}/geocontext-features" and meta["licenses"] == [{"name": "other"}]
    assert 6 <= len(meta["title"]) <= 50 and 20 <= len(meta["subtitle"]) <= 80  # what `kaggle datasets create` checks
    for split in ("train", "test"):
        assert np.array_equal(load_features(out, split).ids, load_features(demo_features, split).ids)
        for f in (demo_features / split).iterdir():
            assert (out / split / f.name).read_bytes() == f.read_bytes()
    prepare(demo_features, out, USER, REPO / "dataset-metadata.json")  # preparing again replaces its own folder


def test_dataset_prepare_carries_every_block(demo_features, tmp_path, capsys):
    from geocontext.embedding.blocks import write_blocks

    features = tmp_path / "features"
    shutil.copytree(demo_features, features)
    for split in ("train", "test"):
        ids = load_features(features, split).ids
        write_blocks(features, split, ids, {"title@bge-small": (np.ones((len(ids), 4), np.float32), {"kind": "title"})}, {})
    (features / "test" / ".title@x.npy.tmp-1").write_bytes(b"half")  # a killed write's leftover
    out = tmp_path / "dataset"
    assert main(["dataset", "prepare", "--features", str(features), "--out", str(out), "--username", USER,
                 "--metadata", str(REPO / "dataset-metadata.json")]) == 0
    assert "blocks image, title, title@bge-small" in capsys.readouterr().out
    assert list(load_features(out, "test").blocks) == ["image", "title", "title@bge-small"]
    assert not (out / "test" / ".title@x.npy.tmp-1").exists()


def test_dataset_prepare_refuses_bad_features_and_foreign_folders(demo_features, tmp_path):
    broken = tmp_path / "broken"
    (broken / "train").mkdir(parents=True)
    (broken / "train" / "meta.json").write_text("{}")
    with pytest.raises(Exception, match="ids.npy: missing"):
        prepare(broken, tmp_path / "out", USER, REPO / "dataset-metadata.json")
    assert not (tmp_path / "out").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(Exception, match="not a prepared dataset folder"):
        prepare(demo_features, foreign, USER, REPO / "dataset-metadata.json")
    assert (foreign / "notes.txt").read_text() == "keep me"
