"""`geocontext demo`: build a small synthetic competition in the real layout, run the kit on it, score it.

The DATA folder it writes looks like Kaggle's: train.csv / test.csv / tags-top.csv with the 49 real tag
columns, metadata.csv (titles, grid references, a few malformed lines), photos as real JPEG files
under {split}_images/, plus solution.csv (the test labels, with a Usage column) for local scoring.
Labels and locations follow `synth`; each tag paints its own coloured patch, so photos carry signal.
"""
from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..competition import BY_COLUMN, ID, TAGS, image_path
from .world import World, grid_references, sample_labels

PLACES = ("Aberdeen", "Bodmin", "Cardigan", "Durham", "Ely", "Fort William", "Galway", "Hexham", "Inverness",
          "Kendal", "Lewes", "Mallaig", "Newry", "Oban", "Penrith", "Ripon", "Sligo", "Tenby", "Ullapool", "Wells")
SIDE = 96  # pixels; open_clip's preprocessing resizes to the model's input anyway
# The demo's CLIP: ViT-B-32's kind of model (an open_clip config: vision transformer and text transformer),
# 4 layers 256 wide on the 96-pixel photos, about 1/35 of ViT-B-32's compute per photo, so the demo embeds
# its 1,000 photos in seconds on a CPU, not minutes. Its weights are random, as ViT-B-32's would be here
# (no internet), so its features lose nothing by it.
# The default run but for its Optuna trials (40 global, 50 per tag): the demo's 160 hold-out photos have little
# to tune, and with the defaults decoding took four fifths of the demo's time.
DEMO_TRIALS = {"global_trials": 10, "per_tag_trials": 12}
DEMO_CLIP = {"embed_dim": 256,
             "vision_cfg": {"image_size": SIDE, "patch_size": 16, "width": 256, "layers": 4, "head_width": 64},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 256, "heads": 4, "layers": 4}}


