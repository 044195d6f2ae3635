"""The id-neighbour block (training.neighbours) measured on hidden test labels, in several worlds (issue 23).

    PYTHONPATH=src nice .venv/bin/python -m geocontext.bench.neighbours \\
        --families clusters,placeless --orders real,shuffled --size full --heads linear,mlp \\
        --blocks none default --far 256,inf --out bench-cache/neighbours.json

A world is a family of generated features on real labels in an id order, at a size:
- labels: a seeded subset of the real train.csv.zip, picked as bench.competition_data picks it (real ids
  and real tag sets, so the subset keeps the real upload order); `--size full` is 480,000 labelled +
  129,822 test photos (every labelled photo), `quarter` 120,000 + 32,455 (a quarter of the ids: sparse
  neighbours), or LABELLED/TEST;
- features: image and title embeddings from synthetic.families ("clusters", "placeless", "world"), which
  depend on the labels only, never on the ids: whatever the block adds comes from the real upload order;
- order "real", or "shuffled": the ids permuted among the photos, so ids say nothing (as in a
  competition whose ids are not upload order).
Rows as `run` has them: 20% of the labelled photos held out by a hash of the id (a quarter of those stop
each head's training, the rest tune the decoders), training rows with 6+ tags dropped. Inputs: unit
image (zeros and a flag where missing) + unit title, plus the block, standardised on the training rows.
The block: out of fold on the training rows (`fit_neighbours`), from the training rows for the hold-out,
from all labelled rows for the test photos (as `predict` after the refit). Heads: `training.loop.fit`,
the default variants' linear (lr 1e-2) and MLP (512 wide, lr 3e-3) heads. Decoders, all scored on the
test photos: 0.5 threshold; the label-set decoder (1,000 common sets, global threshold, prior weight and
novel penalty tuned on the hold-out's decoder rows); and that decoder with each photo's 4 nearest
labelled neighbours' sets as extra candidates (decoding.neighbour_sets, as `run` has it; tuned on the same rows).
`--far R`: the test photos scored again with every labelled id within R of theirs ignored ("inf": no
neighbour at all), as for archive photos far from any labelled id; a head without the block scores the
same there as on the plain test set.

Blocks: the names in BLOCKS, or NAME=JSON with NeighbourSpec fields changed from the default
(e.g. 'drop20={"dropout": 0.2}'), space-separated. Prints a table per world and writes every figure to --out (JSON).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..competition import ensure_one_tag
from ..console import say
from ..data import grid
from ..data.split import holdout_mask, stop_mask
from ..decoding.decoders import LabelSetDecoder
from ..decoding.neighbour_sets import NeighbourSetDecoder
from ..synthetic.families import generate
from ..training.config import TrainConfig
from ..training.heads import predict_proba
from ..training.inputs import Standardizer
from ..training.location import LocationPriors, fit_priors, fourier_features
from ..training.loop import fit
from ..training.neighbours import GAP_CAP, IdNeighbours, NeighbourSpec, fit_neighbours
from .competition_data import real_labels
from .data import SHARED

SIZES = {"full": (480_000, 129_822), "quarter": (120_000, 32_455)}
HEADS = {"linear": TrainConfig(head="linear", lr=1e-2), "mlp": TrainConfig(head="mlp", hidden=512, lr=3e-3)}
BLOCKS = {
    "none": None,
    "knn-plain": NeighbourSpec(strength=1e-3, tau=1e9, dropout=0.0),  # the first try: k-NN means, gaps
    "knn": NeighbourSpec(dropout=0.0),  # k-NN weighted by gap, shrunk to the global shares, no far rows
    "windows": NeighbourSpec(windows=(2, 8, 32, 128, 512), nearest=()),  # id windows only
    "both": NeighbourSpec(windows=(2, 8, 32, 128, 512)),  # windows and k-NN together
    "default": NeighbourSpec(),  # the kit's default (k-NN only, half the training rows made far)
}
THRESHOLDS = np.round(np.arange(0.20, 0.61, 0.02), 2)
PRIOR_WEIGHTS, PENALTIES = (0.0, 0.25, 0.5, 1.0), (0.0, 0.5, 1.0, 2.0, 4.0, None)
CANDIDATES = 4  # nearest neighbours whose sets the decoder may pick (DecodeConfig.neighbour_sets)


@dataclass
class World:
    name: str
    ids: np.ndarray
    y: np.ndarray  # uint8 (n, T)
    emb: np.ndarray  # float32 (n, D): unit image, missing flag, unit title; standardised on `learn`
    labelled: np.ndarray  # bool masks over the n rows
    learn: np.ndarray
    stop: np.ndarray
    select: np.ndarray

    @property
    def test(self) -> np.ndarray:
        return ~self.labelled


def _unit_(a: np.ndarray) -> np.ndarray:
    a /= np.maximum(np.sqrt(np.einsum("ij,ij->i", a, a))[:, None], 1e-12)
    return a


def location_inputs(refs: np.ndarray, ids: np.ndarray, y: np.ndarray, labelled: np.ndarray, learn: np.ndarray,
                    seed: int) -> np.ndarray:
    """What the default variants add to image + title: the square's normalised lat/lon and an unknown
    flag, the location priors (out of fold on the training rows, from them for the hold-out, from every
    labelled row with at most 5 tags for the test photos, as after the refit) and Fourier features."""
    location = grid.normalise(grid.locate(refs).latlon)
    unknown = np.isnan(location).any(axis=1)
    _, known_rows = fit_priors(location[labelled], y[labelled], learn[labelled], ids[labelled], seed)
    priors = np.empty((len(ids), known_rows.shape[1]), np.float32)
    priors[labelled] = known_rows
    refit = labelled & (y.sum(axis=1) <= 5)
    priors[~labelled] = LocationPriors.fit(grid.denormalise(location[refit]), y[refit]).columns(location[~labelled])
    return np.concatenate([np.where(unknown[:, None], 0.0, location), unknown[:, None], priors,
                           fourier_features(location)], axis=1).astype(np.float32)


def make_world(family: str, order: str, size: str, seed: int, shared: Path, inputs: str,
               features: bool = True) -> World:
    """The world's rows, and (unless `features` is False: decoders only) its standardised inputs."""
    n_lab, n_test = SIZES[size] if size in SIZES else map(int, size.replace("+", "/").split("/"))
    labels = real_labels(str(shared / "train.csv.zip"))
    pick = np.random.default_rng(seed).permutation(len(labels))[:n_lab + n_test]  # as competition_data.build
    ids, y = labels.ids[pick], labels.y[pick]
    if order == "shuffled":
        ids = np.random.default_rng(seed + 1).permutation(ids)
    elif order != "real":
        raise ValueError(f"order must be real or shuffled, got {order!r}")
    labelled = np.arange(len(y)) < n_lab
    hold = labelled & holdout_mask(ids, 0.2, seed)
    stop = hold & stop_mask(ids, 0.25, seed)
    learn = labelled & ~hold & (y.sum(axis=1) <= 5)
    name = f"{family}/{order}/{size.replace('/', '+')}/{inputs}/seed{seed}"
    if not features:
        return World(name, ids, y, np.zeros((len(y), 0), np.float32), labelled, learn, stop, hold & ~stop)
    made = generate(family, y, seed)
    d = made.image.shape[1]
    loc = location_inputs(made.grid_reference, ids, y, labelled, learn, seed) if inputs == "img-txt-loc" else None
    emb = np.empty((len(y), 2 * d + 1 + (0 if loc is None else loc.shape[1])), np.float32)
    emb[:, d] = ~np.isfinite(made.image).all(axis=1)  # the photo is missing
    emb[:, :d] = np.nan_to_num(made.image)
    emb[:, d + 1:2 * d + 1] = made.title
    if loc is not None:
        emb[:, 2 * d + 1:] = loc
    del made, loc
    _unit_(emb[:, :d]), _unit_(emb[:, d + 1:2 * d + 1])
    Standardizer.fit(emb, np.flatnonzero(learn)).transform_(emb)
    return World(name, ids, y, emb, labelled, learn, stop, hold & ~stop)


