"""The explore page: a dataset's counts, unusable clips with reasons, distributions, outliers, a gallery."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from forwardlab.video.data.manifest import STATUSES, ClipRecord, Manifest
from forwardlab.video.reports import plots
from forwardlab.video.reports.gallery import FILTER_SCRIPT, GalleryRow, render_gallery
from forwardlab.video.reports.html import Html, esc, img, nav, page, pct, relative_href, section, table
from forwardlab.video.reports.thumbnails import Thumbnail

if TYPE_CHECKING:
    from pathlib import Path

    from forwardlab.video.explore import DatasetStats

# Rows of the outlier table on the page; outliers.csv lists them all.
OUTLIERS_SHOWN = 200


def _plots(*uris: tuple[str, str]) -> Html:
    return Html("<div class='plots'>" + "".join(img(uri, alt) for alt, uri in uris) + "</div>")


def _overview(stats: DatasetStats) -> Html:
    rows = []
    for split, counts in stats.splits.items():
        total = sum(counts.values())
        rows.append([split, *(counts[s] for s in STATUSES), total, pct((total - counts["downloaded"]) / total)])
    totals = {s: sum(c[s] for c in stats.splits.values()) for s in STATUSES}
    if len(stats.splits) > 1:
        n = sum(totals.values())
        rows.append([Html("<b>all</b>"), *totals.values(), n, pct((n - totals["downloaded"]) / n) if n else "-"])
    reasons = (
        table(["status", "reason", "clips"], ([s, r, n] for s, r, n in stats.reasons[:25]))
        if stats.reasons
        else Html("<p>Every clip is on disk and decodable.</p>")
    )
    return section(
        "Splits and status",
        table(["split", *STATUSES, "total", "unusable"], rows),
        Html("<h3>Why clips are unusable</h3>"),
        reasons,
        anchor="status",
    )


def _classes(stats: DatasetStats) -> Html:
    splits = list(stats.splits)
    counts = [(label, n) for label, n in stats.usable_per_class.items()]
    values = [n for _, n in counts]
    summary = (
        f"<p>{len(counts)} classes; usable clips per class: min {min(values)}, median "
        f"{sorted(values)[len(values) // 2]}, max {max(values)}.</p>"
        if values
        else "<p>No classes.</p>"
    )
    rows = (
        [label, *(per_split.get(s, 0) for s in splits), stats.usable_per_class.get(label, 0)]
        for label, per_split in stats.classes.items()
    )
    return section(
        "Classes",
        Html(summary),
        _plots(
            ("usable clips per class", plots.per_class_bars(counts, title="usable clips per class", xlabel="clips"))
        ),
        Html("<details><summary>clips per class and split (all statuses)</summary>"),
        table(["class", *splits, "usable"], rows),
        Html("</details>"),
        anchor="classes",
    )


def _distributions(stats: DatasetStats) -> Html:
    n = stats.numeric
    rules = stats.rules
    spans = [(r.span_s, f"{r.frames_per_clip}@{r.fps:g}") for r, _ in stats.recipes]
    figures = [
        ("duration", plots.histogram(n["duration_s"], title="duration", xlabel="seconds", marks=spans)),
        ("frame rate", plots.histogram(n["fps"], title="frame rate", xlabel="frames per second")),
        (
            "short side",
            plots.histogram(
                n["short_side_px"],
                title="short side",
                xlabel="pixels",
                marks=[(rules.max_short_side, f"huge > {rules.max_short_side}")],
            ),
        ),
        ("aspect ratio", plots.histogram(n["aspect_ratio"], title="aspect ratio", xlabel="width / height")),
        ("file size", plots.histogram(n["size_mb"], title="file size", xlabel="MB", log_x=True)),
    ]
    categories = [
        (name, plots.category_bars(list(values.items()), title=name.replace("_", " ")))
        for name, values in stats.categories.items()
    ]
    note = (
        f"<p class='small'>Over the {stats.probed} probed, usable clips (is_cc: over all {stats.n_clips} rows; "
        "'unknown' where the source does not say). Dashed lines on the duration plot: the clip span of each "
        "recipe in the model registry (frames @ fps); shorter clips are padded by repeating their last frame.</p>"
    )
    return section("Distributions", Html(note), _plots(*figures, *categories), anchor="distributions")


def _recipes(stats: DatasetStats) -> Html:
    rows = (
        [r.name, f"{r.span_s:.2f}", ", ".join(r.models), n, pct(n / stats.probed) if stats.probed else "-"]
        for r, n in stats.recipes
    )
    return section(
        "Too short for common recipes",
        Html("<p>Clips shorter than a recipe's clip span get padded (their last frame repeats).</p>"),
        table(["recipe", "span s", "models", "shorter clips", "share"], rows),
        anchor="recipes",
    )


def _outliers(stats: DatasetStats, manifest: Manifest, page_dir: Path) -> Html:
    rules = stats.rules
    explained = {
        "too_short": f"shorter than {rules.min_duration_s:g} s",
        "too_few_frames": f"fewer than {rules.min_frames} frames",
        "huge_resolution": f"short side above {rules.max_short_side} px (decode cost for nothing after resizing)",
        "variable_frame_rate": "frame intervals vary (from the packets' timestamps)",
        "unusual_fps": f"frame rate outside {rules.min_fps:g}-{rules.max_fps:g} fps",
    }
    counts = stats.outlier_counts()
    summary = table(["kind", "meaning", "clips"], ([k, explained.get(k, ""), n] for k, n in counts.items()))
    rows = (
        [_video_link(o.path, manifest, page_dir), o.label or "-", o.split, o.kind, o.detail]
        for o in stats.outliers[:OUTLIERS_SHOWN]
    )
    more = len(stats.outliers) - OUTLIERS_SHOWN
    tail = f"<p class='small'>{more} more in outliers.csv.</p>" if more > 0 else ""
    if not stats.outliers:
        return section("Outliers", Html("<p>No outliers.</p>"), anchor="outliers")
    return section(
        "Outliers", summary, table(["clip", "label", "split", "kind", "detail"], rows), Html(tail), anchor="outliers"
    )


def _video_link(path: str, manifest: Manifest, page_dir: Path) -> Html:
    return Html(f"<a href='{esc(relative_href(manifest.root / path, page_dir))}'>{esc(path)}</a>")


def gallery_rows(
    sample: Sequence[ClipRecord], thumbs: Mapping[str, Thumbnail], manifest: Manifest, page_dir: Path
) -> list[GalleryRow]:
    rows = []
    for r in sample:
        thumb = thumbs.get(r.path)
        details = ", ".join(
            part
            for part in (
                r.split,
                f"{r.duration_s:.1f} s" if r.duration_s is not None else "",
                f"{r.fps:g} fps" if r.fps else "",
                f"{r.width}x{r.height}" if r.width else "",
            )
            if part
        )
        rows.append(
            GalleryRow(
                key=r.path,
                label=r.label,
                video_href=relative_href(manifest.absolute(r), page_dir),
                thumb_href=relative_href(thumb.file, page_dir) if thumb and thumb.file else None,
                thumb_error=thumb.error if thumb else None,
                details=details,
            )
        )
    return rows


def render_explore(
    stats: DatasetStats,
    sample: Sequence[ClipRecord],
    thumbs: Mapping[str, Thumbnail],
    *,
    manifest: Manifest,
    page_dir: Path,
) -> str:
    head = Html(
        f"<h1>Dataset: {esc(stats.name)}</h1><p class='small'>{stats.n_clips} clips in {len(stats.classes)} "
        f"classes; manifest <code>{esc(stats.manifest)}</code>, root <code>{esc(stats.root)}</code>.</p>"
    )
    links = [
        ("status", "status"),
        ("classes", "classes"),
        ("distributions", "distributions"),
        ("recipes", "recipes"),
        ("outliers", "outliers"),
        ("gallery-section", "gallery"),
    ]
    gallery = section(
        "Sample gallery",
        Html(f"<p class='small'>{len(sample)} clips spread over the classes; thumbnails link to the videos.</p>"),
        render_gallery(gallery_rows(sample, thumbs, manifest, page_dir), ident="gallery"),
        anchor="gallery-section",
    )
    return page(
        f"explore {stats.name}",
        head,
        nav(links),
        _overview(stats),
        _classes(stats),
        _distributions(stats),
        _recipes(stats),
        _outliers(stats, manifest, page_dir),
        gallery,
        script=FILTER_SCRIPT,
    )
