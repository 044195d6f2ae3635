"""The benchmark in miniature, so `make bench` cannot rot between the runs that fill BENCHMARKS.md."""
import dataclasses
import json

from geocontext.bench.__main__ import main
from geocontext.training.config import default_variants


def test_smoke_benchmark_fills_every_section(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# old\n\n## 2. stale\n\n## 10. Measured by hand\n\nkept as it is\n")
    assert main(["--smoke", "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "## 2. stale" not in text and text.endswith("## 10. Measured by hand\n\nkept as it is\n")
    for heading in ("## Targets", "## 1. Training", "## 2. `geocontext run`", "## 3. Threshold tuning",
                    "## 4. Predicting", "## 5. Embedding", "### Encoders", "## 6. Decoders", "### Generated data set",
                    "## 7. Reading the type-tag dataset", "## 8. Predict at archive scale", "## 9. One context labeller worker"):
        assert heading in text, heading
    results = json.loads((tmp_path / "cache" / "results.json").read_text())
    training = results["training"]
    for head in ("linear", "mlp"):
        assert training[head]["ours"]["epoch_s_median"] > 0 and training[head]["baseline"]["epoch_s_median"] > 0
    assert results["run"]["exit_code"] == 0 and results["run"]["peak_rss_gb"] > 0
    assert results["embedding"]["photos_per_s"]["naive"] > 0
    assert f"ensemble({len(default_variants())}) / label_set" in results["decoders_real"]
    assert results["types_read"]["rows_read"]["whole"] == {"jsonl": 2000, "jsonl.gz": 2000}
    assert all(v["peak_rss_gb"] > 0 for v in results["archive"]["sizes"].values())
    assert results["labeller"]["photos_per_s"] > 0 and results["labeller"]["records_posted"] > 0


def test_encoder_benchmark_reports_rates_and_a_stated_estimate(tmp_path):
    from geocontext.bench.encoders import markdown, run_encoders

    tiny = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}
    path = tmp_path / "gc-bench-tiny.json"
    path.write_text(json.dumps(tiny))
    result = run_encoders(photos=2, repeats=1, models=[str(path)], titles=8)
    row = result["encoders"][str(path)]
    assert row["photos_per_s"] > 0 and row["titles_per_s"] > 0 and row["image_gflops"] > 0
    assert row["kaggle_t4_hours_estimate"] > 0 and row["bound"] in ("GPU compute", "JPEG decoding")
    text = markdown(result)
    assert "ESTIMATE" in text and "790k photos (estimate)" in text


def test_contention_benchmark_runs_the_same_run_alone_and_beside_a_busy_process(tmp_path, capsys):
    from geocontext.bench.contention import main as contention

    config = tmp_path / "quick.json"  # a linear head and one decoder: the benchmark's machinery, quickly
    config.write_text(json.dumps({"variants": [{"name": "linear", "features": {}, "train": {"head": "linear", "epochs": 3}}],
                                  "refit": False, "decode": {"decoders": ["0.5"], "ensemble": False}}))
    assert contention(["--cache", str(tmp_path), "--repeats", "1", "--train", "160", "--no-spin", "--config",
                       str(config)]) == 0
    results = json.loads((tmp_path / "contention.json").read_text())
    assert results["kit alone"]["wall_s"] > 0 and results["kit busy"]["linear_s"] > 0
    assert results["kit slowdown"]["wall_s"] > 0 and "load_before" in results
    assert "x slower beside one busy process" in capsys.readouterr().out


def test_a_cached_archive_run_with_other_default_variants_is_trained_again(tmp_path, monkeypatch):
    from geocontext.bench import archive
    from geocontext.bench import data as bench_data
    from geocontext.pipeline import run as run_module

    names = [v.name for v in default_variants()]
    trained = []
    monkeypatch.setattr(bench_data, "build", lambda *a, **k: (tmp_path / "d", tmp_path / "f", None))

    def fake_run(data, features, out, config):
        trained.append([v.name for v in config.variants])
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps({"config": {"variants": [dataclasses.asdict(v) for v in config.variants]}}))

    monkeypatch.setattr(run_module, "run", fake_run)
    out = tmp_path / "archive-run-20000"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"config": {"variants": [{"name": "linear-img-txt-loc-pri-rff"}]}}))
    assert archive.trained_run(tmp_path) == out and trained == [names]
    assert archive.trained_run(tmp_path) == out and trained == [names]  # today's defaults: reused
    made = json.loads((out / "run.json").read_text())
    made["config"]["variants"][0]["train"]["lr"] *= 2  # same names, other settings: trained again
    (out / "run.json").write_text(json.dumps(made))
    assert archive.trained_run(tmp_path) == out and trained == [names, names]