def block_columns(w: World, spec: NeighbourSpec | None, seed: int, far: list[int]) -> dict:
    """Standardised block columns: every labelled row (out of fold for the training rows), the test rows,
    and the test rows at each far radius; None for no block."""
    if spec is None:
        return {}
    lab = w.labelled
    t0 = time.perf_counter()
    _, cols = fit_neighbours(w.ids[lab], w.y[lab], w.learn[lab], seed, spec)
    full = IdNeighbours.fit(w.ids[lab], w.y[lab], spec)
    test_ids = w.ids[w.test]
    out = {"labelled": cols, "test": full.features(test_ids), "seconds": time.perf_counter() - t0}
    for r in far:
        out[f"far{r}"] = full.features(test_ids, np.full(len(test_ids), r, np.int64))
    scaler = Standardizer.fit(cols, np.flatnonzero(w.learn[lab]))
    for key in ["labelled", "test"] + [f"far{r}" for r in far]:
        scaler.transform_(out[key])
    return out


def _x(w: World, cols: dict, mask: np.ndarray, key: str = "labelled") -> torch.Tensor:
    emb = w.emb[mask]
    if not cols:
        return torch.from_numpy(emb)
    extra = cols[key][mask[w.labelled]] if key == "labelled" else cols[key]
    return torch.from_numpy(np.concatenate([emb, extra], axis=1))


