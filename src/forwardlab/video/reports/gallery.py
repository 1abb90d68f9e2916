"""A gallery of clips: thumbnail, link to the video, label and, given evaluation results, the top
predictions coloured correct/incorrect (the prototype's video table), filterable by class and correctness.

Filtering is a few lines of inline JavaScript over `data-` attributes of the table rows, so the page
needs no server and no library. The same section serves the explore page (labels only), the results
report, and the standalone `forwardlab video gallery` page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from forwardlab.video.reports.html import Html, esc, img, link

FILTER_SCRIPT = """
function forwardlabFilter(id) {
  const root = document.getElementById(id);
  const cls = root.querySelector('select.f-class').value;
  const sel = root.querySelector('select.f-correct');
  const correct = sel ? sel.value : '';
  let shown = 0, total = 0;
  for (const row of root.querySelectorAll('tbody tr')) {
    const keep = (!cls || row.dataset.label === cls) && (!correct || row.dataset.correct === correct);
    row.hidden = !keep;
    total += 1;
    if (keep) shown += 1;
  }
  root.querySelector('.f-count').textContent = shown + ' of ' + total + ' clips shown';
}
for (const root of document.querySelectorAll('.gallery')) {
  for (const sel of root.querySelectorAll('select')) sel.addEventListener('change', () => forwardlabFilter(root.id));
  forwardlabFilter(root.id);
}
"""


@dataclass(frozen=True)
class GalleryRow:
    """One clip of a gallery. `top` holds (class, probability) best first; `correct` is None without
    results or without a label."""

    key: str
    label: str | None
    video_href: str | None
    thumb_href: str | None
    thumb_error: str | None = None
    details: str = ""
    top: Sequence[tuple[str, float]] = ()
    correct: bool | None = None


def _correct_attr(value: bool | None) -> str:
    return "" if value is None else ("correct" if value else "incorrect")


def _predictions(row: GalleryRow) -> Html:
    parts = []
    for rank, (name, score) in enumerate(row.top):
        hit = name == row.label
        cls = "ok" if hit else ("bad" if rank == 0 else "")
        text = f"{esc(name)} <span class='small'>{100 * score:.1f}%</span>"
        parts.append(f"<span class='{cls}'>{text}</span>" if cls else text)
    return Html("<br>".join(parts))


def render_gallery(rows: Sequence[GalleryRow], *, ident: str = "gallery", with_predictions: bool = False) -> Html:
    """The filter bar and the table; needs `FILTER_SCRIPT` once on the page."""
    labels = sorted({r.label for r in rows if r.label})
    options = "".join(f"<option value='{esc(c)}'>{esc(c)}</option>" for c in labels)
    filters = [
        "<label>class <select class='f-class' aria-label='class'>"
        f"<option value=''>all</option>{options}</select></label>"
    ]
    if with_predictions:
        filters.append(
            "<label>prediction <select class='f-correct' aria-label='correctness'><option value=''>all</option>"
            "<option value='correct'>correct</option><option value='incorrect'>incorrect</option></select></label>"
        )
    filters.append("<span class='f-count small'></span>")
    head = "<th>frames</th><th>clip</th><th>label</th>" + ("<th>top predictions</th>" if with_predictions else "")
    body = []
    for r in rows:
        if r.thumb_href:
            thumb = img(r.thumb_href, r.key, cls="thumb")
        else:
            thumb = Html(f"<span class='missing'>no thumbnail: {esc(r.thumb_error or 'not decoded')}</span>")
        clip = link(r.video_href, r.key) if r.video_href else esc(r.key)
        details = f"<br><span class='small'>{esc(r.details)}</span>" if r.details else ""
        status = ""
        if with_predictions and r.correct is not None:
            status = " class='is-correct'" if r.correct else " class='is-incorrect'"
        cells = f"<td>{thumb}</td><td>{clip}{details}</td><td class='truth'>{esc(r.label or '-')}</td>"
        if with_predictions:
            cells += f"<td>{_predictions(r)}</td>"
        body.append(
            f"<tr{status} data-label='{esc(r.label or '')}' data-correct='{_correct_attr(r.correct)}'>{cells}</tr>"
        )
    return Html(
        f"<div class='gallery' id='{esc(ident)}'><div class='filters'>{''.join(filters)}</div>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )
