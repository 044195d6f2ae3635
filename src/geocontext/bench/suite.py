"""`make bench`: the kit's speed and decoding figures at the competition's real scale, in one run.

Sections (each returns a dict; `markdown` turns them into BENCHMARKS.md):
  training   seconds per epoch and time to the best hold-out epoch, ours against the notebook-style
             loop, linear and MLP heads on image + title + location, with the arithmetic limit
  run        `geocontext run` end to end with the default settings: wall time and peak memory
  tuning     200 Optuna trials of per-tag thresholds on the hold-out (SQLite storage)
  predict    `geocontext predict` from the trained run: tag and package the 135,489 test photos
  embedding  photos/s of the embedding stage against the one-photo-at-a-time loop
  decoders   honest hold-out exact match of each decoder and the ensemble, with the spread over seeds,
             on features built for the real label file and on a fully generated data set
  types_read reading the type-tag dataset, plain .jsonl against the published .jsonl.gz (types_read.py)
"""
from __future__ import annotations

import json
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..console import say
from ..data.readers import read_train_labels
from ..decoding.select import DecodeConfig, choose
from ..decoding.thresholds import exact_match_at, tune_thresholds
from ..pipeline.config import RunConfig
from ..pipeline.prepare import prepare
from ..pipeline.run_folder import RunFolder
from ..training.config import TrainConfig, VariantConfig, default_variants
from ..training.inputs import FeatureSpec, Standardizer, fuse
from . import data as bench_data
from .measure import measure_command
from .training import compare, matmul_gflops


@dataclass
class BenchConfig:
    cache: Path = Path("bench-cache")
    smoke: bool = False  # tiny sizes: proves every section still runs (the test suite uses it)
    baseline_epochs: int = 30  # at most, like ours; both stop after `patience` epochs without a better hold-out
    tuning_trials: int = 200
    decode_seeds: int = 5  # cross-fitting seeds for the decoder spread on the real-label run
    generated_seeds: int = 3  # full runs (split, init, folds) on the generated data set
    generated_rows: tuple[int, int] = (150_000, 30_000)
    embed_photos: int = 96
    embed_repeats: int = 3
    noise: float = 2.0  # generator noise: puts the published-style linear head near its real ~0.3 exact match

    def sizes(self) -> dict:
        if self.smoke:
            return {"n_train": 3000, "n_test": 800}
        return {}


def machine() -> dict:
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    import os

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem, 1), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d")}


def build_data(cfg: BenchConfig) -> tuple[Path, Path, dict]:
    shared = None if cfg.smoke else bench_data.SHARED
    return bench_data.build(cfg.cache / ("smoke" if cfg.smoke else "real"), shared, seed=0, noise=cfg.noise,
                            log=say, **cfg.sizes())


def training(cfg: BenchConfig, data_dir: Path, features_dir: Path) -> dict:
    """Both loops on the default variants' input (image + title + location, fused and standardised)."""
    prep = prepare(data_dir, features_dir, cfg.cache / "split-for-training")
    spec = FeatureSpec()
    x = fuse(spec, prep.train.features, prep.train.rows, prep.train.location)
    x = Standardizer.fit(x, np.flatnonzero(prep.fit_rows)).transform_(x)
    dim = prep.train.features.image.shape[1]
    blocks = (dim + 1, dim + 1, 3)  # image + missing flag, title + missing flag, lat/lon + unknown flag
    results = {"limits_gflops": {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}}
    for vc in default_variants()[:2]:  # linear and MLP without MixUp
        config = vc.train
        if cfg.smoke:
            config = TrainConfig(**{**config.to_dict(), "epochs": 2})
        say(f"training: {config.head}, ours then the notebook-style loop (at most {cfg.baseline_epochs} epochs)")
        results[config.head] = compare(x[prep.fit_rows], prep.labels.y[prep.fit_rows], prep.labels.ids[prep.fit_rows],
                                       x[prep.holdout], prep.y_holdout, prep.labels.ids[prep.holdout], blocks, config,
                                       2 if cfg.smoke else cfg.baseline_epochs)
    return results


