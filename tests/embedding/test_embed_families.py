"""Any open_clip family end to end, and titles through sentence-transformers, on tiny random-weight models.

Each family's tiny model is its real open_clip config with small widths and depths; where the vision
tower is a timm model (SigLIP, PE-Core, MobileCLIP), the same timm architecture is registered with small
widths and depths. Weights go through a checkpoint file the test writes; the kit's features must equal
open_clip's (or sentence-transformers') own API applied to each photo and title."""
from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from geocontext.cli import main
from geocontext.competition import image_path
from geocontext.data.readers import read_ids
from geocontext.embedding.encoder import EncoderConfig, WeightsError, load_encoder
from geocontext.embedding.features import load_features
from geocontext.embedding.embed import EmbedConfig, embed
from geocontext.embedding.text import SentenceEncoder


def _register_tiny_timm() -> None:
    """Tiny versions of the timm towers (same model class and options, small width and depth)."""
    import timm.models.eva as eva
    import timm.models.fastvit as fastvit
    import timm.models.vision_transformer as vit
    from timm.models import is_model, register_model

    def tiny(name, real, **small):
        if is_model(name):
            return

        def build(pretrained=False, **kwargs):
            return real(pretrained=pretrained, **{**small, **kwargs})

        build.__name__, build.__module__ = name, real.__module__
        register_model(build)

    tiny("gc_tiny_siglip", vit.vit_base_patch16_siglip_224, embed_dim=32, depth=2, num_heads=2, img_size=32)
    tiny("gc_tiny_pe_core", eva.vit_pe_core_base_patch16_224, embed_dim=32, depth=2, num_heads=2, img_size=32,
         attn_pool_num_heads=2, ref_feat_shape=(2, 2))
    tiny("gc_tiny_mci", fastvit.fastvit_mci2, layers=(1, 1, 1, 1), embed_dims=(8, 16, 32, 64))


SMALL_TEXT = {"width": 32, "heads": 2, "layers": 2}
FAMILIES = {  # real open_clip config -> what shrinks it
    "ViT-L-14": ({"image_size": 28, "layers": 2, "width": 32, "head_width": 16}, SMALL_TEXT),
    "ViT-B-16-SigLIP": ({"image_size": 32, "timm_model_name": "gc_tiny_siglip"}, {**SMALL_TEXT, "vocab_size": 64}),
    "PE-Core-B-16": ({"image_size": 32, "timm_model_name": "gc_tiny_pe_core"}, SMALL_TEXT),
    "MobileCLIP-S2": ({"image_size": 64, "timm_model_name": "gc_tiny_mci"}, SMALL_TEXT),
}


def tiny_family(name: str, folder: Path) -> Path:
    import open_clip

    _register_tiny_timm()
    cfg = copy.deepcopy(open_clip.get_model_config(name))
    vision, text = FAMILIES[name]
    cfg["embed_dim"] = 32
    cfg["vision_cfg"].update(vision)
    cfg["text_cfg"].update(text)
    path = folder / f"gc-tiny-{name}.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    from geocontext.synthetic.demo import build_dataset

    return build_dataset(tmp_path_factory.mktemp("families") / "data", n_train=6, n_test=6, seed=11)


def titles_of(data_dir: Path) -> dict[int, str]:
    with open(data_dir / "metadata.csv", encoding="utf-8") as handle:
        return {int(r[0]): r[1] for r in csv.reader(handle) if r and r[0].isdigit()}


@pytest.fixture(scope="module")
def hf_tokenizer(data_dir, tmp_path_factory) -> Path:
    """A word-level Hugging Face tokenizer folder built here (SigLIP's own is on the hub)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for t in titles_of(data_dir).values() for w in t.lower().split()})[:60]
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    folder = tmp_path_factory.mktemp("tokenizer") / "siglip-tokenizer"
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>").save_pretrained(folder)
    return folder


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_open_clip_family_embeds_like_open_clip(family, data_dir, hf_tokenizer, tmp_path):
    import open_clip
    from open_clip.tokenizer import HFTokenizer
    from PIL import Image

    path = tiny_family(family, tmp_path)
    open_clip.add_model_config(path)
    torch.manual_seed(5)
    model, _, preprocess = open_clip.create_model_and_transforms(path.stem)
    model.eval()
    weights = tmp_path / "weights.pt"
    torch.save(model.state_dict(), weights)
    siglip = "SigLIP" in family
    tokenizer = (HFTokenizer(str(hf_tokenizer), context_length=64, clean="canonicalize") if siglip
                 else open_clip.get_tokenizer(path.stem))
    cfg = EmbedConfig(EncoderConfig(model=str(path), pretrained=str(weights), precision="fp32",
                                    tokenizer=str(hf_tokenizer) if siglip else None), batch_size=4, workers=0, chunk_size=4,
                      accept_missing=True)  # 1 of the 6 test photos is missing, by design
    embed(data_dir, tmp_path / "f", ["test"], cfg)
    fs = load_features(tmp_path / "f", "test")
    assert set(fs.blocks) == {f"image@{path.stem}", f"title@{path.stem}"} and fs.image.shape == (6, 32)
    titles = titles_of(data_dir)
    with torch.inference_mode():
        for i, gid in enumerate(fs.ids):
            try:
                photo = preprocess(Image.open(image_path(data_dir, "test", int(gid))).convert("RGB"))[None]
            except OSError:  # the missing and the truncated photo
                assert np.isnan(fs.image[i]).all()
            else:
                np.testing.assert_allclose(fs.image[i], model.encode_image(photo)[0].numpy(), rtol=1e-4, atol=1e-5)
            want = model.encode_text(tokenizer([titles.get(int(gid), "")]))[0].numpy()
            np.testing.assert_allclose(fs.title[i], want, rtol=1e-4, atol=1e-5)


def test_a_tokenizer_on_the_hub_says_what_to_fetch(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = tiny_family("ViT-B-16-SigLIP", tmp_path)
    with pytest.raises(WeightsError) as err:
        load_encoder(EncoderConfig(model=str(path), random_weights=True))
    message = str(err.value)
    assert "comes from the Hugging Face hub (timm/ViT-B-16-SigLIP)" in message
    assert "AutoTokenizer.from_pretrained('timm/ViT-B-16-SigLIP').save_pretrained('ViT-B-16-SigLIP-tokenizer')" in message
    assert "--tokenizer /path/to/ViT-B-16-SigLIP-tokenizer" in message
    with pytest.raises(WeightsError, match="not a Hugging Face tokenizer folder"):
        load_encoder(EncoderConfig(model=str(path), random_weights=True, tokenizer=str(tmp_path)))


@pytest.fixture(scope="module")
def st_folder(data_dir, tmp_path_factory) -> Path:
    """A tiny random-weight BERT with a vocabulary built here, saved as a sentence-transformers folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("st")
    words = sorted({w for t in titles_of(data_dir).values() for w in t.lower().replace(",", " ").split()})
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    hf = root / "bert"
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(hf)
    torch.manual_seed(3)
    BertModel(BertConfig(vocab_size=len(words) + 5, hidden_size=24, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=48, max_position_embeddings=64)).save_pretrained(hf)
    bert = Transformer(str(hf), max_seq_length=32)
    folder = root / "tiny-minilm"
    SentenceTransformer(modules=[bert, Pooling(24, "mean")], device="cpu").save(str(folder))
    return folder


