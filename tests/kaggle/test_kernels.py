"""Kaggle kernels: the committed kernels render deterministically, and a rendered kernel runs on its own.

The end-to-end tests copy a rendered kernel (train, types) into an empty folder and run it with a Python
that cannot see the repository's src/ (isolated mode, and every src path holding a geocontext
package removed from sys.path), on demo data laid out as Kaggle mounts it under /kaggle/input."""
from __future__ import annotations

import ast
import gzip
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO

from geocontext import cli
from geocontext.cli import main, verbs
from geocontext.data.readers import read_labels, read_test_ids
from geocontext.data.submission import read_submission, validate
from geocontext.kaggle import runtime
from geocontext.kaggle.render import (
    PLACEHOLDER,
    RenderError,
    core_files,
    discover,
    load_kernel,
    package_dir,
    render_all,
    string_literal,
)
from geocontext.synthetic.types_data import BAD_LINES, write_dataset
from geocontext.typetags.checkpoint import REQUIRED, load_checkpoint
from geocontext.typetags.classifier import type_probabilities as predict_proba
from geocontext.typetags.distance import DIST_MAP, distance_index
from geocontext.typetags.labels import CLASSES
from geocontext.typetags.reader import read_types

KERNELS = REPO / "kernels"
# Runs a script with no geocontext importable but the one it vendors: src paths holding the
# package (the editable install's, PYTHONPATH's) are dropped before the script starts.
RUNNER = """\
import runpy, sys
from pathlib import Path
sys.path[:] = [p for p in sys.path if "site-packages" in p or not (Path(p or ".") / "geocontext").exists()]
script, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def isolated_env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEOCONTEXT_", "KAGGLE_", "PYTHON"))}
    env.update(GEOCONTEXT_PROGRESS="0", GEOCONTEXT_VENDOR_DIR=str(tmp_path / "vendor"), **extra)
    return env


def run_isolated(script: Path, args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", "-c", RUNNER, script.name, *args], cwd=script.parent, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    render_all(KERNELS, out, "fake-user")
    return out


@pytest.fixture(scope="module")
def kaggle_input(demo_data, demo_features, tmp_path_factory) -> Path:
    """/kaggle/input as a kernel sees it: the competition (newer nested mount) and the embed kernel's output."""
    root = tmp_path_factory.mktemp("kaggle") / "input"
    shutil.copytree(demo_data, root / "competitions" / runtime.COMPETITION)
    shutil.copytree(demo_features, root / "geocontext-embed" / "features")
    return root


