"""`forwardlab video gallery SOURCE`: a standalone, filterable gallery page.

SOURCE is an evaluation folder (clips with their top predictions, coloured correct/incorrect) or a
dataset (a manifest, a folder holding one, or class folders: clips with their labels).
"""

from __future__ import annotations

from pathlib import Path

from forwardlab.fileio import write_text_atomic
from forwardlab.progress import Advance
from forwardlab.video.reports.gallery import FILTER_SCRIPT, render_gallery
from forwardlab.video.reports.html import Html, esc, page
from forwardlab.video.reports.results import SUMMARY_NAME, gallery_selection, load_run
from forwardlab.video.reports.thumbnails import write_thumbnails

FILES_DIR = "gallery_files"


def build_gallery_page(
    source: str | Path,
    out: str | Path,
    *,
    limit: int = 200,
    workers: int = 2,
    seed: int = 0,
    progress: Advance | None = None,
) -> Path:
    """Write the gallery of `source` to the HTML file `out` (thumbnails in `gallery_files/` beside it)."""
    from forwardlab.video.data.folder import open_dataset
    from forwardlab.video.explore import gallery_sample
    from forwardlab.video.reports.explore_page import gallery_rows
    from forwardlab.video.reports.report_page import prediction_rows

    src, target = Path(source), Path(out)
    page_dir = target.parent
    page_dir.mkdir(parents=True, exist_ok=True)
    if src.is_dir() and (src / SUMMARY_NAME).is_file():
        run = load_run(src)
        chosen = gallery_selection(run.rows, limit, seed=seed)
        keys = [(r["path"], run.root / r["path"]) for r in chosen]
        thumbs = write_thumbnails(keys, page_dir / FILES_DIR, workers=workers, progress=progress)
        rows = prediction_rows(run, chosen, thumbs, page_dir)
        title = f"{run.summary.get('model', '')} predictions on {run.summary.get('data', {}).get('manifest', src)}"
        with_predictions = True
    else:
        manifest = open_dataset(src, import_into=page_dir, workers=workers)
        sample = gallery_sample(manifest.records(), limit, seed=seed)
        keys = [(r.path, manifest.absolute(r)) for r in sample]
        thumbs = write_thumbnails(keys, page_dir / FILES_DIR, workers=workers, progress=progress)
        rows = gallery_rows(sample, thumbs, manifest, page_dir)
        title = f"clips of {manifest.name}"
        with_predictions = False
    head = Html(f"<h1>Gallery: {esc(title)}</h1><p class='small'>{len(rows)} clips; thumbnails link to the videos.</p>")
    text = page(
        f"gallery {title}",
        head,
        render_gallery(rows, ident="gallery", with_predictions=with_predictions),
        script=FILTER_SCRIPT,
    )
    write_text_atomic(target, text)
    return target
