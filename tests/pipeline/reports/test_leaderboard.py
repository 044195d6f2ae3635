"""The leaderboard's text table (issue 31, item 7): `linear-img-txt-loc-pri-rff-nb` was cut to hide its
`-nb`, and `neighbour_sets` overflowed its column and pushed the figures out of line."""
from geocontext.pipeline.reports.leaderboard import format_table


def row(run, variant, decoder, exact, final=False, seconds=812.3):
    return {"run": run, "variant": variant, "decoder": decoder, "exact_match": exact, "macro_f1": 0.5,
            "seconds": seconds, "final": final}


def test_columns_fit_their_longest_cell_and_stay_aligned():
    rows = [row("runs/r1", "linear-img-txt-loc-pri-rff-nb", "neighbour_sets", 0.46191, final=True),
            row("work/demo/a-run-folder-with-a-longer-name-than-before", "ensemble of 3", "0.5", 0.4, seconds=None)]
    header, rule, first, second, note = format_table(rows).splitlines()
    assert " linear-img-txt-loc-pri-rff-nb " in first and " neighbour_sets " in first
    assert " work/demo/a-run-folder-with-a-longer-name-than-before " in second
    assert first.index("linear-img") == header.index("variant") == second.index("ensemble")  # text: left-aligned
    assert first.index("neighbour_sets") == header.index("decoder") == second.index(" 0.5 ") + 1
    end = header.index("exact") + len("exact")  # figures: right-aligned under their header
    assert first.index("0.4619") + len("0.4619") == end == second.index("0.4000") + len("0.4000")
    assert first.endswith(" 812") and second.endswith(" -") and len(first) == len(second) == len(header) == len(rule)
    assert first.startswith("1* ") and second.startswith("2  ") and note.startswith("* the run's final choice")


def test_an_empty_board_is_a_header():
    assert format_table([]).splitlines()[0].split() == ["#", "run", "variant", "decoder", "exact", "macro", "F1", "time", "s"]
