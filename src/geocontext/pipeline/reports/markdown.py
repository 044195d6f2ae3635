"""The run's human-readable report: report.md with tables, a per-tag F1 chart and the decoder's settings."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...decoding.decoders import LabelSetDecoder, ThresholdDecoder
from ...decoding.metrics import per_tag_f1
from ...writing import atomic_file
from ..run_folder import RunFolder


def plot_per_tag_f1(path: Path, f1: np.ndarray, names: list[str], prevalence: np.ndarray, title: str) -> Path:
    import matplotlib  # here, not at the top: `predict` imports this module and never plots

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(f1)
    fig, ax = plt.subplots(figsize=(8, 11))
    bars = ax.barh(np.arange(len(f1)), f1[order], color=plt.cm.viridis(0.25 + 0.6 * f1[order]))
    ax.set_yticks(np.arange(len(f1)), [f"{names[i]} ({100 * prevalence[i]:.1f}%)" for i in order], fontsize=7)
    ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=2)
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("hold-out F1 (cross-fitted; share of hold-out photos with the tag in brackets)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    atomic_file(path, lambda h: fig.savefig(h, format="png", dpi=110))
    plt.close(fig)
    return path


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def decoder_table(decoder, columns: list[str], names: dict[str, str], f1: np.ndarray) -> str:
    if isinstance(decoder, ThresholdDecoder):
        t = np.broadcast_to(decoder.thresholds, (len(columns),))
        return _table(["tag", "column", "threshold", "hold-out F1"],
                      [[names.get(c, c), c, f"{t[j]:.3f}", f"{f1[j]:.3f}"] for j, c in enumerate(columns)])
    if isinstance(decoder, LabelSetDecoder):
        rows = [[i + 1, ", ".join(names.get(columns[j], columns[j]) for j in np.flatnonzero(s)),
                 f"{100 * np.exp(decoder.log_prior[i]):.2f}%"] for i, s in enumerate(decoder.sets[:15])]
        own = ("never: only known sets are output" if decoder.novel_penalty is None
               else f"when it scores more than {decoder.novel_penalty:g} above the best known set")
        return (f"Label-set decoding over the {len(decoder.sets)} most frequent training tag sets, each member costing "
                f"logit({decoder.own_threshold:.3f}), prior weight {decoder.prior_weight:g}. A photo's own set (tags at "
                f"or above {decoder.own_threshold:.3f}) that is no known set is used {own}. The commonest sets:\n\n"
                + _table(["rank", "tag set", "share of training photos"], rows))
    return ""


BAND_HEADER = ["gap band", "test photos", "hold-out rows", "hold-out exact match", "choice", "chosen on"]


def band_rows(report: dict) -> list[list[str]]:
    """Per gap band (decoding.bands): the share of test photos in it and its nested estimate and choice."""
    return [[b["describe"], f"{100 * b['test_share']:.1f}%", str(b["selection_rows"]),
             "-" if b["exact_match"] is None else f"{b['exact_match']:.4f}", b["choice"], b["decided_on"]]
            for b in report["final"].get("bands") or ()]


def write_report(out: RunFolder, report: dict, choice, y_holdout: np.ndarray, predicted: np.ndarray,
                 columns: list[str], names: dict[str, str]) -> Path:
    """report.md (linked PNG chart, tables) in the run folder."""
    f1 = per_tag_f1(y_holdout, predicted)
    plot_per_tag_f1(out.per_tag_f1_png, f1, [names.get(c, c) for c in columns], y_holdout.mean(axis=0),
                    f"Per-tag F1 of {choice.name}")
    final = report["final"]
    candidates = sorted(report["candidates"].items(), key=lambda kv: -kv[1]["exact_match"])
    variants = [[name, f"{v['holdout_at_0.5']['exact_match']:.4f}", f"{v['holdout_at_0.5']['macro_f1']:.4f}",
                 v.get("best_epoch", "-"), v.get("seconds", "-")] for name, v in report["variants"].items()]
    inputs = report["inputs"]
    lines = [
        "# Run report", "",
        f"**Final choice: {final['name']}**, hold-out exact match **{final['exact_match']:.4f}**, macro F1 "
        f"{final['macro_f1']:.4f}: a nested estimate, each row scored by a whole choice (members, decoder, settings) "
        f"made without it, on rows that chose no epoch. Candidate scores below are cross-fitted (tuned on one half, "
        f"scored on the other) but the winner's ({final.get('selection_exact_match', final['exact_match']):.4f}) is the "
        "best of many on the same rows, hence optimistic.",
        "", f"Submission: `{Path(report['submission']).name}` ({report['rows']['test']} test photos).", "",
        *(["## By gap band", "", "A photo's gap is the id distance to its nearest labelled photo. Each band's"
           " choice and estimate are made on hold-out rows given the test photos' gaps (or, for the far band when"
           " the test leaves it thin, on rows reading no labelled neighbour).", "",
           _table(BAND_HEADER, band_rows(report)), ""] if band_rows(report) else []),
        "## Candidates (members x decoder)" + (" of the main band" if band_rows(report) else ""), "",
        _table(["candidate", "exact match", "macro F1", "per fold"],
               [[k, f"{v['exact_match']:.4f}", f"{v['macro_f1']:.4f}", " / ".join(f"{x:.4f}" for x in v["fold_exact_match"])]
                for k, v in candidates]),
        "", "## Variants", "",
        _table(["variant", "exact match @0.5", "macro F1 @0.5", "best epoch", "train s"], variants),
        "", "## Per-tag F1", "", f"![per-tag F1]({out.per_tag_f1_png.name})", "",
        "## Decoder settings", "", decoder_table(choice.decoder, columns, names, f1), "",
        "## Inputs", "",
        _table(["split", "photos", "missing images", "missing titles", "unknown locations", "malformed metadata lines"],
               [[s, v["rows"], v["missing_images"], v.get("missing_titles", 0), v["locations"]["rows"] - v["locations"]["known"],
                 v["metadata"]["malformed_lines"]] for s, v in inputs.items()]),
        "", f"Rows: {report['rows']['train_used']} trained on, {report['rows']['holdout']} held out, "
            f"{report['rows']['dropped_many_tags']} dropped for having too many tags.", "",
        "## Timings (s)", "", _table(["step", "seconds"], [[k, v] for k, v in report["timings_s"].items()]), "",
    ]
    atomic_file(out.report_md, lambda h: h.write("\n".join(lines).encode()))
    return out.report_md