def _exact(y: np.ndarray, tags: np.ndarray) -> float:
    return float((tags == y.astype(bool)).all(axis=1).mean())


def decoders(w: World, p_sel: np.ndarray, p_test: dict, near: dict) -> dict:
    """Exact match on the test photos of each decoder (tuned on the decoder rows) for each test input."""
    y_sel, y_test = w.y[w.select], w.y[w.test]
    t = THRESHOLDS[int(np.argmax([_exact(y_sel, ensure_one_tag(p_sel >= g, p_sel)) for g in THRESHOLDS]))]
    sets = LabelSetDecoder.from_labels(w.y[w.learn], 1000).with_settings(0.0, None, float(t))
    sets = sets.tune(p_sel, y_sel, PRIOR_WEIGHTS, PENALTIES)
    nb = NeighbourSetDecoder.fit(sets, p_sel, y_sel, w.ids[w.select], near["select"], CANDIDATES)
    out = {"settings": {"threshold": float(t), "prior_weight": sets.prior_weight, "novel_penalty": sets.novel_penalty,
                        "neighbour_sets": nb.to_dict() if isinstance(nb, NeighbourSetDecoder) else None}}
    for key, p in p_test.items():
        with_near = NeighbourSetDecoder.from_dict(nb.to_dict(), p.shape[1], near[key]) \
            if isinstance(nb, NeighbourSetDecoder) else nb  # the same settings, this input's neighbours
        out[key] = {"0.5": _exact(y_test, ensure_one_tag(p >= 0.5, p)),
                    "label-set": _exact(y_test, sets.decode(p)),
                    "label-set+nb": _exact(y_test, with_near.decode(p, w.ids[w.test]))}
    return out