def measured(cfg: BenchConfig, name: str, argv: list[str]) -> dict:
    """A geocontext command in a fresh process, with its wall time and peak memory."""
    return measure_command(argv, cfg.cache / f"{name}.measure.json", cfg.cache / f"{name}.log")


def end_to_end(cfg: BenchConfig, data_dir: Path, features_dir: Path) -> dict:
    out = cfg.cache / ("run-smoke" if cfg.smoke else "run-default")
    argv = ["run", "--data", str(data_dir), "--features", str(features_dir), "--out", str(out)]
    if cfg.smoke:
        small = RunConfig(variants=[VariantConfig(v.name, v.features, TrainConfig(**{**v.train.to_dict(), "epochs": 2}))
                                    for v in default_variants()], decode=DecodeConfig(global_trials=5, per_tag_trials=5))
        (cfg.cache / "smoke-config.json").write_text(json.dumps(small.to_dict()))
        argv += ["--config", str(cfg.cache / "smoke-config.json")]
    if out.exists():  # always a fresh run: a rerun would reuse finished variants and time nothing
        import shutil
        shutil.rmtree(out)
    say(f"run end to end: {' '.join(argv)}")
    result = measured(cfg, "run", argv)
    result["report"] = RunFolder(out).read_report()
    result["out"] = str(out)
    return result


def tuning(cfg: BenchConfig, run_dir: Path, report: dict) -> dict:
    """Per-tag thresholds by Optuna on the whole hold-out, fresh SQLite study, the final choice's members."""
    members = report["final"]["members"]
    folder = RunFolder(run_dir)
    probs = np.mean([np.load(folder.member(m).holdout_probs) for m in members], axis=0)
    split = np.load(folder.split_npz)
    labels = read_train_labels(report_data_dir(run_dir))
    y = labels.y[np.isin(labels.ids, split["holdout_ids"])]
    db = cfg.cache / "tuning.db"
    db.unlink(missing_ok=True)
    trials = 10 if cfg.smoke else cfg.tuning_trials
    start = time.perf_counter()
    decoder = tune_thresholds(probs, y, per_tag=True, n_trials=trials, seed=0, storage=f"sqlite:///{db.resolve()}",
                              study_name="bench")
    seconds = time.perf_counter() - start
    return {"rows": len(y), "trials": trials, "seconds": seconds, "storage": "SQLite (Optuna RDB)",
            "exact_match_on_tuning_rows": exact_match_at(probs, y, decoder.thresholds),
            "note": "per-tag study: global study (trials/4, min 30) + enqueued starts + TPE"}


def report_data_dir(run_dir: Path) -> Path:
    return Path(RunFolder(run_dir).read_run_info()["data"])


def predicting(cfg: BenchConfig, run_dir: Path, data_dir: Path, features_dir: Path) -> dict:
    target = cfg.cache / "predict.csv.zip"
    times = []
    for _ in range(1 if cfg.smoke else 3):
        times.append(measured(cfg, "predict", ["predict", "--run", str(run_dir), "--data", str(data_dir),
                                                "--features", str(features_dir), "--out", str(target)]))
    return {"wall_s_median": statistics.median(t["wall_s"] for t in times), "wall_s_all": [t["wall_s"] for t in times],
            "peak_rss_gb": max(t["peak_rss_gb"] for t in times), "note": "includes reading features, metadata and grid references"}


def embedding(cfg: BenchConfig) -> dict | None:
    try:
        from .embedding import markdown, run_benchmark
    except ImportError:
        return None
    import contextlib
    import io

    photos, repeats = (4, 1) if cfg.smoke else (cfg.embed_photos, cfg.embed_repeats)
    with contextlib.redirect_stdout(io.StringIO()):
        result = run_benchmark(photos=photos, repeats=repeats)
    result["markdown"] = markdown(result)
    return result


