"""Plain HTML pieces the run report and the leaderboard page share: escaping, tables, inlined images and
one page frame with its stylesheet. No JavaScript: the pages open from disk in any browser, offline."""
from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from ...writing import atomic_file

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d2329;
       background: #f6f7f9; }
header { background: #24394d; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; opacity: .9; }
nav { background: #fff; border-bottom: 1px solid #dde1e6; padding: 8px 32px; position: sticky; top: 0; z-index: 2; }
nav a { margin-right: 16px; color: #24558a; text-decoration: none; }
main { padding: 8px 32px 48px; max-width: 1500px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 6px 20px 16px; margin: 18px 0; }
h2 { font-size: 18px; border-bottom: 1px solid #e4e7eb; padding-bottom: 6px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border-bottom: 1px solid #e6e8eb; padding: 3px 10px; text-align: left; vertical-align: top; }
th { background: #eef1f4; position: sticky; top: 37px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.final td { background: #fff6d6; font-weight: 600; }
.bar { display: inline-block; height: 9px; background: #4f8fc0; margin-right: 6px; vertical-align: middle; }
.note { color: #58626d; font-size: 13px; }
.figure { max-width: 100%; height: auto; border: 1px solid #eceef0; }
.chip { display: inline-block; border-radius: 3px; padding: 0 5px; margin: 1px 2px 1px 0; font-size: 11.5px;
        max-width: 100%; box-sizing: border-box; overflow-wrap: anywhere; }
.chip.ok { background: #d7f0d9; color: #1c5e24; }
.chip.miss { background: #ffe1bf; color: #8a4600; }
.chip.extra { background: #ffd3d3; color: #9b1c1c; }
.chip.other { background: #eceff2; color: #4a525a; }
details { border-top: 1px solid #e6e8eb; padding: 4px 0; }
summary { cursor: pointer; font-weight: 600; padding: 4px 0; }
.row-label { font-weight: 600; margin: 8px 0 2px; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; }
.tile { width: 200px; margin: 0; background: #fafbfc; border: 1px solid #e1e4e8; border-radius: 4px; padding: 5px;
        font-size: 12px; }
.tile img { display: block; width: 190px; height: auto; border-radius: 2px; }
.tile.right { border-top: 4px solid #3c9a48; }
.tile.missed { border-top: 4px solid #e08a1e; }
.tile.added { border-top: 4px solid #d24141; }
.tile .title { font-weight: 600; margin: 4px 0 1px; overflow-wrap: anywhere; }
.tile .where { color: #58626d; margin-bottom: 3px; }
.nophoto { width: 190px; height: 120px; background: #e9ecef; color: #6a737d; display: flex; align-items: center;
           justify-content: center; }
.heat { font-variant-numeric: tabular-nums; text-align: right; }
"""


def esc(value) -> str:
    return escape(str(value), quote=True)


def data_uri(payload: bytes, mime: str) -> str:
    """Inline image data, so the page needs no file beside it."""
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def img(payload: bytes, alt: str, mime: str = "image/png", cls: str = "figure") -> str:
    return f'<img class="{cls}" src="{data_uri(payload, mime)}" alt="{esc(alt)}">'


def table(header: list[str], rows: list[list], numeric: set[int] = frozenset(), row_class=None,
          raw: bool = False) -> str:
    """An HTML table; cells are escaped unless `raw` (cells already HTML). `numeric` columns are right-aligned."""
    def cell(tag: str, i: int, value) -> str:
        cls = ' class="num"' if i in numeric else ""
        return f"<{tag}{cls}>{value if raw else esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        cls = row_class(r) if row_class else ""
        body.append(f'<tr{f" class={cls!r}" if cls else ""}>' + "".join(cell("td", i, v) for i, v in enumerate(row))
                    + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def bar(value: float, width: int = 90) -> str:
    """A number with a proportional bar (value in [0, 1]); '–' for NaN."""
    if value != value:  # NaN: nothing to measure (e.g. precision of a tag never predicted)
        return "–"
    return f'<span class="bar" style="width:{max(0.0, min(1.0, value)) * width:.0f}px"></span>{value:.3f}'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, header_lines: list[str], sections: list[tuple[str, str, str]]) -> str:
    """A whole page: header, a sticky menu of the sections, the sections (anchor, title, HTML body)."""
    nav = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    head = "".join(f"<p>{line}</p>" for line in header_lines)
    body = "".join(section(a, t, b) for a, t, b in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body><header><h1>{esc(title)}</h1>{head}</header>"
            f"<nav>{nav}</nav><main>{body}</main></body></html>\n")


def write_page(path: Path, html: str) -> Path:
    """Written beside and then renamed, so a reader never sees half a page."""
    return atomic_file(Path(path), lambda h: h.write(html.encode("utf-8")), "the report page")