def write_decoy_jsonl(path: Path) -> Path:
    """JSON lines that are not a types dataset: the labeller's own output, say."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"image_id": 1, "label": "Geograph", "score": 0.9, "low_confidence": false}\n')
    return path


@pytest.fixture(scope="module")
def types_input(tmp_path_factory):
    """/kaggle/input for the types kernel: the user's types dataset as published, gzipped (an upload with a
    folder in it), beside JSON lines of another kind, and the dataset itself under a photo folder, which is
    never searched."""
    root = tmp_path_factory.mktemp("kaggle-types") / "input"
    data = write_dataset(root / "geograph-types" / "export" / "types_dataset_1.jsonl.gz", n=400, seed=1)
    write_decoy_jsonl(root / "geograph-types" / "labels.jsonl")
    (root / "geograph-types" / "test_images").mkdir()
    shutil.copy(data.path, root / "geograph-types" / "test_images" / "types.jsonl.gz")
    return root, data


# ---- the committed kernels ----

def test_committed_kernels_have_deliberate_metadata():
    kernels = {k.name: k for k in discover(KERNELS)}
    assert {"embed", "train", "types"} <= set(kernels)
    for k in kernels.values():  # load_kernel insists on explicit is_private / enable_gpu / enable_internet
        assert k.metadata["is_private"] is True
        assert k.verb is not None
    embed, train, types = kernels["embed"], kernels["train"], kernels["types"]
    assert embed.metadata["competition_sources"] == train.metadata["competition_sources"] == [runtime.COMPETITION]
    assert embed.metadata["enable_gpu"] is True and embed.metadata["enable_internet"] is True
    assert train.metadata["enable_gpu"] is False and train.metadata["enable_internet"] is False
    assert train.metadata["kernel_sources"] == [embed.metadata["id"]]  # the embed kernel's output feeds training
    assert train.verb == "run" and embed.verb == "embed"
    # types: the user's own Geograph export as a dataset, nothing of the competition, CPU, offline
    assert types.verb == "types" and types.entry.name != "types.py"  # a script named types.py shadows the stdlib's
    assert types.metadata["dataset_sources"] == [f"{PLACEHOLDER}/geograph-types"]
    assert types.metadata["competition_sources"] == types.metadata["kernel_sources"] == []
    assert types.metadata["enable_gpu"] is False and types.metadata["enable_internet"] is False


def test_rendering_is_deterministic_and_names_its_owner(rendered, tmp_path):
    again = tmp_path / "again"
    render_all(KERNELS, again, "fake-user")
    files = sorted(p.relative_to(rendered) for p in rendered.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert len(files) == 2 * len(discover(KERNELS))
    for rel in files:
        assert (rendered / rel).read_bytes() == (again / rel).read_bytes(), rel
        assert str(REPO) not in (rendered / rel).read_text()  # nothing of this machine goes to Kaggle
        if rel.name == "kernel-metadata.json":
            assert PLACEHOLDER not in (rendered / rel).read_text()
    meta = json.loads((rendered / "train" / "kernel-metadata.json").read_text())
    assert meta["id"] == "fake-user/geocontext-train"
    assert meta["kernel_sources"] == ["fake-user/geocontext-embed"]
    assert meta["code_file"] == "train.py"


def test_rendered_script_carries_the_whole_core(rendered):
    script = (rendered / "train" / "train.py").read_text()
    tree = ast.parse(script)
    core = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "_CORE")
    vendored = ast.literal_eval(core)
    assert list(vendored.items()) == core_files(package_dir())  # every file, byte for byte, in order
    assert "geocontext/kaggle/runtime.py" in vendored and "geocontext/pipeline/run.py" in vendored
    assert not [rel for rel in vendored if rel.startswith("geocontext/bench/")]  # benchmarks stay in the checkout
    assert ast.get_docstring(tree).startswith('Kaggle kernel "geocontext train"')  # --help still reads it
    assert script.startswith("#!/usr/bin/env python3\n")


def test_without_a_username_the_placeholder_stays(tmp_path):
    render_all(KERNELS, tmp_path, None, names=["train"])
    assert json.loads((tmp_path / "train" / "kernel-metadata.json").read_text())["id"] == "{username}/geocontext-train"
    assert not (tmp_path / "embed").exists()


@pytest.mark.parametrize("text", ["plain\n", "a '''triple''' quote", "ends with a quote'", "back\\slash \\n \\'",
                                  '"""doc"""', "unicode: café — ✓", "", "'", "\\"])
def test_string_literal_round_trips(text):
    assert ast.literal_eval(string_literal(text)) == text


def test_bad_kernel_folders_are_refused_with_the_reason(tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(KERNELS / "train", folder)
    meta = json.loads((folder / "kernel-metadata.json").read_text())

    def refused(change: dict, match: str):
        (folder / "kernel-metadata.json").write_text(json.dumps({**meta, **change}))
        with pytest.raises(RenderError, match=match):
            load_kernel(folder)

    refused({"enable_internet": None}, "enable_internet")  # every such choice must be stated
    refused({"id": "someone/geocontext-train"}, "id must be")
    refused({"title": "geocontext training"}, "slug")
    refused({"code_file": "missing.py"}, "code_file")
    refused({"kernel_type": "notebook"}, "kernel_type")
    (folder / "kernel-metadata.json").write_text("{not json")
    with pytest.raises(RenderError, match="not valid JSON"):
        load_kernel(folder)


def test_render_verb_writes_build_kernels(tmp_path, capsys):
    assert main(["kernels", "render", "--kernels", str(KERNELS), "--out", str(tmp_path), "--username", "x-y"]) == 0
    assert "rendered" in capsys.readouterr().out
    assert json.loads((tmp_path / "embed" / "kernel-metadata.json").read_text())["id"] == "x-y/geocontext-embed"
    assert main(["kernels", "render", "nope", "--kernels", str(KERNELS), "--out", str(tmp_path)]) == 2
    assert "no kernel named nope" in capsys.readouterr().err
    assert main(["kernels", "render", "--kernels", str(KERNELS), "--out", str(tmp_path), "--username", "a/b"]) == 2


# ---- a rendered kernel on its own ----

def test_rendered_train_kernel_runs_alone_on_kaggle_layout(rendered, kaggle_input, demo_data, tmp_path):
    kernel_dir = tmp_path / "kernel"  # an empty folder: the kernel and its metadata, nothing else
    shutil.copytree(rendered / "train", kernel_dir)
    working = tmp_path / "working"
    env = isolated_env(tmp_path, GEOCONTEXT_INPUT=str(kaggle_input), GEOCONTEXT_WORKING=str(working))
    result = run_isolated(kernel_dir / "train.py", [], env)
    assert result.returncode == 0, result.stdout + result.stderr
    vendored = next((tmp_path / "vendor").glob("geocontext-core-*"))
    assert f"from {vendored / 'geocontext'}\n" in result.stdout  # the vendored copy ran, not the repository's
    assert f"data: {kaggle_input / 'competitions' / runtime.COMPETITION}\n" in result.stdout
    assert f"features: {kaggle_input / 'geocontext-embed' / 'features'}\n" in result.stdout
    assert sorted(p.relative_to(vendored).as_posix() for p in vendored.rglob("*.py") if "__pycache__" not in p.parts) \
        == [rel for rel, _ in core_files(package_dir())]

    labels = read_labels(demo_data / "train.csv")
    test_ids = read_test_ids(demo_data)
    for path in (working / "submission.csv.zip", working / "run" / "submission.csv.zip"):
        validate(read_submission(path), test_ids, labels.columns, source=str(path))
    report = json.loads((working / "run" / "report.json").read_text())
    assert report["rows"]["test"] == len(test_ids)
    assert sorted(os.listdir(kernel_dir)) == ["kernel-metadata.json", "train.py"]  # outputs go to working only


def test_rendered_train_kernel_runs_locally_against_a_data_folder(rendered, demo_data, demo_features, tmp_path):
    """No /kaggle anywhere: the same script with --data/--features, arguments it does not know go to `run`."""
    script = shutil.copy(rendered / "train" / "train.py", tmp_path / "train.py")
    env = isolated_env(tmp_path)
    result = run_isolated(Path(script), ["--data", str(demo_data), "--features", str(demo_features),
                                         "--working", str(tmp_path / "out"), "--dry-run", "--seed", "7"], env)
    assert result.returncode == 0, result.stderr
    assert (f"$ geocontext run --data {demo_data} --features {demo_features} --out {tmp_path / 'out' / 'run'}"
            f" --seed 7\n") in result.stdout
    assert not (tmp_path / "out").exists()
    result = run_isolated(Path(script), ["--data", str(demo_data), "--features", str(demo_features), "--work", "x",
                                         "--dry-run"], env)
    assert result.returncode == 0 and "--out work/kernels/train/run --work x\n" in result.stdout  # not --working


def test_rendered_embed_kernel_finds_its_data(rendered, kaggle_input, tmp_path):
    """The embed kernel's paths and command; it runs only where the core has `embed` (said clearly otherwise)."""
    shutil.copytree(rendered / "embed", tmp_path / "kernel")
    env = isolated_env(tmp_path, GEOCONTEXT_INPUT=str(kaggle_input), GEOCONTEXT_WORKING=str(tmp_path / "w"))
    result = run_isolated(tmp_path / "kernel" / "embed.py", ["--dry-run", "--batch-size", "64"], env)
    data = kaggle_input / "competitions" / runtime.COMPETITION
    assert f"$ geocontext embed --data {data} --out {tmp_path / 'w' / 'features'} --batch-size 64\n" in result.stdout
    if "embed" in verbs():
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 2 and "no `embed` verb" in result.stderr
    # Several blocks: one more pass per extra title encoder, titles only, into the same FEATURES folder.
    result = run_isolated(tmp_path / "kernel" / "embed.py", ["--dry-run", "--add-title-encoder",
                                                             "sentence-transformers:/m/bge"], env)
    assert (f"$ geocontext embed --data {data} --out {tmp_path / 'w' / 'features'} --blocks title --title-encoder"
            " sentence-transformers:/m/bge\n") in result.stdout