def test_titles_through_sentence_transformers_added_beside_the_clip_blocks(data_dir, st_folder, tmp_path):
    from sentence_transformers import SentenceTransformer

    clip = tiny_family("ViT-L-14", tmp_path)
    out = tmp_path / "f"
    base = ["embed", "--data", str(data_dir), "--out", str(out), "--model", str(clip), "--random-weights",
            "--workers", "0", "--batch-size", "4", "--chunk-size", "4", "--accept-missing"]
    assert main(base) == 0
    before = {p: p.read_bytes() for p in out.glob("*/*.npy")}
    spec = f"sentence-transformers:{st_folder}"
    for shard in ("2/2", "1/2"):  # two shards into one folder: the last one to finish merges
        assert main([*base, "--blocks", "title", "--title-encoder", spec, "--shard", shard]) == 0
    assert {p: p.read_bytes() for p in before} == before  # the CLIP blocks were not recomputed
    reference = SentenceTransformer(str(st_folder), device="cpu")
    titles = titles_of(data_dir)
    for split in ("train", "test"):
        fs = load_features(out, split)
        np.testing.assert_array_equal(fs.ids, read_ids(data_dir / f"{split}.csv"))
        assert list(fs.blocks) == ["image@gc-tiny-ViT-L-14", "title@gc-tiny-ViT-L-14", "title@tiny-minilm"]
        block = fs.block("title@tiny-minilm")
        assert block.info["identity"]["weights"].startswith("folder:") and block.array.shape == (6, 24)
        want = reference.encode([titles.get(int(g), "") for g in fs.ids], normalize_embeddings=False)
        np.testing.assert_allclose(block.array, want, rtol=1e-4, atol=1e-5)
    assert (out / "chunks" / "title@tiny-minilm" / "test" / "manifest.json").exists()
    # resumable: a rerun finds every chunk done
    summary = embed(data_dir, out, ["test"], EmbedConfig(EncoderConfig(model=str(clip), random_weights=True),
                                                          workers=0, chunk_size=4, title_encoder=spec, kinds=("title",)))
    assert summary["test"]["chunks_done_now"] == 0
    # one job, image from open_clip and titles from sentence-transformers
    embed(data_dir, tmp_path / "g", ["test"], EmbedConfig(EncoderConfig(model=str(clip), random_weights=True),
                                                           workers=0, title_encoder=spec, accept_missing=True))
    fs = load_features(tmp_path / "g", "test")
    assert list(fs.blocks) == ["image@gc-tiny-ViT-L-14", "title@tiny-minilm"] and fs.title.shape == (6, 24)
    np.testing.assert_array_equal(fs.image, load_features(out, "test").image)


def test_sentence_transformers_offline_says_how_to_bring_the_model(monkeypatch, tmp_path, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError) as err:
        SentenceEncoder("sentence-transformers:all-MiniLM-L6-v2", device="cpu", cache_dir=str(tmp_path))
    message = str(err.value)
    assert "SentenceTransformer('all-MiniLM-L6-v2').save('all-MiniLM-L6-v2')" in message
    assert "--title-encoder sentence-transformers:/path/to/all-MiniLM-L6-v2" in message
    with pytest.raises(WeightsError, match="folder not found"):
        SentenceEncoder(f"sentence-transformers:{tmp_path / 'nope'}", device="cpu")
    assert main(["embed", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--title-encoder", "bge"]) == 2
    assert "sentence-transformers:NAME_OR_FOLDER" in capsys.readouterr().err
