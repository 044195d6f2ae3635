"""The embedding stage on real open_clip code paths: generated JPEGs and titles, a tiny open_clip model
registered from a config file (fast), weights from checkpoint files the tests write, ViT-B-32 once."""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, TINY

from geocontext.cli import main
from geocontext.competition import image_path
from geocontext.data.readers import read_ids
from geocontext.embedding.chunks import Plan
from geocontext.embedding.encoder import (
    EncoderConfig,
    WeightsError,
    encode_text_trimmed,
    load_encoder,
)
from geocontext.embedding.features import load_features
from geocontext.embedding.photos import batches_within
from geocontext.embedding.embed import EmbedConfig, embed
from geocontext.embedding.merge import merge
from geocontext.errors import DataError

SRC = REPO / "src"
LONG_TITLE = "Stone wall beside the old drove road above the valley " * 12  # far past 77 tokens


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    """Path of a tiny open_clip model config (`--model` accepts a .json config)."""
    path = tmp_path_factory.mktemp("model") / "gc-tiny.json"
    path.write_text(json.dumps(TINY))
    return str(path)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """20 train + 8 test photos; one test photo missing, one truncated (build_dataset does that), one long
    title, one photo without a metadata row (so no title)."""
    from geocontext.synthetic.demo import build_dataset

    folder = build_dataset(tmp_path_factory.mktemp("embed") / "data", n_train=20, n_test=8, seed=5)
    ids = read_ids(folder / "train.csv")
    lines = (folder / "metadata.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    out = []
    for line in lines:
        if line.startswith(f"{ids[3]},"):
            continue  # no metadata row: the title embeds as ''
        if line.startswith(f"{ids[5]},"):
            row = next(csv.reader([line]))
            row[1] = LONG_TITLE
            line = ",".join(f'"{v}"' for v in row) + "\n"
        out.append(line)
    (folder / "metadata.csv").write_text("".join(out), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def checkpoint(tiny, tmp_path_factory):
    """A tiny model built directly with open_clip, and its weights saved as a checkpoint file."""
    import open_clip

    open_clip.add_model_config(tiny)
    torch.manual_seed(123)
    model, _, preprocess = open_clip.create_model_and_transforms("gc-tiny")
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)  # DDP-style file
    return path, model.eval(), preprocess, open_clip.get_tokenizer("gc-tiny")


def config(tiny, **kw) -> EmbedConfig:
    enc = {k: kw.pop(k) for k in ("pretrained", "random_weights", "precision", "seed") if k in kw}
    enc.setdefault("random_weights", "pretrained" not in enc)
    kw.setdefault("workers", 0)
    kw.setdefault("accept_missing", True)  # 1 of the 8 test photos is missing, by design
    return EmbedConfig(EncoderConfig(model=tiny, **enc), **kw)


def arrays(folder, split):
    fs = load_features(folder, split)
    return fs.ids.copy(), np.array(fs.image), np.array(fs.title), fs.meta


def test_features_match_open_clip_one_photo_at_a_time(data_dir, tiny, checkpoint, tmp_path):
    """Batched, chunked, worker-decoded features equal open_clip's own API applied photo by photo."""
    path, model, preprocess, tokenizer = checkpoint
    from PIL import Image

    cfg = config(tiny, pretrained=str(path), precision="fp32", batch_size=3, chunk_size=7, workers=2)
    embed(data_dir, tmp_path, config=cfg)
    for split in ("train", "test"):
        ids, image, title, meta = arrays(tmp_path, split)
        np.testing.assert_array_equal(ids, read_ids(data_dir / f"{split}.csv"))
        titles = {int(r[0]): r[1] for r in csv.reader(open(data_dir / "metadata.csv", encoding="utf-8")) if r[0].isdigit()}
        with torch.inference_mode():
            for i, gid in enumerate(ids):
                p = image_path(data_dir, split, int(gid))
                try:
                    want = model.encode_image(preprocess(Image.open(p).convert("RGB"))[None])[0].numpy()
                except (OSError, FileNotFoundError):
                    assert np.isnan(image[i]).all()
                else:
                    np.testing.assert_allclose(image[i], want, rtol=1e-4, atol=1e-5)
                want = model.encode_text(tokenizer([titles.get(int(gid), "")]))[0].numpy()
                np.testing.assert_allclose(title[i], want, rtol=1e-4, atol=1e-5)
        assert meta["dim"] == 32 and meta["normalized"] is False and meta["random_weights"] is False
        assert meta["weights"].startswith("file:") and meta["pretrained"] == str(path.resolve())
    _, _, _, meta = arrays(tmp_path, "test")
    assert meta["missing_photo_count"] == 2
    reasons = {m["reason"].split(":")[0] for m in meta["missing_photos"]}
    assert reasons == {"missing file", "unreadable"}
    test_ids = read_ids(data_dir / "test.csv")
    assert {m["gridimage_id"] for m in meta["missing_photos"]} == {int(test_ids[-1]), int(test_ids[-2])}
    _, _, _, meta = arrays(tmp_path, "train")
    assert meta["titles"]["no_metadata_row"] == 1 and meta["titles"]["at_context_limit"] >= 1


def test_trimmed_titles_equal_full_context(checkpoint):
    _, model, _, tokenizer = checkpoint
    tokens = tokenizer(["a church", "", "Loch Ness from the castle at dusk", LONG_TITLE])
    with torch.inference_mode():
        for rows in ([0, 1, 2], [0, 1, 2, 3]):  # without and with a title that fills the context
            np.testing.assert_allclose(encode_text_trimmed(model, tokens[rows]), model.encode_text(tokens[rows]),
                                       rtol=1e-5, atol=1e-6)


class Payload:  # in a checkpoint, anything beyond tensors and containers must not be unpickled
    pass


def test_bad_checkpoints_are_refused_with_the_file_named(tiny, tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(1), "x": Payload()}, evil)
    with pytest.raises(WeightsError, match=r"evil\.pt.*weights_only=True"):
        load_encoder(EncoderConfig(model=tiny, pretrained=str(evil)))
    other = tmp_path / "other.pt"
    torch.save({"visual.conv1.weight": torch.zeros(3)}, other)
    with pytest.raises(WeightsError, match=r"other\.pt: the checkpoint does not fit"):
        load_encoder(EncoderConfig(model=tiny, pretrained=str(other)))
    with pytest.raises(WeightsError, match="file not found"):
        load_encoder(EncoderConfig(model=tiny, pretrained=str(tmp_path / "nope.pt")))
    with pytest.raises(WeightsError, match="not an open_clip tag for ViT-B-32.*laion2b_s34b_b79k"):
        load_encoder(EncoderConfig(model="ViT-B-32", pretrained="nosuchtag"))


def test_safetensors_and_tagged_weights_load(tiny, checkpoint, tmp_path, monkeypatch):
    import open_clip
    from safetensors.torch import save_file

    _, model, _, _ = checkpoint
    x = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        want = model.encode_image(x).numpy()
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    enc = load_encoder(EncoderConfig(model=tiny, pretrained=str(path), precision="fp32"))
    np.testing.assert_allclose(enc.encode_images(x), want, rtol=1e-5, atol=1e-6)
    assert enc.weights.source == "file" and enc.quick_gelu is False

    # A pretrained tag: open_clip's table entry names the file (as after a download) and asks for
    # QuickGELU and its own normalisation, which the encoder must take over.
    real = open_clip.get_pretrained_cfg
    entry = {"file": str(path), "quick_gelu": True, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    monkeypatch.setattr(open_clip, "get_pretrained_cfg", lambda m, t: entry if t == "mytag" else real(m, t))
    enc = load_encoder(EncoderConfig(model=tiny, pretrained="mytag", precision="fp32"))
    assert enc.quick_gelu and enc.identity()["weights"] == "tag:mytag" and "QuickGELU" in enc.name
    assert any(type(m).__name__ == "QuickGELU" for m in enc.model.modules())
    normalize = enc.preprocess.transforms[-1]
    assert tuple(normalize.mean) == (0.5, 0.5, 0.5) and tuple(normalize.std) == (0.25, 0.25, 0.25)


def test_missing_pretrained_weights_say_how_to_provide_them(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as without internet, minus retries
    with pytest.raises(WeightsError) as err:
        load_encoder(EncoderConfig(model="ViT-B-32", pretrained="openai"))
    message = str(err.value)
    assert "cannot download open_clip's 'openai' weights for ViT-B-32" in message
    assert "https://huggingface.co/timm/vit_base_patch32_clip_224.openai" in message
    assert "--pretrained /path/to/open_clip_pytorch_model.bin --quick-gelu" in message
    assert "--random-weights" in message


def test_cli_reports_missing_weights_and_wires_embed_and_merge(data_dir, tiny, tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main(["embed", "--data", str(data_dir), "--out", str(tmp_path / "f")]) == 2
    assert "test: 1 of 8 photos (12.5%) listed in test.csv are in neither" in capsys.readouterr().err  # before loading
    assert main(["embed", "--data", str(data_dir), "--out", str(tmp_path / "f"), "--accept-missing"]) == 2
    assert "--pretrained /path/to/open_clip_pytorch_model.bin" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()  # nothing written before the weights are there
    assert main(["embed", "--data", str(data_dir), "--out", str(tmp_path / "f"), "--shard", "5/4"]) == 2
    base = ["--data", str(data_dir), "--split", "test", "--model", tiny, "--random-weights", "--workers", "0", "--accept-missing",
            "--batch-size", "4", "--chunk-size", "4"]
    for i in (1, 2):
        assert main(["embed", *base, "--out", str(tmp_path / f"s{i}"), "--shard", f"{i}/2"]) == 0
    assert "still to embed by other shards" in capsys.readouterr().out
    assert main(["embed", "merge", "--data", str(data_dir), "--out", str(tmp_path / "m"), str(tmp_path / "s1")]) == 2
    assert "1 of 2 chunks not found" in capsys.readouterr().err
    assert main(["embed", "merge", "--data", str(data_dir), "--out", str(tmp_path / "m"),
                 str(tmp_path / "s1"), str(tmp_path / "s2")]) == 0
    fs = load_features(tmp_path / "m", "test")
    assert len(fs) == 8 and fs.meta["random_weights"] is True and "RANDOM" in fs.meta["encoder"]
    assert fs.missing_images.sum() == 2


def test_shards_merged_equal_a_single_run(data_dir, tiny, tmp_path):
    single = tmp_path / "single"
    embed(data_dir, single, config=config(tiny, batch_size=3, chunk_size=4))
    for i in (1, 2, 3):
        embed(data_dir, tmp_path / f"shard{i}", config=config(tiny, batch_size=3, chunk_size=4, shard=(i, 3)))
        assert not (tmp_path / f"shard{i}" / "train").exists()
    merge(data_dir, tmp_path / "merged", [tmp_path / f"shard{i}" for i in (3, 1, 2)])
    for split in ("train", "test"):
        a, b = arrays(single, split), arrays(tmp_path / "merged", split)
        for x, y in zip(a[:3], b[:3]):
            np.testing.assert_array_equal(x, y)
        assert a[3]["missing_photos"] == b[3]["missing_photos"]
    # Shards writing into one shared folder: the last one to finish merges.
    for i in (2, 1):
        summary = embed(data_dir, tmp_path / "shared", ["test"], config(tiny, batch_size=3, chunk_size=4, shard=(i, 2)))
    assert "features" in summary["test"]
    np.testing.assert_array_equal(arrays(tmp_path / "shared", "test")[1], arrays(single, "test")[1])


def test_chunks_from_another_encoder_or_id_list_are_refused(data_dir, tiny, tmp_path):
    embed(data_dir, tmp_path / "f", ["test"], config(tiny, chunk_size=4, seed=1))
    with pytest.raises(DataError, match="another encoder: weights 'random:1' \\(now 'random:2'\\)"):
        embed(data_dir, tmp_path / "f", ["test"], config(tiny, chunk_size=4, seed=2))
    with pytest.raises(DataError, match="chunk_size 4 \\(now 5\\)"):
        embed(data_dir, tmp_path / "f", ["test"], config(tiny, chunk_size=5, seed=1))
    fewer = tmp_path / "data"
    fewer.mkdir()
    for name in ("metadata.csv", "train.csv"):
        (fewer / name).write_bytes((data_dir / name).read_bytes())
    lines = (data_dir / "test.csv").read_text().splitlines()
    (fewer / "test.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match=r"another id list \(8 ids\) than test.csv in .* \(7 ids\)"):
        merge(fewer, tmp_path / "g", [tmp_path / "f"])
    with pytest.raises(DataError, match=r"test_images: folder not found"):  # DATA without its photos
        embed(fewer, tmp_path / "g", ["test"], config(tiny, chunk_size=4, seed=1))


def test_plan_shards_cover_every_chunk_once():
    plan = Plan("train", np.arange(103), 10)
    assert plan.n_chunks == 11 and plan.bounds(10) == (100, 103)
    for n in (1, 2, 3, 11, 12):
        covered = [k for i in range(1, n + 1) for k in plan.shard(i, n)]
        assert covered == list(range(11))
    assert batches_within([(0, 5), (10, 12)], 2) == [[0, 1], [2, 3], [4], [10, 11]]


KILLABLE = """
import sys, time
import geocontext.embedding.chunks as chunks
write = chunks.ChunkStore.write
def slow_write(self, k, chunk):
    write(self, k, chunk)
    print("wrote", k, flush=True)
    if k == 1:
        time.sleep(60)  # the test kills the process here, after its second chunk
chunks.ChunkStore.write = slow_write
from geocontext.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_resume_after_kill_reproduces_the_uninterrupted_run(data_dir, tiny, tmp_path):
    args = ["embed", "--data", str(data_dir), "--split", "train", "--model", tiny, "--random-weights",
            "--batch-size", "3", "--chunk-size", "4", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "GEOCONTEXT_PROGRESS": "0"}
    cmd = [sys.executable, "-c", KILLABLE, *args, "--out", str(tmp_path / "killed")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    written = 0
    try:
        for line in proc.stdout:
            written += line.startswith("wrote")
            if written == 2:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
    assert written == 2 and proc.returncode == -signal.SIGKILL
    chunk_dir = tmp_path / "killed" / "chunks" / "train"
    assert len(list(chunk_dir.glob("chunk-*.npz"))) == 2 and not (tmp_path / "killed" / "train").exists()
    (chunk_dir / "chunk-00002.npz.tmp-99999").write_bytes(b"half a chunk")  # as if killed while writing

    run = lambda out: subprocess.run([sys.executable, "-m", "geocontext", *args, "--out", str(out)], env=env,
                                     capture_output=True, text=True, timeout=120)
    resumed = run(tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr
    assert "2 of 5 chunks already done" in resumed.stdout
    assert not list(chunk_dir.glob("*.tmp-*"))
    assert run(tmp_path / "whole").returncode == 0
    for x, y in zip(arrays(tmp_path / "killed", "train")[:3], arrays(tmp_path / "whole", "train")[:3]):
        np.testing.assert_array_equal(x, y)


INTERRUPTED_ROUNDS = """
import os, signal, sys, time
import open_clip  # imported once (seconds); each round is a fresh process forked from this one
import geocontext.embedding.chunks as chunks
import geocontext.embedding.photos as photos
get = photos.PhotoDataset.__getitem__
def slow_get(self, i):  # photos decoded slowly: the Ctrl-Cs come while the workers are busy
    time.sleep(0.005)
    return get(self, i)
photos.PhotoDataset.__getitem__ = slow_get
write, written = chunks.ChunkStore.write, []
def noisy_write(self, k, chunk):
    write(self, k, chunk)
    written.append(k)
    print("wrote", k, flush=True)
chunks.ChunkStore.write = noisy_write
import multiprocessing.reduction as reduction
recv_handle = reduction.recv_handle
def cut_handover(conn):  # a worker hands a batch's tensor over, connected: the worst moment for Ctrl-C
    if written and os.environ.pop("CUT_HANDOVER", None):
        os.killpg(0, signal.SIGINT)
        os.killpg(0, signal.SIGINT)
    return recv_handle(conn)
reduction.recv_handle = cut_handover
from geocontext.cli import main
args, rounds = sys.argv[1:-1], int(sys.argv[-1])
signal.signal(signal.SIGINT, signal.SIG_IGN)  # this process only forks the rounds
for r in range(rounds + 1):  # the last round resumes the first one's folder, uninterrupted
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as `python -m geocontext` starts
        if r == rounds - 1:  # the last interrupted round cuts a handover itself
            os.environ["CUT_HANDOVER"] = "1"
        sys.exit(main(args + ["--out", str(r % rounds)]))  # the process ends as the command line's does
    print("round", r, "exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
    sys.stdin.readline()  # the test has sent both Ctrl-Cs
"""


def test_double_ctrl_c_during_embed_is_one_line_and_resumes(tiny, tmp_path):
    """Issue 31, item 5: a terminal's Ctrl-C twice (to the whole process group, the DataLoader workers
    included, 0 to 80 ms apart) printed a worker's or the DataLoader's KeyboardInterrupt traceback, or a
    file-descriptor handover cut in a worker, 1 try in 8 (here most tries). Each must end as
    `interrupted`, exit 130, and the run resume to the uninterrupted result."""
    from geocontext.synthetic.demo import build_dataset

    data_dir = build_dataset(tmp_path / "data", n_train=60, n_test=4, seed=5)
    args = ["embed", "--data", str(data_dir), "--split", "train", "--model", tiny, "--random-weights",
            "--batch-size", "1", "--chunk-size", "4", "--workers", "2"]  # many handovers: a race in each
    env = {**os.environ, "PYTHONPATH": str(SRC), "GEOCONTEXT_PROGRESS": "0"}
    timings = [(0.0, 0.0), (0.013, 0.005), (0.041, 0.033)]  # (first Ctrl-C after a chunk, then the second) in s
    rounds = len(timings) + 1  # and one where both come as a worker hands a batch over
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED_ROUNDS, *args, str(rounds)], cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    def exit_code() -> str:
        """The round's exit status, once it is over; then the next round may start."""
        status = next(line for line in proc.stdout if line.startswith("round")).split()[-1]
        proc.stdin.write("next\n")
        proc.stdin.flush()
        return status

    exits = []
    try:
        for first, gap in timings:
            next(line for line in proc.stdout if line.startswith("wrote"))
            time.sleep(first)
            os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: every process of the group
            time.sleep(gap)
            os.killpg(proc.pid, signal.SIGINT)
            exits.append(exit_code())
        exits.append(exit_code())  # the round that signals itself
        out, err = proc.communicate(timeout=300)
        exits.append(out.split()[-1])  # the resumed round
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert exits == ["130"] * rounds + ["0"] and proc.returncode == 0, (exits, out, err)
    assert err == "interrupted\n" * rounds, err  # one line each, no traceback from any process
    embed(data_dir, tmp_path / "whole", ["train"], config(tiny, batch_size=1, chunk_size=4))  # uninterrupted
    for x, y in zip(arrays(tmp_path / "0", "train")[:3], arrays(tmp_path / "whole", "train")[:3]):
        np.testing.assert_array_equal(x, y)


def test_vit_b_32_bf16_agrees_with_fp32(data_dir, tmp_path):
    """The default architecture end to end; CPU bf16 autocast (the auto default where the CPU has native
    bf16) must give the fp32 embeddings' directions (cosine > 0.99)."""
    outs = {}
    for precision in ("fp32", "bf16"):
        cfg = EmbedConfig(EncoderConfig(random_weights=True, precision=precision), batch_size=4, workers=0,
                          accept_missing=True)
        embed(data_dir, tmp_path / precision, ["test"], cfg)
        outs[precision] = arrays(tmp_path / precision, "test")
    (_, img32, txt32, meta), (_, img16, txt16, _) = outs["fp32"], outs["bf16"]
    assert img32.shape == (8, 512) and meta["model"] == "ViT-B-32" and meta["made_with"] == {"fp32 on cpu": 1}
    ok = ~np.isnan(img32[:, 0])
    assert ok.sum() == 6 and np.isnan(img16[~ok]).all()

    def cosine(a, b):
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    assert cosine(img32[ok], img16[ok]).min() > 0.99
    assert cosine(txt32, txt16).min() > 0.99


def test_benchmark_runs_and_reports_agreement(tiny):
    from geocontext.bench.embedding import markdown, run_benchmark

    result = run_benchmark(photos=4, repeats=1, model=tiny, workers=0)
    assert set(result["photos_per_s"]) >= {"naive", "batched-fp32"} and result["default_path"] in result["photos_per_s"]
    assert all(v > 0 for v in result["photos_per_s"].values())
    agree = result["agreement_with_naive_fp32"]["fp32"]
    assert agree["image_min_cosine"] > 0.9999 and agree["title_min_cosine"] > 0.9999
    assert "| naive loop, fp32" in markdown(result)


def test_a_full_disk_stops_embed_in_one_line_and_the_rerun_resumes_and_cleans_up(data_dir, tiny, tmp_path,
                                                                                   monkeypatch, capsys):
    """Issue 25: ENOSPC during `embed` was a traceback and left a hidden .test.tmp-<pid>/ behind."""
    import errno

    out = tmp_path / "features"
    argv = ["embed", "--data", str(data_dir), "--out", str(out), "--split", "test", "--model", tiny, "--random-weights",
            "--workers", "0", "--accept-missing", "--chunk-size", "4"]

    def full_after_some(real):
        def write(file, *args, **kwargs):
            if hasattr(file, "write"):
                file.write(b"\x93NUMPY partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return write

    real_savez, calls = np.savez, []

    def savez_then_full(*args, **kwargs):
        calls.append(1)
        return (real_savez if len(calls) == 1 else full_after_some(real_savez))(*args, **kwargs)

    with monkeypatch.context() as m:  # the second chunk finds the disk full
        m.setattr(np, "savez", savez_then_full)
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(rf"error: {re.escape(str(out / 'chunks' / 'test'))}: no space left on the disk while writing"
                     r" chunk 1 \([\d.]+ \w+ free there, about [\d.]+ \w+ needed\)", err), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in (out / "chunks" / "test").iterdir()) == ["chunk-00000.npz", "manifest.json"]

    with monkeypatch.context() as m:  # the chunks are done; merging them finds the disk full
        m.setattr(np, "save", full_after_some(np.save))
        assert main(argv) == 2
    said = capsys.readouterr()
    err = said.err
    assert "1 of 2 chunks already done" in said.out  # resumed after the first full disk
    assert re.search(rf"error: {re.escape(str(out))}: no space left on the disk while writing the test features"
                     r" \(.* free there, about [\d.]+ \w+ needed\)", err), err
    assert not list(out.glob(".test.tmp-*")) and not (out / "test").exists()
    (out / ".test.tmp-999999999").mkdir()  # and one left by a run killed outright (no such process now)
    assert main(argv) == 0
    assert "2 of 2 chunks already done" in capsys.readouterr().out  # resumed: only the merge was left
    assert sorted(p.name for p in out.iterdir()) == ["chunks", "test"]  # nothing partial left
    assert len(load_features(out, "test")) == 8
