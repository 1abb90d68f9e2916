"""Building blocks of forwardlab's HTML pages: escaping, tables, sections, images, one shared stylesheet.

Pages are assembled from strings rather than a template engine: they are small, and `Html` marks what is
already markup so that every other value is escaped on the way in. Nothing here fetches from the network,
so a page opened from disk (or mailed around) looks the same offline.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from PIL import Image

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #1d1d1f; padding: 0 1em; }
h1 { font-size: 1.7em; margin-bottom: .2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .6em 0; } td, th { padding: 3px 8px; border: 1px solid #e3e3e3; }
th { background: #f6f6f6; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #137333; font-weight: 600; } .bad { color: #c5221f; font-weight: 600; }
tr.is-correct td.truth { background: #e6f4ea; } tr.is-incorrect td.truth { background: #fce8e6; }
.gallery table { width: 100%; } .gallery td { vertical-align: middle; } .gallery a { overflow-wrap: anywhere; }
.note { background: #f7f4ea; border-left: 4px solid #d8b74a; padding: .6em 1em; }
.small { color: #666; font-size: 12px; } .missing { color: #999; font-style: italic; font-size: 12px; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: .5em; align-items: start; }
.plots img { max-width: 100%; border: 1px solid #eee; display: block; }
.plots.wide { grid-template-columns: 1fr; }
.thumb { image-rendering: pixelated; display: block; }
.filters { position: sticky; top: 0; background: #fff; padding: .5em 0; border-bottom: 1px solid #ddd; z-index: 1; }
.filters label { margin-right: 1.2em; }
nav a { margin-right: 1em; }
"""


class Html(str):
    """A string that is already markup: `cell` and `table` pass it through instead of escaping it."""


class Cell(Html):
    """A whole table cell, tag and attributes included (see `cell`): `table` puts it in as it is."""


def esc(value: object) -> Html:
    """Markup for any value: `Html` unchanged, None as an empty cell, everything else escaped."""
    if isinstance(value, Html):
        return value
    return Html("" if value is None else html.escape(str(value)))


def cell(value: object, *, header: bool = False, cls: str = "", colspan: int = 0) -> Cell:
    """One cell for `table` where the default does not fit: a row header (`<th>`), a class, a span."""
    tag = "th" if header else "td"
    attrs = (f" class='{esc(cls)}'" if cls else "") + (f" colspan='{colspan}'" if colspan else "")
    return Cell(f"<{tag}{attrs}>{esc(value)}</{tag}>")


def table(header: Sequence[object], rows: Iterable[Sequence[object]], *, cls: str = "", id_: str = "") -> Html:
    """A table; numbers are right-aligned, every value not marked `Html` is escaped, a `Cell` goes in as it is."""
    head = "".join(h if isinstance(h, Cell) else f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            v
            if isinstance(v, Cell)
            else f"<td class='num'>{esc(v)}</td>"
            if isinstance(v, int | float) and not isinstance(v, bool)
            else f"<td>{esc(v)}</td>"
            for v in row
        )
        body.append(f"<tr>{cells}</tr>")
    attrs = (f" class='{esc(cls)}'" if cls else "") + (f" id='{esc(id_)}'" if id_ else "")
    return Html(f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def section(title: str, *parts: object, anchor: str = "") -> Html:
    """An `<h2>` and its content; `anchor` makes it reachable from a page's navigation."""
    ident = f" id='{esc(anchor)}'" if anchor else ""
    return Html(f"<section{ident}><h2>{esc(title)}</h2>" + "".join(esc(p) for p in parts) + "</section>")


def nav(links: Sequence[tuple[str, str]]) -> Html:
    """In-page links: (anchor, text) pairs."""
    return Html("<nav>" + "".join(f"<a href='#{esc(a)}'>{esc(t)}</a>" for a, t in links) + "</nav>")


def page(title: str, *parts: object, script: str = "", css: str = "") -> str:
    """A whole self-contained document: inline CSS (the shared sheet plus `css`), optional inline script, no
    external requests."""
    js = f"<script>{script}</script>" if script else ""
    body = "".join(esc(p) for p in parts)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}{css}</style></head><body>{body}{js}</body></html>\n"
    )


def png_data_uri(image: Image.Image) -> str:
    """A PIL image as an inline `data:` URI (plots are small; thumbnails go to files instead)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return png_bytes_uri(buffer.getvalue())


def png_bytes_uri(data: bytes) -> str:
    return data_uri(data, "image/png")


def data_uri(data: bytes, mime: str) -> str:
    """Bytes inlined as a `data:` URI: one file to open or mail, nothing fetched."""
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def img(src: str, alt: str, *, cls: str = "", width: int | None = None) -> Html:
    w = f" width='{width}'" if width else ""
    c = f" class='{esc(cls)}'" if cls else ""
    return Html(f"<img src='{esc(src)}' alt='{esc(alt)}'{c}{w}>")


def link(href: str, text: object) -> Html:
    return Html(f"<a href='{esc(href)}'>{esc(text)}</a>")


def relative_href(target: str | Path, page_dir: str | Path) -> str:
    """A URL path from a page in `page_dir` to `target`, so a report folder can move with its data."""
    rel = os.path.relpath(Path(target).resolve(), Path(page_dir).resolve())
    return quote("/".join(rel.split(os.sep)))


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