def encoders(cfg: BenchConfig) -> dict:
    """Photos/s and titles/s per encoder family, and the Kaggle GPU estimate (smoke: one tiny model)."""
    import contextlib
    import io

    from .encoders import markdown, run_encoders

    kw = {}
    if cfg.smoke:
        tiny = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
                "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}
        path = cfg.cache / "gc-smoke-encoder.json"
        path.write_text(json.dumps(tiny))
        kw = {"photos": 2, "titles": 8, "repeats": 1, "models": [str(path)]}
    with contextlib.redirect_stdout(io.StringIO()):
        result = run_encoders(**kw)
    result["markdown"] = markdown(result)
    return result


def decoder_spread(cfg: BenchConfig, run_dir: Path, report: dict) -> dict:
    """Re-run the honest choice on the run's saved hold-out probabilities with other cross-fitting seeds."""
    folder = RunFolder(run_dir)
    names = list(report["variants"])
    probs = {n: np.load(folder.member(n).holdout_probs) for n in names}
    split = np.load(folder.split_npz)
    labels = read_train_labels(report_data_dir(run_dir))
    held = np.isin(labels.ids, split["holdout_ids"])
    config = RunConfig()
    fit_rows = ~held & (labels.y.sum(axis=1) <= config.max_tags)
    per_seed = [{k: v["exact_match"] for k, v in report["candidates"].items()}]
    for seed in range(1, 2 if cfg.smoke else cfg.decode_seeds):
        decode = DecodeConfig(**{**config.decode.to_dict(), "seed": seed})
        _, cands, _ = choose(probs, labels.y[held], labels.ids[held], labels.y[fit_rows], decode, None)
        per_seed.append({k: v["exact_match"] for k, v in cands.items()})
    return summarise(per_seed)


def summarise(per_seed: list[dict]) -> dict:
    out = {}
    for name in per_seed[0]:
        vals = [s[name] for s in per_seed]
        out[name] = {"mean": float(np.mean(vals)), "min": float(np.min(vals)), "max": float(np.max(vals)),
                     "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0, "seeds": len(vals)}
    return out


def generated(cfg: BenchConfig) -> dict:
    """Full runs on a generated label file at three seeds (hold-out split, init and folds all move)."""
    n_train, n_test = (2000, 500) if cfg.smoke else cfg.generated_rows
    per_seed = []
    for seed in range(1 if cfg.smoke else cfg.generated_seeds):
        data_dir, features_dir, _ = bench_data.build(cfg.cache / f"generated-{seed}", None, seed=seed, n_train=n_train,
                                                     n_test=n_test, noise=cfg.noise, log=say)
        base = RunConfig(seed=seed)
        variants = [VariantConfig(v.name, v.features, TrainConfig(**{**v.train.to_dict(), "seed": seed,
                                                                    **({"epochs": 2} if cfg.smoke else {})}))
                    for v in base.variants]
        decode = DecodeConfig(**{**base.decode.to_dict(), "seed": seed,
                                 **({"global_trials": 5, "per_tag_trials": 5} if cfg.smoke else {})})
        out = cfg.cache / f"generated-{seed}" / "run"
        config = RunConfig(variants=variants, seed=seed, decode=decode)
        (cfg.cache / f"generated-{seed}" / "config.json").write_text(json.dumps(config.to_dict()))
        say(f"generated data set, seed {seed}: {n_train} + {n_test} photos")
        measured(cfg, f"generated-{seed}", ["run", "--data", str(data_dir), "--features", str(features_dir),
                                            "--out", str(out), "--config",
                                            str(cfg.cache / f"generated-{seed}" / "config.json")])
        report = RunFolder(out).read_report()
        per_seed.append({k: v["exact_match"] for k, v in report["candidates"].items()})
        per_seed[-1]["(final choice)"] = report["final"]["exact_match"]
    return {"rows": [n_train, n_test], "spread": summarise(per_seed)}


def types_reading(cfg: BenchConfig) -> dict:
    from .types_read import PUBLISHED_ROWS, markdown, run_benchmark

    rows, repeats = (2000, 1) if cfg.smoke else (PUBLISHED_ROWS, 3)
    result = run_benchmark(cfg.cache / "types", rows, repeats)
    result["markdown"] = markdown(result)
    return result
