"""`forwardlab video explore | report | gallery | preview`: look at a dataset, a run, a clip."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from forwardlab.progress import progress_bar, progress_bars

if TYPE_CHECKING:
    from forwardlab.video.explore import DatasetStats

console = Console()

Workers = Annotated[int, typer.Option(help="Clips probed / thumbnails decoded in parallel.")]


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_tables(stats: DatasetStats) -> list[Table]:
    """The printed summary: status per split, why clips are unusable, distributions, outliers, recipes."""
    from forwardlab.video.data.manifest import STATUSES

    status = Table(
        "split", *STATUSES, "total", title=f"{stats.name}: {stats.n_clips} clips, {len(stats.classes)} classes"
    )
    for split, counts in stats.splits.items():
        status.add_row(split, *(str(counts[s]) for s in STATUSES), str(sum(counts.values())))
    tables = [status]
    if stats.reasons:
        reasons = Table("status", "reason", "clips", title="unusable clips")
        for s, reason, n in stats.reasons[:8]:
            reasons.add_row(s, reason, str(n))
        tables.append(reasons)
    usable = sorted(stats.usable_per_class.values())
    figures = stats.to_dict()["distributions"]
    dist = Table("", "min", "p5", "median", "p95", "max", title=f"{stats.probed} probed clips")
    if usable:
        dist.add_row("usable clips per class", *(str(v) for v in _spread(usable)))
    for name, q in figures.items():
        if q is not None:
            dist.add_row(name, *(_fmt(q[k]) for k in ("min", "p5", "median", "p95", "max")))
    tables.append(dist)
    cats = Table("field", "values (clips)", title="categories")
    for name, values in stats.categories.items():
        cats.add_row(name, ", ".join(f"{k} ({n})" for k, n in list(values.items())[:5]))
    tables.append(cats)
    odd = Table("outlier", "clips", title="outliers (all in outliers.csv)")
    for kind, n in stats.outlier_counts().items():
        odd.add_row(kind, str(n))
    for recipe, n in stats.recipes:
        odd.add_row(f"shorter than {recipe.name} ({recipe.span_s:.2f} s)", str(n))
    tables.append(odd)
    return tables


def _spread(sorted_values: list[int]) -> tuple[int, ...]:
    n = len(sorted_values)
    return tuple(sorted_values[min(n - 1, int(q * (n - 1) + 0.5))] for q in (0, 0.05, 0.5, 0.95, 1))


def explore(
    data: Annotated[Path, typer.Argument(help="A manifest, a folder holding manifest.sqlite, or class folders.")],
    out: Annotated[Path, typer.Option(help="Folder for explore.html, explore.json, outliers.csv.")] = Path("explore"),
    workers: Workers = 4,
    gallery: Annotated[int, typer.Option(help="Clips in the sample gallery (thumbnails decoded).")] = 48,
    min_frames: Annotated[int, typer.Option(help="Outlier: fewer frames than this.")] = 16,
    min_duration: Annotated[float, typer.Option(help="Outlier: shorter than this many seconds.")] = 2.0,
    max_short_side: Annotated[int, typer.Option(help="Outlier: short side above this many pixels.")] = 1080,
    seed: Annotated[int, typer.Option(help="Seed of the gallery sample.")] = 0,
) -> None:
    """Statistics of a dataset: clips per class and split, unusable clips with reasons, distributions of
    duration, fps, resolution, aspect, codec, audio and is_cc, outliers; a printed summary and an HTML page.

    Clips lacking probe fields are probed in parallel first (and stored in the manifest).

    Example: forwardlab video explore data/kinetics400/manifest.sqlite --out explore-k400
    """
    from forwardlab.video.explore import OutlierRules
    from forwardlab.video.explore import explore as run_explore

    rules = OutlierRules(min_frames=min_frames, min_duration_s=min_duration, max_short_side=max_short_side)
    with progress_bars(("probing clips without metadata", False), ("thumbnails", False)) as (probing, thumbs):
        result = run_explore(
            data, out, workers=workers, rules=rules, gallery_clips=gallery, seed=seed,
            probe_progress=probing, thumbnail_progress=thumbs,
        )  # fmt: skip
    for table in summary_tables(result.stats):
        console.print(table)
    console.print(f"probed now: {result.probed_now}; report: [bold]{result.html}[/] (figures: {result.json.name})")


def report(
    results: Annotated[Path, typer.Argument(help="An evaluation folder (what `video evaluate --out` wrote).")],
    out: Annotated[Path | None, typer.Option(help="HTML file to write (default RESULTS/report.html).")] = None,
    gallery: Annotated[int, typer.Option(help="Clips in the gallery (classes take turns, mistakes first).")] = 200,
    workers: Workers = 2,
) -> None:
    """One page about an evaluation: metrics, failures, per-class accuracy, confusion heatmap, most-confused
    pairs with example clips, and a gallery of predictions filterable by class and correctness.

    Example: forwardlab video report runs/r2p1d
    """
    from forwardlab.video.reports.report_page import build_report

    with progress_bar("thumbnails", 0) as advance:
        path = build_report(results, out=out, gallery_clips=gallery, workers=workers, progress=advance)
    console.print(f"report: [bold]{path}[/]")


def gallery(
    source: Annotated[Path, typer.Argument(help="An evaluation folder, or a dataset (manifest or folders).")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("gallery/gallery.html"),
    limit: Annotated[int, typer.Option(help="Clips on the page at most.")] = 200,
    workers: Workers = 2,
    seed: Annotated[int, typer.Option(help="Seed of the selection.")] = 0,
) -> None:
    """A filterable gallery: thumbnails, links to the videos, labels, and (for an evaluation folder) the
    top predictions coloured correct/incorrect.

    Examples:
      forwardlab video gallery runs/r2p1d --out runs/r2p1d/gallery.html
      forwardlab video gallery data/synthetic/val --out gallery/index.html
    """
    from forwardlab.video.reports.gallery_page import build_gallery_page

    with progress_bar("thumbnails", 0) as advance:
        path = build_gallery_page(source, out, limit=limit, workers=workers, seed=seed, progress=advance)
    console.print(f"gallery: [bold]{path}[/]")


def preview(
    video: Annotated[Path, typer.Argument(help="The clip to show.")],
    model: Annotated[str, typer.Option(help="Whose input to show: a registry model name.")] = "r2plus1d_18",
    out: Annotated[Path, typer.Option(help="Animated GIF to write.")] = Path("preview.gif"),
    height: Annotated[int, typer.Option(help="Height of the original, in pixels.")] = 160,
) -> None:
    """Animated side-by-side: the original (crop box drawn) and what the model sees after sampling,
    resizing and cropping, over the span of the model's clip.

    Example: forwardlab video preview clip.mp4 --model tiny_r2plus1d --out preview.gif
    """
    from forwardlab.video.models.catalog import get_entry
    from forwardlab.video.visualize import model_input_preview

    entry = get_entry(model)
    result = model_input_preview(video, entry.recipe, out, height=height)
    console.print(
        f"{result.source_frames} original frames ({result.start_s:.2f}-{result.end_s:.2f} s) beside the "
        f"{result.model_frames} frames {model} sees -> [bold]{result.path}[/]"
    )
