"""`forwardlab video report RESULTS_DIR`: one page about an evaluation run.

Headline metrics, failures with reasons, per-class accuracy, a confusion heatmap that stays readable at
400 classes (the most confused classes, ordered so that swapped pairs sit together), the most-confused
class pairs with example clips, and the filterable gallery of predictions. Thumbnails go to
`report_files/` beside the page; videos are linked relative to the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from forwardlab.fileio import write_text_atomic
from forwardlab.progress import Advance
from forwardlab.video.reports import plots
from forwardlab.video.reports.gallery import FILTER_SCRIPT, GalleryRow, render_gallery
from forwardlab.video.reports.html import Html, esc, img, link, nav, page, pct, relative_href, section, table
from forwardlab.video.reports.results import EvalRun, gallery_selection, load_run
from forwardlab.video.reports.thumbnails import Thumbnail, write_thumbnails

REPORT_NAME = "report.html"
FILES_DIR = "report_files"
HEATMAP_CLASSES = 30
PAIRS_SHOWN = 20
FAILURES_SHOWN = 200  # summary.json lists them all
_LINKS = [
    ("summary", "summary"),
    ("failures", "failures"),
    ("per-class", "per-class accuracy"),
    ("confusion", "confusion"),
    ("pairs", "confused pairs"),
    ("gallery-section", "gallery"),
]


def prediction_rows(
    run: EvalRun, rows: Sequence[dict[str, Any]], thumbs: Mapping[str, Thumbnail], page_dir: Path
) -> list[GalleryRow]:
    """Gallery rows of evaluated clips: top predictions with scores, correct when top-1 is the label."""
    out = []
    for r in rows:
        thumb = thumbs.get(r["path"])
        out.append(
            GalleryRow(
                key=r["path"],
                label=r["label"],
                video_href=relative_href(run.root / r["path"], page_dir),
                thumb_href=relative_href(thumb.file, page_dir) if thumb and thumb.file else None,
                thumb_error=thumb.error if thumb else None,
                details=f"{r['n_views']} view(s)" + (f", {r['padded']} padded frames" if r["padded"] else ""),
                top=list(zip(r["top5_labels"], r["top5_scores"], strict=True)),
                correct=None if r["label"] is None else r["prediction"] == r["label"],
            )
        )
    return out


def _headline(run: EvalRun) -> Html:
    s = run.summary
    metrics = s.get("metrics", {})
    views = s.get("views", {})
    metric_rows = ([name.replace("_", " "), pct(v)] for name, v in metrics.items())
    count_rows = ([name.replace("_", " "), n] for name, n in s.get("counts", {}).items())
    data = s.get("data", {})
    intro = Html(
        f"<h1>Evaluation: {esc(s.get('model', '?'))}</h1><p class='small'>weights {esc(s.get('weights', '?'))}; "
        f"{esc(views.get('temporal', '?'))} x {esc(views.get('spatial', '?'))} views per video; manifest "
        f"<code>{esc(data.get('manifest', '?'))}</code>, split {esc(data.get('split') or 'all')}; "
        f"results in <code>{esc(run.folder)}</code>.</p>"
    )
    return Html(
        intro
        + nav(_LINKS)
        + section(
            "Summary",
            Html("<div class='plots'>"),
            table(["metric", "value"], metric_rows),
            table(["count", "clips"], count_rows),
            Html("</div>"),
            anchor="summary",
        )
    )


def _failures(run: EvalRun, page_dir: Path) -> Html:
    failures = run.summary.get("failures", [])
    if not failures:
        return section("Failures", Html("<p>Every selected clip was evaluated.</p>"), anchor="failures")
    rows = (
        [link(relative_href(run.root / f["path"], page_dir), f["path"]), f["status"], f.get("reason") or ""]
        for f in failures[:FAILURES_SHOWN]
    )
    more = len(failures) - FAILURES_SHOWN
    tail = Html(f"<p class='small'>{more} more in summary.json.</p>" if more > 0 else "")
    return section("Failures", table(["clip", "status", "reason"], rows), tail, anchor="failures")


def _per_class(run: EvalRun) -> Html:
    accuracy = run.per_class_accuracy()
    chart = plots.per_class_bars(
        [(name, acc) for name, acc, _ in accuracy], title="top-1 accuracy per class", xlabel="top-1", fraction=True
    )
    rows = ([name, n, pct(acc)] for name, acc, n in sorted(accuracy, key=lambda t: (t[1], t[0])))
    return section(
        "Per-class accuracy",
        Html("<div class='plots wide'>"),
        img(chart, "top-1 accuracy per class"),
        Html("</div><details><summary>all classes, worst first</summary>"),
        table(["class", "clips", "top-1"], rows),
        Html("</details>"),
        anchor="per-class",
    )


def _confusion(run: EvalRun) -> Html:
    classes, matrix = run.confusion()
    if not classes:
        return section("Confusion", Html("<p>No scored clips.</p>"), anchor="confusion")
    order = plots.confusion_focus(matrix, limit=HEATMAP_CLASSES)
    if len(order) < len(classes):
        note = (
            f"<p class='small'>{len(classes)} classes occur; shown: the {len(order)} involved in the most "
            "confusions, ordered so that classes confused with each other sit side by side. Full counts: "
            "confusion.csv.</p>"
        )
    else:
        note = "<p class='small'>Ordered so that classes confused with each other sit side by side.</p>"
    heatmap = plots.confusion_heatmap(matrix, classes, order, title="confusion (row share)")
    return section(
        "Confusion",
        Html(note),
        Html("<div class='plots wide'>"),
        img(heatmap, "confusion heatmap"),
        Html("</div>"),
        anchor="confusion",
    )


def _pairs(run: EvalRun, thumbs: Mapping[str, Thumbnail], page_dir: Path) -> Html:
    pairs = run.confused_pairs(limit=PAIRS_SHOWN)
    if not pairs:
        return section("Most-confused pairs", Html("<p>No mistakes.</p>"), anchor="pairs")
    rows = []
    for p in pairs:
        examples = []
        for key in p.examples:
            thumb = thumbs.get(key)
            picture = img(relative_href(thumb.file, page_dir), key, cls="thumb") if thumb and thumb.file else ""
            examples.append(f"<a href='{esc(relative_href(run.root / key, page_dir))}'>{picture or esc(key)}</a>")
        rows.append([p.true, p.predicted, p.count, pct(p.share), Html("".join(examples))])
    return section(
        "Most-confused pairs",
        table(["true class", "predicted as", "clips", "share of true class", "examples"], rows),
        anchor="pairs",
    )


def build_report(
    folder: str | Path,
    *,
    out: str | Path | None = None,
    gallery_clips: int = 200,
    workers: int = 2,
    seed: int = 0,
    progress: Advance | None = None,
) -> Path:
    """Write the report of evaluation folder `folder` (default `folder/report.html`); returns its path.

    `gallery_clips` caps the gallery (classes take turns, mistakes first); `progress` follows thumbnails.
    """
    run = load_run(folder)
    target = Path(out) if out is not None else run.folder / REPORT_NAME
    page_dir = target.parent
    chosen = gallery_selection(run.rows, gallery_clips, seed=seed)
    example_keys = [key for p in run.confused_pairs(limit=PAIRS_SHOWN) for key in p.examples]
    keys = list(dict.fromkeys([r["path"] for r in chosen] + example_keys))
    thumbs = write_thumbnails(
        [(k, run.root / k) for k in keys], page_dir / FILES_DIR, workers=workers, progress=progress
    )
    gallery = section(
        "Gallery",
        Html(
            f"<p class='small'>{len(chosen)} of {sum(r['status'] == 'ok' for r in run.rows)} evaluated clips "
            "(classes take turns, mistakes first). Green: top-1 is the label; red: it is not.</p>"
        ),
        render_gallery(prediction_rows(run, chosen, thumbs, page_dir), ident="gallery", with_predictions=True),
        anchor="gallery-section",
    )
    text = page(
        f"evaluation {run.summary.get('model', '')}",
        _headline(run),
        _failures(run, page_dir),
        _per_class(run),
        _confusion(run),
        _pairs(run, thumbs, page_dir),
        gallery,
        script=FILTER_SCRIPT,
    )
    write_text_atomic(target, text)
    return target
