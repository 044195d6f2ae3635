"""Encoder speed: photos/s and titles/s of each open_clip family and sentence-transformers title model,
through `geocontext embed` at its default batch on this machine, and from that an estimate of embedding
the competition's photos on a Kaggle GPU.

Weights are random (no download here): a forward pass costs the same whatever the weights' values.
Photos/s are the image block alone (JPEG decoding in the DataLoader workers, preprocessing, the image
tower, the chunk files and the merge); titles/s the title block alone (tokenizing and the text tower).
Hub tokenizers (SigLIP's) and sentence-transformers vocabularies are stood in for by word-level ones
built here, so titles/s leave out their sub-word splitting.

The GPU figure is an ESTIMATE, not a measurement: the image tower's FLOPs per photo (counted here with
torch's FlopCounterMode) over an assumed sustained fp16 throughput of a Kaggle T4, or the JPEG decoding
rate measured here per core times Kaggle's 4 cores, whichever is slower.

    python -m geocontext.bench.encoders [--photos 32] [--titles 512] [--repeats 2] [--models ViT-B-32 ...] [--json out.json]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..competition import image_path
from ..embedding.encoder import EncoderConfig, load_encoder
from ..embedding.embed import EmbedConfig, embed
from ..embedding.text import PREFIX
from .embedding import _machine, make_data

COMPETITION_PHOTOS = 790_000  # train + test photos of the competition, about
T4_SUSTAINED_TFLOPS = 20.0  # assumed: ~30% of a T4's 65 TFLOPS fp16 tensor peak, typical of ViT inference
KAGGLE_CORES = 4  # CPU cores of a Kaggle GPU session: they decode the JPEGs
OPEN_CLIP = ("ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-B-16-SigLIP", "PE-Core-B-16", "MobileCLIP-S2")
# sentence-transformers models as BERT shapes: (layers, hidden, heads, intermediate, pooling)
SENTENCE = {"all-MiniLM-L6-v2": (6, 384, 12, 1536, "mean"), "bge-small-en-v1.5": (12, 384, 12, 1536, "cls")}


def word_tokenizer(folder: Path, titles: list[str]) -> Path:
    """A word-level Hugging Face tokenizer folder over the titles' words (stands in for a hub tokenizer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for t in titles for w in t.lower().split()})
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>").save_pretrained(folder)
    return folder


def random_sentence_model(folder: Path, shape: tuple, titles: list[str]) -> Path:
    """A random-weight BERT of the model's shape (real vocabulary size), saved as a sentence-transformers folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    layers, hidden, heads, inter, pooling = shape
    words = sorted({w for t in titles for w in t.lower().split()})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    filler = [f"[unused{i}]" for i in range(30522 - len(specials) - len(words))]
    (folder / "vocab.txt").parent.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(specials + words + filler) + "\n")
    hf = folder / "hf"
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(hf)
    BertModel(BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=inter)).save_pretrained(hf)
    out = folder / "model"
    SentenceTransformer(modules=[Transformer(str(hf), max_seq_length=256), Pooling(hidden, pooling)],
                        device="cpu").save(str(out))
    return out


def make_titles(folder: Path, n: int, seed: int) -> None:
    """A DATA folder of `n` titles (test.csv, metadata.csv) and no photos: for the title blocks alone."""
    import pandas as pd

    from ..competition import ID
    from .embedding import PLACES, WORDS

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = rng.choice(np.arange(10_000, 8_000_000), size=n, replace=False)
    titles = [f"{rng.choice(WORDS)} near {rng.choice(PLACES)}" for _ in range(n)]
    pd.DataFrame({ID: ids}).to_csv(folder / "test.csv", index=False)
    pd.DataFrame({ID: ids, "title": titles, "grid_reference": ""}).to_csv(folder / "metadata.csv", index=False)


def image_gflops(encoder) -> float:
    """GFLOPs of one photo through the image tower (matmuls and convolutions, as torch counts them)."""
    from torch.utils.flop_counter import FlopCounterMode

    size = encoder.image_size if isinstance(encoder.image_size, list) else [encoder.image_size] * 2
    x = torch.zeros(1, 3, *size, dtype=encoder.input_dtype)
    with FlopCounterMode(display=False) as counter:  # not under no_grad: its module tracker needs autograd
        encoder.model.encode_image(x)
    return counter.get_total_flops() / 1e9


def decode_rate(data_dir: Path, ids, preprocess, n: int = 32) -> float:
    """Photos/s one core opens, decodes and preprocesses (the DataLoader workers' share of the work)."""
    from ..embedding.photos import read_photo

    paths = [str(image_path(data_dir, "test", int(i))) for i in ids[:n]]
    start = time.process_time()  # CPU time: what one core gives, whatever else the machine runs
    for p in paths:
        read_photo(p, preprocess)
    return len(paths) / (time.process_time() - start)


def _timed(fn, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def _bench_clip(model: str, work: Path, data: Path, ids, titles: list[str], repeats: int, seed: int) -> dict:
    """Image block, then title block alone, through `embed`; warm-up on the 4-photo DATA beside `data`."""
    import open_clip

    hub = (open_clip.get_model_config(model) or {}).get("text_cfg", {}).get("hf_tokenizer_name")
    tokenizer = str(word_tokenizer(work / f"tok-{model}", titles)) if hub else None
    enc = EncoderConfig(model=model, random_weights=True, seed=seed, tokenizer=tokenizer)
    encoder = load_encoder(enc)
    out = work / f"f-{model}"

    def run(kind: str, where: Path = data):
        shutil.rmtree(out, ignore_errors=True)
        embed(where, out, ["test"], EmbedConfig(enc, kinds=(kind,)), encoder)

    _timed(lambda: (run("image", work / "warm"), run("title", work / "warm")), 1)  # first-call setup, workers
    photos = len(ids) / _timed(lambda: run("image"), repeats)
    title_s = _timed(lambda: run("title", work / "titles"), repeats)
    gflops = image_gflops(encoder)
    return {"kind": "open_clip", "photos_per_s": photos, "titles_per_s": _count_titles(work) / title_s, "image_gflops": gflops,
            "precision": encoder.precision, "dim": encoder.dim, "tokenizer": "word-level stand-in" if hub else "open_clip's"}


def _bench_sentence(name: str, work: Path, data: Path, ids, titles: list[str], repeats: int, seed: int) -> dict:
    torch.manual_seed(seed)
    folder = random_sentence_model(work / f"st-{name}", SENTENCE[name], titles)
    spec = EmbedConfig(EncoderConfig(random_weights=True), kinds=("title",), title_encoder=f"{PREFIX}{folder}")
    out = work / f"f-{name}"

    def run(where: Path = work / "titles"):
        shutil.rmtree(out, ignore_errors=True)
        embed(where, out, ["test"], spec)

    _timed(lambda: run(work / "warm"), 1)
    return {"kind": "sentence-transformers", "titles_per_s": _count_titles(work) / _timed(run, repeats), "dim": SENTENCE[name][1],
            "precision": "fp32", "tokenizer": "its WordPiece, vocabulary stand-in"}


def _count_titles(work: Path) -> int:
    return len((work / "titles" / "test.csv").read_text().splitlines()) - 1


def run_encoders(photos: int = 32, repeats: int = 2, models=None, seed: int = 0, titles: int = 512) -> dict:
    """Per encoder: photos/s and titles/s here, GFLOPs per photo, and the Kaggle GPU estimate."""
    models = list(models or (*OPEN_CLIP, *SENTENCE))
    work = Path(tempfile.mkdtemp(prefix="geocontext-bench-encoders-"))
    try:
        (work / "data").mkdir()
        (work / "warm").mkdir()
        ids, words = make_data(work / "data", photos, seed)
        make_data(work / "warm", 4, seed + 1)
        make_titles(work / "titles", titles, seed + 2)
        load = os.getloadavg()[0]
        per_core = None
        rows = {}
        for model in models:
            if model in SENTENCE:
                rows[model] = _bench_sentence(model, work, work / "data", ids, words, repeats, seed)
                continue
            rows[model] = _bench_clip(model, work, work / "data", ids, words, repeats, seed)
            if per_core is None:
                from open_clip import image_transform

                per_core = decode_rate(work / "data", ids, image_transform(224, is_train=False))
        for row in rows.values():
            if "image_gflops" in row:
                compute_h = COMPETITION_PHOTOS * row["image_gflops"] / (T4_SUSTAINED_TFLOPS * 1e3) / 3600
                decode_h = COMPETITION_PHOTOS / (per_core * KAGGLE_CORES) / 3600
                row["kaggle_t4_hours_estimate"] = max(compute_h, decode_h)
                row["bound"] = "GPU compute" if compute_h >= decode_h else "JPEG decoding"
        base = rows.get("ViT-B-32")
        for row in rows.values():
            if base and "photos_per_s" in row:
                row["photos_vs_vit_b_32"] = row["photos_per_s"] / base["photos_per_s"]
        return {"benchmark": "encoders", "photos": photos, "titles": titles, "repeats": repeats,
                "batch_size": EmbedConfig().resolved("cpu")[0], "machine": _machine(torch.device("cpu")),
                "load_average": [load, os.getloadavg()[0]],
                "decode_photos_per_s_per_core": per_core, "assumed_t4_tflops": T4_SUSTAINED_TFLOPS,
                "kaggle_cores": KAGGLE_CORES, "competition_photos": COMPETITION_PHOTOS, "encoders": rows}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def markdown(result: dict) -> str:
    rows = ["| encoder | photos/s here | x ViT-B-32 | titles/s here | GFLOPs / photo | Kaggle T4 hours for"
            f" {result['competition_photos'] // 1000}k photos (estimate) |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    for name, r in result["encoders"].items():
        photo = f"{r['photos_per_s']:.1f}" if "photos_per_s" in r else "-"
        ratio = f"{r['photos_vs_vit_b_32']:.2f}" if "photos_vs_vit_b_32" in r else "-"
        gpu = f"~{r['kaggle_t4_hours_estimate']:.1f} h ({r['bound']})" if "kaggle_t4_hours_estimate" in r else "titles only: minutes"
        flops = f"{r['image_gflops']:.1f}" if "image_gflops" in r else "-"
        rows.append(f"| {name} ({r['kind']}, dim {r['dim']}) | {photo} | {ratio} | {r['titles_per_s']:.0f} | {flops} | {gpu} |")
    m = result["machine"]
    head = (f"{result['photos']} generated 640x480 JPEGs and {result['titles']} titles per encoder, random weights, on the CPU ({m['cpu']},"
            f" {m['cores']} cores, torch {m['torch']}) at the default CPU batch ({result['batch_size']}) and precision,"
            f" median of {result['repeats']} run(s) after a warm-up; load average {result['load_average'][0]:.1f} at the"
            f" start, {result['load_average'][1]:.1f} at the end (other work shares these cores: the photos/s and"
            f" titles/s columns compare encoders measured alike, in one run). JPEG decoding + preprocessing:"
            f" {result['decode_photos_per_s_per_core']:.0f} photos per CPU-second on one core. The Kaggle column is an ESTIMATE: the"
            f" image tower's FLOPs over an assumed sustained {result['assumed_t4_tflops']:.0f} TFLOPS fp16 on one T4,"
            f" or decoding on {result['kaggle_cores']} cores at this machine's rate, whichever is slower; titles add"
            " minutes on a GPU.")
    return head + "\n\n" + "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geocontext.bench.encoders", description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=32, help="photos (and titles) per encoder (default: 32)")
    parser.add_argument("--titles", type=int, default=512, help="titles per encoder (default: 512)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models", nargs="+", help=f"default: {' '.join((*OPEN_CLIP, *SENTENCE))}")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    os.environ.setdefault("GEOCONTEXT_PROGRESS", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model here is built locally: no network waits
    result = run_encoders(args.photos, args.repeats, args.models, titles=args.titles)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