def test_rendered_types_kernel_trains_and_tags_alone_on_kaggle_layout(rendered, types_input, tmp_path):
    root, data = types_input
    kernel_dir = tmp_path / "kernel"
    shutil.copytree(rendered / "types", kernel_dir)
    working = tmp_path / "working"
    config = tmp_path / "types.json"  # few, larger batches: quick on a busy machine
    config.write_text(json.dumps({"min_steps_per_epoch": 4, "lr": 3e-3}))
    env = isolated_env(tmp_path, GEOCONTEXT_INPUT=str(root), GEOCONTEXT_WORKING=str(working))
    result = run_isolated(kernel_dir / "train_types.py",
                          ["--predict", "--epochs", "4", "--tune-trials", "10", "--config", str(config)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    vendored = next((tmp_path / "vendor").glob("geocontext-core-*"))
    assert f"from {vendored / 'geocontext'}\n" in result.stdout  # the vendored copy ran, not the repository's
    assert f"types: {data.path}\n" in result.stdout
    run = working / "run"
    assert (f"$ geocontext types train --data {data.path} --out {run} --epochs 4 --tune-trials 10 --config {config}\n"
            in result.stdout)

    ckpt = torch.load(run / "model.pth", map_location="cpu", weights_only=True)  # the published schema, plain data
    assert set(REQUIRED) <= set(ckpt)
    assert ckpt["classes"] == list(CLASSES) and ckpt["dist_map"] == DIST_MAP
    assert (ckpt["clip_dim"], ckpt["dist_embed_dim"]) == (512, 16)
    assert ckpt["model_state_dict"]["dist_emb.weight"].shape == (len(DIST_MAP), 16)
    assert ckpt["model_state_dict"]["fc.3.weight"].shape == (len(CLASSES), 256)
    report = json.loads((run / "report.json").read_text())
    assert report["read"]["rows"] == data.photos and sum(report["read"]["skipped"].values()) == len(BAD_LINES)
    assert report["config"]["epochs"] == 4 and report["config"]["min_steps_per_epoch"] == 4  # options reached train
    assert report["tes"]["rows"] > 0 and 0 <= report["tes"]["macro_f1"] <= 1 and ckpt["epoch"] == report["best_epoch"]
    assert (run / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # --predict: the labeller's lines for every usable photo, scored by the checkpoint the kernel wrote
    lines = [json.loads(line) for line in (working / "predictions.jsonl").read_text().splitlines()]
    rows, _ = read_types(data.path)
    assert {r["image_id"] for r in lines} == set(rows.ids.tolist())
    model, _ = load_checkpoint(run / "model.pth")
    probs = dict(zip(rows.ids.tolist(), predict_proba(model, rows.embeddings, distance_index(rows.distance))))
    assert all(r["score"] == pytest.approx(float(probs[r["image_id"]][CLASSES.index(r["label"])]), abs=1e-5)
               and (r["low_confidence"] or r["score"] >= 0.2) for r in lines)
    assert sorted(os.listdir(kernel_dir)) == ["kernel-metadata.json", "train_types.py"]  # outputs go to working only


def test_rendered_types_kernel_runs_locally_on_a_types_file(rendered, types_input, tmp_path):
    """No /kaggle anywhere: --types FILE; --predict FILE and its thresholds; the kernel's own options checked first."""
    _, data = types_input
    script = Path(shutil.copy(rendered / "types" / "train_types.py", tmp_path / "train_types.py"))
    env = isolated_env(tmp_path)
    out = tmp_path / "out"
    other = shutil.copy(data.path, tmp_path / "other.jsonl")  # gzip under a plain name: read as what it is
    result = run_isolated(script, ["--types", str(data.path), "--working", str(out), "--dry-run", "--seed", "3",
                                   "--predict", str(other), "--tuned"], env)
    assert result.returncode == 0, result.stderr
    assert (f"$ geocontext types train --data {data.path} --out {out / 'run'} --seed 3\n"
            f"$ geocontext types predict --model {out / 'run' / 'model.pth'} --data {other}"
            f" --out {out / 'predictions.jsonl'} --tuned\n") in result.stdout
    assert not out.exists()
    result = run_isolated(script, ["--types", str(data.path), "--dry-run", "--predict", "--threshold", "0.3"], env)
    assert result.returncode == 0 and (f"--data {data.path} --out work/kernels/types/predictions.jsonl --threshold 0.3\n"
                                       in result.stdout)
    result = run_isolated(script, ["--types", str(data.path), "--dry-run"], env)  # no --predict: training only
    assert result.returncode == 0 and "types predict" not in result.stdout

    decoy = write_decoy_jsonl(tmp_path / "labels.jsonl")
    result = run_isolated(script, ["--types", str(data.path), "--predict", str(decoy)], env)
    assert result.returncode == 2 and f"{decoy}: not a types dataset file (given by --predict" in result.stderr
    assert "$ geocontext" not in result.stdout  # refused before training
    result = run_isolated(script, ["--types", str(data.path), "--threshold", "0.3"], env)
    assert result.returncode == 2 and "add --predict" in result.stderr


@pytest.mark.parametrize("layout", ["none", "several"])
def test_rendered_types_kernel_says_which_dataset_it_cannot_choose(rendered, types_input, tmp_path, layout):
    _, data = types_input
    root = tmp_path / "input"
    write_decoy_jsonl(root / "geograph-types" / "labels.jsonl")
    copies = {"none": [], "several": [root / "geograph-types" / "a.jsonl", root / "old-export" / "b.jsonl"]}[layout]
    for path in copies:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data.path, path)
    script = Path(shutil.copy(rendered / "types" / "train_types.py", tmp_path / "train_types.py"))
    result = run_isolated(script, [], isolated_env(tmp_path, GEOCONTEXT_INPUT=str(root)))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    if layout == "none":
        assert (f"{root}: no types dataset found (searched 3 levels down for a .jsonl or .jsonl.gz file whose first lines are JSON"
                " objects with gridimage_id and embeddings); attach it to the kernel, or pass --types PATH (or set"
                " GEOCONTEXT_TYPES)") in result.stderr
    else:
        assert (f"{root}: 2 types dataset files found ({copies[0]}, {copies[1]}); choose one with --types PATH"
                " (or GEOCONTEXT_TYPES)") in result.stderr


def test_rendered_kernel_errors_are_messages_not_tracebacks(rendered, tmp_path):
    env = isolated_env(tmp_path, GEOCONTEXT_INPUT=str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    script = Path(shutil.copy(rendered / "train" / "train.py", tmp_path / "train.py"))
    result = run_isolated(script, [], env)
    assert result.returncode == 2
    assert "no competition DATA found" in result.stderr and "Traceback" not in result.stderr


# ---- finding inputs ----

def make_data(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "train.csv.zip").write_bytes(b"")
    (folder / "test.csv").write_text("gridimage_id\n")
    return folder


def make_features(folder: Path) -> Path:
    for split in ("train", "test"):
        (folder / split).mkdir(parents=True)
        (folder / split / "meta.json").write_text("{}")
    return folder


def resolve(root=None, inputs=("data", "features"), **given):
    parser = runtime.argument_parser(None, inputs)
    argv = (["--input", str(root)] if root else []) + [x for k, v in given.items() for x in (f"--{k}", str(v))]
    return runtime.resolve(parser.parse_args(argv), "train")


def make_types(path: Path, first: str = "") -> Path:
    """A types dataset's first lines (what discovery reads), after `first`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(first + '{"gridimage_id": 5, "embeddings": "AAAA", "types": "Geograph", "split": "tra"}\n')
    return path


@pytest.mark.parametrize("mount", [runtime.COMPETITION, f"competitions/{runtime.COMPETITION}"])
def test_inputs_are_found_by_what_they_hold(tmp_path, mount):
    data = make_data(tmp_path / mount)
    features = make_features(tmp_path / "geocontext-embed" / "features")
    make_data(tmp_path / "someone-else" / "test_images" / "decoy")  # photo folders are never searched
    paths = resolve(tmp_path, working=tmp_path / "w")
    assert (paths.data, paths.features, paths.working) == (data, features, tmp_path / "w")


def test_ambiguous_or_missing_inputs_are_errors_that_say_what_to_do(tmp_path, monkeypatch):
    make_data(tmp_path / runtime.COMPETITION)
    make_data(tmp_path / "a-copy")  # two DATA folders: the competition's mount wins
    first = make_features(tmp_path / "f1")
    make_features(tmp_path / "f2")
    with pytest.raises(runtime.KernelError, match=r"2 FEATURES folders found .*--features PATH"):
        resolve(tmp_path)
    assert resolve(tmp_path, features=first).data == tmp_path / runtime.COMPETITION
    monkeypatch.setenv("GEOCONTEXT_FEATURES", str(first))
    assert resolve(tmp_path).features == first
    with pytest.raises(runtime.KernelError, match="not a FEATURES folder"):
        resolve(tmp_path, features=tmp_path / "a-copy")
    monkeypatch.setattr(runtime, "KAGGLE_INPUT", tmp_path / "no-such-mount")
    with pytest.raises(runtime.KernelError, match="no competition DATA folder: pass --data"):
        resolve(None)
    deep = tmp_path / "deep"
    make_data(deep / "a" / "b" / "c" / "d")
    with pytest.raises(runtime.KernelError, match="no competition DATA found"):
        resolve(deep, features=first)


def test_a_types_dataset_is_found_by_its_lines(tmp_path, monkeypatch):
    root = tmp_path / "in"
    make_data(root / runtime.COMPETITION)  # the types kernel takes no DATA: attached or not, it is not asked for
    # three folder levels down (an owner/slug mount with a folder inside), after a blank and a malformed line
    found = make_types(root / "datasets" / "someone" / "geograph-types" / "export.jsonl", first="\n{broken\n")
    write_decoy_jsonl(root / "geograph-types" / "labels.jsonl")  # JSON lines of another kind
    make_types(root / "geograph-types" / "types.json")  # not .jsonl
    make_types(root / "geograph-types" / "train_images" / "x.jsonl")  # photo folders are never searched
    make_types(root / "a" / "b" / "c" / "d" / "deep.jsonl")  # too deep
    (root / "geograph-types" / "folder.jsonl").mkdir()  # a folder, whatever its name
    paths = resolve(root, inputs=("types",))
    assert (paths.types, paths.data, paths.features) == (found, None, None)

    second = make_types(root / "older" / "types.jsonl")
    with pytest.raises(runtime.KernelError, match=r"2 types dataset files found .*choose one with --types PATH"):
        resolve(root, inputs=("types",))
    assert resolve(root, inputs=("types",), types=second).types == second
    monkeypatch.setenv("GEOCONTEXT_TYPES", str(found))
    assert resolve(root, inputs=("types",)).types == found
    for wrong in (root / "geograph-types" / "labels.jsonl", root / "geograph-types" / "types.json", root):
        with pytest.raises(runtime.KernelError, match=r"not a types dataset file \(given by --types or GEOCONTEXT_TYPES;"
                                                      r" expected a \.jsonl or \.jsonl\.gz file whose first lines"):
            resolve(root, inputs=("types",), types=wrong)
    monkeypatch.delenv("GEOCONTEXT_TYPES")
    monkeypatch.setattr(runtime, "KAGGLE_INPUT", tmp_path / "no-such-mount")
    with pytest.raises(runtime.KernelError, match="no types dataset file: pass --types PATH"):
        resolve(None, inputs=("types",))


def test_types_discovery_reads_only_the_first_lines(tmp_path):
    late = tmp_path / "late.jsonl"  # five lines of something else first: not a types dataset, whatever follows
    late.write_text('{"image_id": 1}\n' * 5 + make_types(tmp_path / "x.jsonl").read_text())
    assert not runtime.is_types_dataset(late)
    assert runtime.is_types_dataset(make_types(tmp_path / "ok.jsonl", first='{"image_id": 1}\n' * 4))
    huge = tmp_path / "huge.jsonl"  # one enormous line is not read to its end
    huge.write_bytes(b'{"gridimage_id": 1, "embeddings": "' + b"A" * (3 << 20) + b'"}\n')
    assert not runtime.is_types_dataset(huge)
    (tmp_path / "empty.jsonl").write_text("\n\n")
    assert not runtime.is_types_dataset(tmp_path / "empty.jsonl")


def test_a_gzipped_types_dataset_is_found_by_its_content(tmp_path):
    plain = make_types(tmp_path / "plain.jsonl", first="\n{broken\n")
    packed = gzip.compress(plain.read_bytes())
    for name in ("types_dataset_1.jsonl.gz", "renamed.jsonl", "TYPES.JSONL.GZ"):  # gzip recognised by its bytes
        (tmp_path / name).write_bytes(packed)
        assert runtime.is_types_dataset(tmp_path / name), name
    assert runtime.is_types_dataset(Path(shutil.copy(plain, tmp_path / "unpacked.jsonl.gz")))  # plain, named .gz
    (tmp_path / "other.json.gz").write_bytes(packed)  # not a JSON-lines name: never opened
    assert not runtime.is_types_dataset(tmp_path / "other.json.gz")
    (tmp_path / "decoy.jsonl.gz").write_bytes(gzip.compress(write_decoy_jsonl(tmp_path / "d.jsonl").read_bytes()))
    assert not runtime.is_types_dataset(tmp_path / "decoy.jsonl.gz")
    (tmp_path / "cut.jsonl.gz").write_bytes(packed[:12])  # broken before its first line
    assert not runtime.is_types_dataset(tmp_path / "cut.jsonl.gz")
    with zipfile.ZipFile(tmp_path / "zipped.jsonl", "w") as archive:  # another compression: not read as text
        archive.write(plain, "types.jsonl")
    assert not runtime.is_types_dataset(tmp_path / "zipped.jsonl")
    mount = tmp_path / "input" / "someone" / "geograph-types"  # discovery: the published name, beside a decoy
    write_decoy_jsonl(mount / "labels.jsonl")
    found = Path(shutil.copy(tmp_path / "types_dataset_1.jsonl.gz", mount))
    assert resolve(tmp_path / "input", inputs=("types",)).types == found


def test_working_folder_defaults(tmp_path, monkeypatch):
    make_data(tmp_path / "in" / "x")
    make_features(tmp_path / "in" / "y")
    monkeypatch.setattr(runtime, "KAGGLE_WORKING", tmp_path / "no-such-mount")
    assert resolve(tmp_path / "in").working == Path("work/kernels/train")
    monkeypatch.setattr(runtime, "KAGGLE_WORKING", tmp_path)
    assert resolve(tmp_path / "in").working == tmp_path
    monkeypatch.setenv("GEOCONTEXT_WORKING", str(tmp_path / "env"))
    assert resolve(tmp_path / "in").working == tmp_path / "env"


def test_a_missing_verb_is_reported_before_any_work():
    with pytest.raises(runtime.KernelError, match="no `no-such-verb` verb"):
        cli.check_verb("no-such-verb")
    cli.check_verb("run")
    assert np.isin(["run", "kernels", "submit", "dataset"], verbs()).all()