class _Beyond:
    """An IdNeighbours seen from photos whose labelled ids within `radius` are ignored (archive photos)."""

    def __init__(self, block: IdNeighbours, radius: int):
        self.block, self.radius, self.codes = block, radius, block.codes

    def candidates(self, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.block.candidates(ids, k, np.full(len(ids), self.radius, np.int64))


def neighbour_indexes(w: World, far: list[int]) -> dict:
    """The labelled neighbours the neighbour-set decoder reads: the training rows for the hold-out, every
    labelled row for the test photos (none within the radius for the far ones)."""
    lab = w.labelled
    full = IdNeighbours.fit(w.ids[lab], w.y[lab], NeighbourSpec())
    out = {"select": IdNeighbours.fit(w.ids[w.learn], w.y[w.learn], NeighbourSpec()), "test": full}
    out.update({f"far{r}": _Beyond(full, r) for r in far})
    return out


def run_head(w: World, head: str, block: str, cols: dict, far: list[int], near: dict, seed: int,
             probs_dir: Path | None = None) -> dict:
    t0 = time.perf_counter()
    config = replace(HEADS[head], seed=seed)
    y = lambda m: torch.from_numpy(w.y[m]).float()  # noqa: E731
    result = fit(_x(w, cols, w.learn), y(w.learn), _x(w, cols, w.stop), y(w.stop), config, desc=f"{head} {block}")
    p_sel = predict_proba(result.head, _x(w, cols, w.select))
    p_test = {"test": predict_proba(result.head, _x(w, cols, w.test, "test") if cols else _x(w, cols, w.test))}
    for r in far:
        p_test[f"far{r}"] = predict_proba(result.head, _x(w, cols, w.test, f"far{r}")) if cols else p_test["test"]
    if probs_dir is not None:  # kept so decoders can be re-measured without training again
        probs_dir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(probs_dir / f"{w.name.replace('/', '_')}_{head}_{block}.npz",
                            select=p_sel, **p_test)
    scores = decoders(w, p_sel, p_test, near)
    return {"world": w.name, "head": head, "block": block, "best_epoch": result.best_epoch,
            "dim": w.emb.shape[1] + (cols["labelled"].shape[1] if cols else 0),
            "block_seconds": round(cols.get("seconds", 0.0), 1), "seconds": round(time.perf_counter() - t0, 1),
            **scores}


def parse_blocks(items: list[str]) -> dict:
    out = {}
    for item in items:
        name, _, spec = item.partition("=")
        if spec:
            out[name] = replace(NeighbourSpec(), **json.loads(spec))
        elif name in BLOCKS:
            out[name] = BLOCKS[name]
        else:
            raise SystemExit(f"unknown block {name!r}: one of {', '.join(BLOCKS)} or NAME=JSON")
    return out


def table(records: list[dict], far: list[int]) -> str:
    lines = []
    for world in dict.fromkeys(r["world"] for r in records):
        rows = [r for r in records if r["world"] == world]
        base = {r["head"]: r for r in rows if r["block"] == "none"}
        decs = ["0.5", "label-set", "label-set+nb"]
        lines.append(f"\n{world}   (test exact match; in brackets: the gain over the same head without the block, same decoder and photos)")
        lines.append(f"{'head':7s} {'block':14s} {'dim':>5s} " + " ".join(f"{d:>16s}" for d in decs)
                     + "".join(f" {'far ' + str(x) + ' ' + d:>22s}" for x in far for d in decs[1:]) + "  epoch")
        for r in rows:
            b = base.get(r["head"])

            def cell(key, dec, width):
                gain = "" if b is None or r is b else f" ({r[key][dec] - b[key][dec]:+.4f})"
                return f"{r[key][dec]:.4f}{gain}".rjust(width)
            lines.append(f"{r['head']:7s} {r['block']:14s} {r['dim']:5d} " + " ".join(cell("test", d, 16) for d in decs)
                         + "".join(" " + cell(f"far{x}", d, 22) for x in far for d in decs[1:])
                         + f"  {r['best_epoch']:5d}")
    return "\n".join(lines)


def redecode(records: list[dict], out: Path, shared: Path, far: list[int]) -> None:
    """Decoders measured again on the probabilities kept beside `out` (no training)."""
    for world in dict.fromkeys(r["world"] for r in records):
        family, order, size, inputs, seed = world.split("/")
        w = make_world(family, order, size, int(seed[4:]), shared, inputs, features=False)
        near = neighbour_indexes(w, far)
        for r in (r for r in records if r["world"] == world):
            kept = out.with_suffix(".probs") / f"{world.replace('/', '_')}_{r['head']}_{r['block']}.npz"
            if kept.exists():
                p = np.load(kept)
                r.update(decoders(w, p["select"].astype(np.float32),
                                  {k: p[k].astype(np.float32) for k in ["test"] + [f"far{x}" for x in far]}, near))
                say(f"  {world} {r['head']} {r['block']}: {r['test']}")


def cost(shared: Path, spec: NeighbourSpec, archive: int, chunk: int = 262_144) -> dict:
    """Seconds and peak memory of the block at the real scale: fitted on every labelled photo of the real
    train.csv.zip (out of fold for all), the 135,489 test ids, then `archive` ids streamed in chunks."""
    import resource

    from ..data.readers import read_test_ids

    labels = real_labels(str(shared / "train.csv.zip"))
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # noqa: E731  (GB; Linux gives kB)
    out, before = {"labelled": len(labels), "dim": IdNeighbours.fit(labels.ids[:1], labels.y[:1], spec).dim}, rss()
    t0 = time.perf_counter()
    block, cols = fit_neighbours(labels.ids, labels.y, np.ones(len(labels), bool), 0, spec)
    out["fit_out_of_fold_s"], out["columns_gb"] = time.perf_counter() - t0, cols.nbytes / 2**30
    del cols
    test_ids = read_test_ids(shared)
    t0 = time.perf_counter()
    block.features(test_ids)
    out["test_s"], out["test"] = time.perf_counter() - t0, len(test_ids)
    ids = np.random.default_rng(0).integers(0, 8_500_000, archive)
    t0 = time.perf_counter()
    for s in range(0, archive, chunk):
        block.features(ids[s:s + chunk])
    out["archive"], out["archive_s"], out["archive_chunk"] = archive, time.perf_counter() - t0, chunk
    out["peak_rss_gb"], out["rss_before_gb"] = rss(), before
    out["state_mb"] = sum(v.numel() * v.element_size() for v in block.state().values()
                          if isinstance(v, torch.Tensor)) / 2**20
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default="clusters,placeless")
    ap.add_argument("--orders", default="real,shuffled")
    ap.add_argument("--size", default="full", help="full, quarter or LABELLED/TEST")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--heads", default="linear,mlp")
    ap.add_argument("--inputs", default="img-txt-loc", choices=("img-txt-loc", "img-txt"),
                    help="img-txt-loc: image + title + location + location priors + Fourier features (the default"
                         " variants' input); img-txt: image + title")
    ap.add_argument("--blocks", nargs="+", default=["none", "default"], help="names or NAME=JSON (see above)")
    ap.add_argument("--far", default="256,inf", help="exclusion radii for far test photos (inf: no neighbour)")
    ap.add_argument("--out", default="bench-cache/neighbours.json")
    ap.add_argument("--shared", default=str(SHARED), help="folder with the real train.csv.zip")
    ap.add_argument("--decode-only", action="store_true", help="re-measure the decoders of --out's records on"
                    " their kept probabilities (nothing trained)")
    ap.add_argument("--cost", type=int, default=0, metavar="ARCHIVE",
                    help="only measure the block's seconds and memory at the real scale, streaming ARCHIVE ids")
    args = ap.parse_args(argv)
    if args.cost:
        print(json.dumps(cost(Path(args.shared), next(s for s in parse_blocks(args.blocks).values() if s), args.cost), indent=1))
        return 0
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    far = [GAP_CAP if r == "inf" else int(r) for r in args.far.split(",") if r]
    blocks = parse_blocks(args.blocks)
    out = Path(args.out)
    records = json.loads(out.read_text())["records"] if out.exists() else []
    done = {(r["world"], r["head"], r["block"]) for r in records}
    if args.decode_only:
        redecode(records, out, Path(args.shared), far)
        out.write_text(json.dumps({"args": vars(args), "records": records}, indent=1))
        print(table(records, far))
        return 0
    for seed in map(int, args.seeds.split(",")):
        for family in args.families.split(","):
            for order in args.orders.split(","):
                t0 = time.perf_counter()
                w = make_world(family, order, args.size, seed, Path(args.shared), args.inputs)
                say(f"{w.name}: {int(w.labelled.sum())} labelled, {int(w.test.sum())} test ({time.perf_counter() - t0:.0f} s)")
                near = neighbour_indexes(w, far)
                for name, spec in blocks.items():
                    if all((w.name, h, name) in done for h in args.heads.split(",")):
                        continue
                    cols = block_columns(w, spec, seed, far)
                    for head in args.heads.split(","):
                        if (w.name, head, name) in done:
                            continue
                        rec = run_head(w, head, name, cols, far, near, seed, out.with_suffix(".probs"))
                        rec["far_radii"] = far
                        records = [r for r in records if (r["world"], r["head"], r["block"]) != (w.name, head, name)]
                        records.append(rec)
                        say(f"  {head} {name}: test {rec['test']} ({rec['seconds']:.0f} s, epoch {rec['best_epoch']})")
                        out.parent.mkdir(parents=True, exist_ok=True)
                        out.write_text(json.dumps({"args": vars(args), "records": records}, indent=1))
                    del cols
                del w
    print(table([r for r in records if r["world"].split("/")[0] in args.families.split(",")], far))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
