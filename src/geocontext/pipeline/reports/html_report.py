"""OUT/report.html: one self-contained page (figures and thumbnails inlined, no JavaScript) showing where
a run fails: every candidate's honest score, per-tag precision/recall/F1, which tags replace which, the
calibration of the final probabilities, tag-set sizes, and a gallery of hold-out photos per tag.

`run` writes it at the end; `geocontext report --run OUT [--data DATA]` rebuilds it from the saved run."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...console import say
from ...data.readers import read_tag_names
from ...decoding.decoders import ThresholdDecoder
from ...decoding.metrics import exact_match
from . import plots
from .diagnostics import (
    Holdout,
    confusion,
    load_holdout,
    per_tag,
    reliability,
    set_sizes,
)
from .gallery import gallery, has_photos
from ..run_folder import RunFolder
from .html_page import bar, esc, img, page, table, write_page
from .markdown import BAND_HEADER, band_rows


def _candidates(report: dict) -> str:
    final = report["final"]["name"]
    ranked = sorted(report["candidates"].items(), key=lambda kv: -kv[1]["exact_match"])
    rows = [[k, " + ".join(v["members"]), v["decoder"], f"{v['exact_match']:.4f}", f"{v['macro_f1']:.4f}",
             " / ".join(f"{x:.4f}" for x in v["fold_exact_match"])] for k, v in ranked]
    cands = table(["candidate", "members", "decoder", "exact match", "macro F1", "per fold"], rows, {3, 4},
                  row_class=lambda r: "final" if ranked[r][0] == final else "")
    variants = [[name, f"{v['holdout_at_0.5']['exact_match']:.4f}", f"{v['holdout_at_0.5']['macro_f1']:.4f}",
                 v.get("best_epoch", "–"), v.get("seconds", "–")] for name, v in report.get("variants", {}).items()]
    return ('<p class="note">Every score is cross-fitted on the hold-out: what a candidate tunes (weights,'
            " thresholds, prior) is fitted on one half and scored on the other. The highlighted row is the final"
            f" choice, refitted on the whole hold-out for the test set.</p>{cands}<h3>Variants (at 0.5)</h3>"
            + table(["variant", "exact match", "macro F1", "best epoch", "train s"], variants, {1, 2, 3, 4}))


def _thresholds(h: Holdout) -> np.ndarray | None:
    decoder = h.choice.decoder
    if isinstance(decoder, ThresholdDecoder):
        return np.broadcast_to(decoder.thresholds, (len(h.columns),))
    return None


def _per_tag(h: Holdout, names: list[str], stats: dict, gallery_on: bool) -> str:
    thresholds = _thresholds(h)
    n = len(h.ids)
    rows = []
    for j in np.argsort(stats["f1"], kind="stable"):
        name = esc(names[j])
        link = f'<a href="#gallery-{esc(h.columns[j])}">{name}</a>' if gallery_on else name
        row = [link, esc(h.columns[j]), f"{stats['support'][j]} ({100 * stats['support'][j] / max(n, 1):.1f}%)",
               str(stats["predicted"][j]), bar(stats["precision"][j]), bar(stats["recall"][j]), bar(stats["f1"][j])]
        if thresholds is not None:
            row.append(f"{thresholds[j]:.3f}")
        rows.append(row)
    header = ["tag", "column", "true (share)", "predicted", "precision", "recall", "F1"]
    header += ["threshold (final)"] if thresholds is not None else []
    return ('<p class="note">Cross-fitted hold-out tags of the final choice, worst F1 first. Precision is'
            " undefined (–) for a tag never predicted.</p>" + table(header, rows, {2, 3}, raw=True))


def _top(counts: np.ndarray, total: int, names: list[str], k: int = 3) -> str:
    order = [i for i in np.argsort(-counts, kind="stable")[:k] if counts[i] > 0]
    if not order:
        return "–"
    return "; ".join(f"{esc(names[i])} {counts[i]} ({100 * counts[i] / max(total, 1):.0f}%)" for i in order)


def _confusion(h: Holdout, names: list[str], stats: dict) -> str:
    matrix = confusion(h.y, h.predicted)
    missed = stats["support"] - stats["true_positive"]
    added = stats["predicted"] - stats["true_positive"]
    rows = [[esc(names[j]), str(missed[j]), _top(matrix[j], missed[j], names), str(added[j]),
             _top(matrix[:, j], added[j], names)] for j in np.argsort(-(missed + added), kind="stable")]
    return ('<p class="note">On a hold-out photo where tag A was missed and tag B wrongly added, B was predicted'
            " instead of A. Per tag: its misses and the tags predicted instead (share of its misses), and its"
            " wrong additions with the true tags it stole them from (share of its wrong additions). Most"
            " errors first.</p>"
            + table(["tag", "missed", "predicted instead", "wrongly added", "steals from"], rows, {1, 3}, raw=True)
            + img(plots.confusion_plot(matrix, names), "tag confusion matrix"))


def _calibration(h: Holdout) -> str:
    rel = reliability(h.probs, h.y)
    note = ('<p class="note">Each bin holds the (photo, tag) pairs whose final probability falls in it; a'
            " well-calibrated model's points lie on the diagonal. The probabilities are the final choice's"
            " combination of its members on the hold-out (ensemble weights fitted on the hold-out, so for an"
            f" ensemble this is slightly optimistic). Expected calibration error: <b>{rel['ece']:.4f}</b>.</p>")
    return note + img(plots.reliability_plot(rel, f"Reliability of {h.choice.name}"), "reliability plot")


def _set_sizes(h: Holdout) -> str:
    cross = set_sizes(h.y, h.predicted)
    true_sizes, pred_sizes = np.flatnonzero(cross.sum(axis=1)), np.flatnonzero(cross.sum(axis=0))  # sizes seen
    rows = [[str(a)] + [str(cross[a, b]) if cross[a, b] else "" for b in pred_sizes] + [str(cross[a].sum())]
            for a in true_sizes]
    rows.append(["all"] + [str(cross[:, b].sum()) for b in pred_sizes] + [str(cross.sum())])
    exact = exact_match(h.y, h.predicted)
    return (img(plots.set_size_plot(cross), "tag set sizes, true and predicted")
            + f'<p class="note">Rows: true number of tags; columns: predicted number (cross-fitted); sizes that'
            f" occur. Exact match {exact:.4f}.</p>"
            + table(["true \\ predicted"] + [str(b) for b in pred_sizes] + ["all"], rows,
                    set(range(1, len(pred_sizes) + 2))))


def _header(run_dir: Path, report: dict, h: Holdout, data_dir) -> list[str]:
    final = report["final"]
    lines = [f"Final choice <b>{esc(final['name'])}</b>: hold-out exact match <b>{final['exact_match']:.4f}</b>,"
             f" macro F1 {final['macro_f1']:.4f} (nested estimate: each row scored by a choice made without it)",
             f"{len(h.ids)} hold-out photos, {len(h.columns)} tags · run folder {esc(run_dir)}"
             + (f" · photos from {esc(data_dir)}" if data_dir else "")]
    lines += [esc(w) for w in report.get("warnings", [])]
    return lines


def build_html(run_dir, data_dir=None, per_kind: int = 8) -> str:
    """The report page of a finished run; `data_dir` (default: the run's own DATA, when it still exists)
    supplies tag names, titles and photos."""
    folder = RunFolder(run_dir)
    run_dir = folder.path
    if per_kind < 0:
        raise ValueError(f"photos per tag and kind must be 0 or more, got {per_kind}")
    h = load_holdout(run_dir)
    report = folder.read_report()
    recorded = None
    if data_dir is None:
        data_dir, recorded = folder.recorded_data(h.info)
    # A run folder holds no tags-top.csv: without DATA the kit's own tag names are used.
    tag_names = read_tag_names(data_dir if data_dir is not None else run_dir)
    names = [tag_names.get(c, c) for c in h.columns]
    stats = per_tag(h.y, h.predicted)
    photos = has_photos(data_dir)
    if photos:
        shown = gallery(h, Path(data_dir), folder.thumbs, names, stats["f1"], per_kind)
    else:
        where = (f"{data_dir} has no train_images/ folder" if data_dir else
                 f"the run's DATA, {recorded}, is not there (pass --data)" if recorded else "no DATA folder given (--data)")
        shown = f'<p class="note">No gallery: {esc(where)}.</p>'
    bands = band_rows(report)
    sections = [("candidates", "Final choice and candidates", _candidates(report)),
                *([("bands", "By gap band", '<p class="note">A photo\'s gap is the id distance to its nearest labelled'
                    " photo; each band's choice and estimate are made on hold-out rows given the test photos' gaps.</p>"
                    + table(BAND_HEADER, bands, {1, 2, 3}))] if bands else []),
                ("per-tag", "Per-tag precision, recall, F1", _per_tag(h, names, stats, photos)),
                ("confusion", "Tag confusion", _confusion(h, names, stats)),
                ("calibration", "Calibration", _calibration(h)),
                ("set-sizes", "Tag-set sizes", _set_sizes(h)),
                ("gallery", "Photos per tag", shown)]
    return page(f"Run report: {run_dir.name}", _header(run_dir, report, h, data_dir), sections)


def write_html_report(run_dir, data_dir=None, per_kind: int = 8) -> Path:
    path = write_page(RunFolder(run_dir).report_html, build_html(run_dir, data_dir, per_kind))
    say(f"report: {path}")
    return path
