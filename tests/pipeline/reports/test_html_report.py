"""report.html (where a run fails, with photos), `geocontext report`, `leaderboard --html`; the page is
opened in a real headless Chromium."""
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from browser import broken_images, console_errors, start_browser

from geocontext.cli import main
from geocontext.competition import BY_COLUMN, image_path
from geocontext.data.readers import read_metadata
from geocontext.decoding.select import DecodeConfig
from geocontext.pipeline.config import RunConfig
from geocontext.pipeline.reports.diagnostics import confusion, per_tag, reliability, set_sizes
from geocontext.pipeline.reports.gallery import thumbnail
from geocontext.pipeline.run import run
from geocontext.training.config import TrainConfig, VariantConfig

SECTIONS = {"candidates": "Final choice and candidates", "per-tag": "Per-tag precision, recall, F1",
            "confusion": "Tag confusion", "calibration": "Calibration", "set-sizes": "Tag-set sizes",
            "gallery": "Photos per tag"}


@pytest.fixture(scope="module")
def finished(demo_data, demo_features, tmp_path_factory):
    out = tmp_path_factory.mktemp("htmlrun") / "run"
    config = RunConfig(variants=[VariantConfig("linear", train=TrainConfig(head="linear", epochs=6, lr=5e-3))],
                       decode=DecodeConfig(decoders=("0.5", "global"), global_trials=6))
    return out, run(demo_data, demo_features, out, config)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_browser(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def _open(browser, path):
    browser.get(path.resolve().as_uri())
    return browser


def test_report_html_renders_with_its_sections_and_photos(finished, demo_data, browser, tmp_path):
    out, report = finished
    assert (out / "report.html").exists() and (out / "holdout.npz").exists()  # written by `run` itself
    page = _open(browser, out / "report.html")
    assert console_errors(page) == [] and broken_images(page) == []
    for anchor, title in SECTIONS.items():
        assert page.find_element("css selector", f"section#{anchor} h2").text == title
    html = page.page_source
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # self-contained: nothing fetched from a network
    assert report["final"]["name"] in page.find_element("css selector", "header").text
    assert len(page.find_elements("css selector", "section#candidates table")[0]
                              .find_elements("css selector", "tbody tr")) == len(report["candidates"])
    assert "Coastal" in page.find_element("css selector", "section#per-tag").text  # readable tag names
    assert len(page.find_elements("css selector", "section#calibration img, section#set-sizes img")) == 2

    tiles = page.find_elements("css selector", "figure.tile")
    photos = page.find_elements("css selector", "figure.tile img")
    missing = page.find_elements("css selector", "figure.tile .nophoto")
    assert len(photos) + len(missing) == len(tiles) and len(photos) > 20 and len(missing) <= 2
    assert {t.get_attribute("class") for t in tiles} == {"tile right", "tile missed", "tile added"}
    ids = [int(t.get_attribute("data-id")) for t in tiles[:10]]
    meta = read_metadata(demo_data, np.array(ids))
    for tile, title, ref in zip(tiles, meta.title, meta.grid_reference):
        caption = tile.find_element("css selector", "figcaption").get_attribute("textContent")
        assert (title or "(no title)") in caption and (ref or "no grid reference") in caption
    # (textContent: most tag blocks are folded, so their text is not rendered.) In tag X's block, a missed photo carries X as a missed chip, a wrongly added one as an added chip.
    for block in page.find_elements("css selector", "section#gallery details")[:10]:
        name = BY_COLUMN[block.get_attribute("id").removeprefix("gallery-")].name
        for kind, chip in (("missed", "miss"), ("added", "extra"), ("right", "ok")):
            for tile in block.find_elements("css selector", f"figure.tile.{kind}"):
                chips = [c.get_attribute("textContent") for c in tile.find_elements("css selector", f".chip.{chip}")]
                assert any(c.rsplit(" ", 1)[0] == name for c in chips), (kind, name, chips)
    assert len(list((out / "thumbs").glob("*.jpg"))) == len({t.get_attribute("data-id") for t in tiles})
    page.save_screenshot(str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_verb_rebuilds_the_same_page_from_the_saved_run(finished, capsys):
    out, _ = finished
    before = (out / "report.html").read_bytes()
    thumbs = {p.name: p.stat().st_mtime_ns for p in (out / "thumbs").glob("*.jpg")}
    (out / "report.html").unlink()
    assert main(["report", "--run", str(out)]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    assert (out / "report.html").read_bytes() == before  # no retraining, nothing recomputed differently
    assert {p.name: p.stat().st_mtime_ns for p in (out / "thumbs").glob("*.jpg")} == thumbs  # made once


def test_report_without_photos_uses_the_given_tag_names(finished, demo_data, tmp_path):
    out, _ = finished
    data = tmp_path / "data"
    data.mkdir()
    text = (demo_data / "tags-top.csv").read_text().replace("Coastal", "Seaside (renamed)")
    (data / "tags-top.csv").write_text(text)
    shutil.copytree(out, tmp_path / "run", ignore=shutil.ignore_patterns("thumbs", "report.html"))
    assert main(["report", "--run", str(tmp_path / "run"), "--data", str(data)]) == 0
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Seaside (renamed)" in html and "No gallery" in html and "<figure" not in html


def test_report_of_a_run_without_holdout_npz_is_a_clear_error(finished, tmp_path, capsys):
    out, _ = finished
    shutil.copytree(out, tmp_path / "old", ignore=shutil.ignore_patterns("holdout.npz", "thumbs"))
    assert main(["report", "--run", str(tmp_path / "old")]) == 2
    err = capsys.readouterr().err
    assert "no holdout.npz" in err and "Traceback" not in err


def test_leaderboard_html_compares_runs_side_by_side(finished, tmp_path, browser, capsys):
    out, report = finished
    other = tmp_path / "other"
    shutil.copytree(out, other, ignore=shutil.ignore_patterns("thumbs"))
    page_path = tmp_path / "pages" / "compare.html"
    assert main(["leaderboard", str(out), str(other), "--html", str(page_path)]) == 0
    assert f"comparison: {page_path}" in capsys.readouterr().out
    page = _open(browser, page_path)
    assert console_errors(page) == [] and broken_images(page) == []
    side = page.find_element("css selector", "section#runs").text
    assert out.name in side and "other" in side and side.count(f"{report['final']['exact_match']:.4f}") == 2
    assert "same hold-out as the first run yes yes" in side
    assert "Coastal" in page.find_element("css selector", "section#per-tag").text
    ranked = page.find_elements("css selector", "section#candidates tbody tr")
    assert len(ranked) == 2 * len(report["candidates"])
    page.find_element("css selector", "section#runs a").click()  # relative link to the first run's report
    assert page.title == f"Run report: {out.name}"


def test_per_tag_figures_match_scikit_learn():
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(0)
    y = (rng.uniform(size=(300, 6)) < 0.3).astype(np.uint8)
    p = (rng.uniform(size=(300, 6)) < 0.3).astype(np.uint8)
    stats = per_tag(y, p)
    precision, recall, f1, support = precision_recall_fscore_support(y, p, zero_division=0)
    np.testing.assert_allclose(stats["precision"], precision)
    np.testing.assert_allclose(stats["recall"], recall)
    np.testing.assert_allclose(stats["f1"], f1)
    assert (stats["support"] == support).all() and (stats["predicted"] == p.sum(axis=0)).all()
    never = per_tag(np.zeros((3, 1)), np.zeros((3, 1)))
    assert np.isnan(never["precision"][0]) and np.isnan(never["f1"][0])


def test_confusion_calibration_and_set_sizes_by_hand():
    y = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]])
    p = np.array([[0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 1, 0]])
    c = confusion(y, p)
    # tag 0 missed on rows 0 and 1, with tag 1 added instead once and tag 2 once; tag 0 stole from nothing
    assert c[0].tolist() == [0, 1, 1] and c[:, 0].tolist() == [0, 0, 0] and c.sum() == 2
    assert set_sizes(y, p).tolist() == [[0, 0, 0], [0, 2, 1], [0, 0, 1]]
    rel = reliability(np.array([[0.05, 0.95], [0.05, 0.95], [0.05, 0.15]]), np.array([[0, 1], [0, 1], [0, 0]]),
                      bins=10)
    assert rel["count"].tolist() == [3, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert rel["share_true"][9] == 1 and rel["mean_prob"][1] == pytest.approx(0.15)
    assert rel["ece"] == pytest.approx((3 * 0.05 + 0.15 + 2 * 0.05) / 6)  # gaps weighted by pairs per bin


def test_thumbnails_are_cached_and_bad_photos_give_none(tmp_path):
    from PIL import Image

    good, damaged = image_path(tmp_path, "train", 123), image_path(tmp_path, "train", 124)
    good.parent.mkdir(parents=True)
    Image.new("RGB", (640, 480), (10, 120, 30)).save(good)
    damaged.write_bytes(good.read_bytes()[:100])
    cache = tmp_path / "thumbs"
    thumb = thumbnail(tmp_path, 123, cache)
    assert Image.open(cache / "123.jpg").size == (190, 143) and thumb == (cache / "123.jpg").read_bytes()
    good.unlink()
    assert thumbnail(tmp_path, 123, cache) == thumb  # from the cache, not the photo
    assert thumbnail(tmp_path, 124, cache) is None and thumbnail(tmp_path, 125, cache) is None
    assert sorted(p.name for p in cache.iterdir()) == ["123.jpg"]


def test_a_run_given_a_relative_data_finds_it_from_any_folder(demo_data, demo_features, tmp_path, monkeypatch):
    """Issue 31, item 2: run.json kept DATA as typed (`"data": "data"`), so `report --run` from another
    folder said "no DATA folder given" though the folder was there."""
    started = tmp_path / "started-here"
    started.mkdir()
    shutil.copytree(demo_data, started / "data", symlinks=True)
    monkeypatch.chdir(started)
    config = RunConfig(variants=[VariantConfig("linear", train=TrainConfig(head="linear", epochs=2, lr=5e-3))],
                       decode=DecodeConfig(decoders=("0.5",)))
    run(Path("data"), demo_features, Path("out"), config)
    info = json.loads((started / "out" / "run.json").read_text())
    assert info["data"] == str(started / "data") and info["data_as_given"] == "data"
    assert info["features"] == str(demo_features.resolve())
    monkeypatch.chdir(tmp_path)
    (started / "out" / "report.html").unlink()
    assert main(["report", "--run", str(started / "out")]) == 0
    html = (started / "out" / "report.html").read_text()
    assert "No gallery" not in html and "<figure" in html
    info["data"] = "work/demo/data"  # a run.json from before: as typed, elsewhere
    (started / "out" / "run.json").write_text(json.dumps(info))
    assert main(["report", "--run", str(started / "out")]) == 0
    assert "No gallery: the run&#x27;s DATA, work/demo/data, is not there (pass --data)" in \
        (started / "out" / "report.html").read_text()