def render_photo(y_row: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A sky-over-ground picture; each tag adds a patch of its own colour in its own place."""
    ramp = np.linspace(0, 1, SIDE, dtype=np.float32)[:, None, None]
    img = (1 - ramp) * rng.uniform(90, 200, 3) + ramp * rng.uniform(30, 120, 3)
    img = np.broadcast_to(img, (SIDE, SIDE, 3)).copy()
    cell = SIDE // 7
    for j in np.flatnonzero(y_row):
        colour = np.array([(j * 97) % 256, (j * 57 + 80) % 256, (j * 151 + 30) % 256], dtype=np.float32)
        r, c = (j % 7) * cell, (j // 7) * cell
        img[r:r + 2 * cell, c:c + 2 * cell] = 0.35 * img[r:r + 2 * cell, c:c + 2 * cell] + 0.65 * colour
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def make_title(y_row: np.ndarray, columns: tuple[str, ...], rng: np.random.Generator) -> str:
    u = rng.uniform()
    if u < 0.03:
        return ""  # some photos have no title
    words = [BY_COLUMN[columns[j]].name.split(",")[0] for j in np.flatnonzero(y_row) if rng.uniform() < 0.7]
    title = f"{' and '.join(words) or 'View'} near {rng.choice(PLACES)}"
    if u > 0.995:
        title += " seen from the old road" * 20  # longer than CLIP's 77-token context
    return title


def build_dataset(folder: str | Path, n_train: int = 800, n_test: int = 200, seed: int = 0) -> Path:
    """Write the synthetic competition into `folder` (a DATA folder) and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    world = World.create(seed)
    columns = world.columns
    n = n_train + n_test
    ids = np.sort(rng.choice(np.arange(10_000, 8_000_000), size=n, replace=False))
    ids = rng.permutation(ids)
    y = sample_labels(world, n, rng)
    split = np.where(np.arange(n) < n_train, "train", "test")

    labels = pd.DataFrame(y, columns=list(columns))
    labels.insert(0, ID, ids)
    labels[:n_train].to_csv(folder / "train.csv", index=False)
    labels[[ID]][n_train:].to_csv(folder / "test.csv", index=False)
    solution = labels[n_train:].assign(Usage=np.where(rng.uniform(size=n_test) < 0.5, "Public", "Private"))
    solution.to_csv(folder / "solution.csv", index=False)
    pd.DataFrame([(t.tag_id, "top", t.name, t.column, t.grouping, "") for t in TAGS],
                 columns=["tag_id", "prefix", "tag", "col", "grouping", "description"]).to_csv(folder / "tags-top.csv", index=False)

    refs = grid_references(world, y, rng)
    titles = [make_title(row, columns, rng) for row in y]
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([ID, "title", "grid_reference", "imagetaken"])
        for i, (gid, title, ref) in enumerate(zip(ids, titles, refs)):
            writer.writerow([gid, title, ref, "2020-06-01"])
            if i in (7, n // 2):  # the real file has a few broken lines; so does ours
                handle.write(f"{gid + 1},an unquoted, comma,in a title,XX,2020\n")

    for i, (gid, row) in enumerate(zip(ids, y)):
        path = image_path(folder, split[i], int(gid))
        path.parent.mkdir(parents=True, exist_ok=True)
        render_photo(row, rng).save(path, quality=85)
    # One photo lost and one damaged, as happens in the real archive.
    image_path(folder, split[n - 1], int(ids[n - 1])).unlink()
    damaged = image_path(folder, split[n - 2], int(ids[n - 2]))
    damaged.write_bytes(damaged.read_bytes()[:200])
    return folder


def main(work: str | Path, n_train: int = 800, n_test: int = 200, seed: int = 0, n_types: int = 6000) -> dict:
    """Build the dataset, embed it, run the kit, score the submission like the leaderboard; then the
    types task on `n_types` generated photos."""
    from ..embedding.embed import EmbedConfig, embed
    from ..embedding.encoder import EncoderConfig
    from ..decoding.select import DecodeConfig
    from ..pipeline.config import RunConfig
    from ..pipeline.evaluate import evaluate
    from ..pipeline.run import run
    from ..pipeline.run_folder import RunFolder

    work = Path(work)
    start = time.perf_counter()
    data_dir = build_dataset(work / "data", n_train, n_test, seed)
    print(f"demo data: {data_dir} ({n_train} train + {n_test} test photos)", flush=True)
    # The real embedding stage on the demo's JPEGs and titles. No pretrained weights can be assumed here,
    # so the demo's small CLIP runs with random ones: the photos' colour patches and the titles' words
    # still come through.
    features_dir = work / "features"
    shutil.rmtree(features_dir, ignore_errors=True)  # chunks of an earlier demo may be for other ids
    model = work / "demo-clip.json"
    model.write_text(json.dumps(DEMO_CLIP))
    # Its one lost photo is by design: more than 1% of a small test split (`--test 50`), not a wrong DATA.
    embed(data_dir, features_dir, config=EmbedConfig(EncoderConfig(str(model), random_weights=True, seed=seed),
                                                     accept_missing=True))
    print(f"embedding done after {time.perf_counter() - start:.0f} s", flush=True)
    out = RunFolder(work / "run")
    run(data_dir, features_dir, out.path, RunConfig(decode=DecodeConfig(**DEMO_TRIALS)), accept_missing=True)
    score = evaluate(out.submission, data_dir / "solution.csv")
    print(f"local leaderboard: exact match {score['exact_match']:.4f} (public {score.get('public', float('nan')):.4f},"
          f" private {score.get('private', float('nan')):.4f}), macro F1 {score['macro_f1']:.4f}")
    print(f"submission: {out.submission}")
    print(f"report (open in a browser): {work / 'run' / 'report.html'}")

    from .types_demo import (
        main as types_demo,  # the Geograph type-tag task, on its own data
    )

    types_demo(work / "types", n_types, seed=seed)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return score
