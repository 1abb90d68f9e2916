"""The demo's HTML report: one self-contained page (inline CSS, PNG thumbnails as data URIs, no scripts).

Everything on the page comes from the figures `demo.run_demo` computes (the same ones it writes to
`summary.json`) plus a gallery of frame strips; nothing is fetched from the network when it is opened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from forwardlab.video.reports.html import Html, cell, esc, img, link, page, pct, png_data_uri, table
from forwardlab.video.visualize import contact_sheet

_CSS = """
.bar { display: inline-block; height: 10px; background: #4a7bd0; vertical-align: middle; margin-right: 6px; }
.bar.b2 { background: #e0823d; } .pair { color: #8a4baf; font-weight: 600; }
.cm td { width: 26px; height: 22px; text-align: center; font-size: 12px; border: 1px solid #fff; padding: 1px; }
.cm th { font-size: 11px; font-weight: normal; } .cm th.col { writing-mode: vertical-rl; transform: rotate(180deg);
       white-space: nowrap; height: 150px; vertical-align: bottom; }
.gallery img { image-rendering: pixelated; display: block; }
"""


@dataclass(frozen=True)
class GalleryItem:
    """One clip of the gallery: its frames as the model sees them, its label, and each model's guess."""

    path: str
    label: str
    frames: torch.Tensor  # uint8 (T, C, H, W)
    predictions: Mapping[str, str]


def _strip(frames: torch.Tensor) -> Image.Image:
    """The clip's frames in rows of 8 (16 frames at 48x72 stay readable at 1.5x)."""
    return contact_sheet([("", frames)], max_cols=8)


def _cell_colour(value: int, row_total: int, diagonal: bool) -> str:
    if value == 0 or row_total == 0:
        return "#fafafa"
    share = value / row_total
    if diagonal:
        return f"rgba(19, 115, 51, {0.15 + 0.75 * share:.2f})"
    return f"rgba(197, 34, 31, {0.15 + 0.75 * share:.2f})"


def _confusion_html(classes: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    head = "".join(f'<th class="col">{esc(c)}</th>' for c in classes)
    rows = []
    for i, name in enumerate(classes):
        total = sum(matrix[i])
        cells = "".join(
            f'<td style="background:{_cell_colour(v, total, i == j)}">{v or ""}</td>' for j, v in enumerate(matrix[i])
        )
        rows.append(f"<tr><th>{esc(name)}</th>{cells}</tr>")
    return f'<table class="cm"><tr><th>true \\ predicted</th>{head}</tr>{"".join(rows)}</table>'


def _explanation(models: Mapping[str, Mapping[str, Any]], pairs: Sequence[tuple[str, str]]) -> str:
    pair_text = ", ".join(f"<i>{esc(a)}</i> / <i>{esc(b)}</i>" for a, b in pairs)
    flat, factorized = models.get("tiny_2d"), models.get("tiny_r2plus1d")
    measured = ""
    if flat is not None:
        measured = (
            f"<p>Here: <b>{pct(flat['time_reversed_top1'])}</b> top-1 on the pair classes against "
            f"<b>{pct(flat['single_frame_top1'])}</b> on the single-frame classes; "
            f"{flat['twin_confusions']} of its answers on pair classes name the exact time-reversed twin.</p>"
        )
    if factorized is not None:
        measured += (
            f"<p>The (2+1)D model reaches <b>{pct(factorized['time_reversed_top1'])}</b> on the same pair classes.</p>"
        )
    return (
        "<h2>Why the 2D model confuses the time-reversed pairs</h2><div class='note'>"
        f"<p>Four pairs of classes ({pair_text}) are exact time reversals of each other: a clip of one, played "
        "backwards, is a clip of the other, drawn from the same distribution. Every single frame of a "
        "<i>moving_left</i> clip could just as well come from a <i>moving_right</i> clip; only the "
        "<b>order</b> of the frames tells them apart.</p>"
        "<p>The 2D model applies 1x3x3 convolutions to each frame on its own and averages the frames' features "
        "over time before its classifier. An average does not depend on the order of what it averages, so the "
        "model gives a clip and the same clip played backwards exactly the same scores: within a pair it can "
        "only guess. It can even drop below a coin flip on those classes, because the pairs also look alike "
        "frame by frame (each shows one bright shape on a dim background; what differs is whether it moves, "
        "grows, turns or fades), so it sometimes mixes up the pairs with each other too (the blocks in its "
        "confusion matrix). The classes a single frame identifies (a checkerboard, a ball above a floor band, "
        "a bar between two bodies, a comet's trail) it recognises far better.</p>"
        "<p>The (2+1)D model shares the same skeleton but follows each 1x3x3 spatial convolution with a 3x1x1 "
        "temporal one: seven such layers see 15 consecutive frames, enough to tell left from right, growing "
        "from shrinking, clockwise from counterclockwise and fading in from fading out.</p>"
        f"{measured}</div>"
    )


def render_report(
    *,
    models: Mapping[str, Mapping[str, Any]],
    titles: Mapping[str, str],
    classes: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    dataset: Mapping[str, Any],
    gallery: Sequence[GalleryItem],
    contact_sheet_file: str | None,
) -> str:
    """The whole page as a string. `models[name]` holds the figures of `demo.model_figures`."""
    names = list(models)
    model_titles = [titles.get(n, n) for n in names]
    paired = {c for pair in pairs for c in pair}
    parts = [
        "<h1>forwardlab video demo: a 2D and a (2+1)D network on synthetic actions</h1>",
        f"<p class='small'>{dataset['clips']} clips ({dataset['per_class']} per class, {len(classes)} classes), "
        f"split <code>{esc(dataset['split'])}</code>, seed {dataset['seed']}, generated fresh for "
        "this run; each clip is scored from one 16-frame view. Models ship inside the package and run offline.</p>",
    ]

    # ---- headline figures
    keys = ("top1", "top5", "mean_class_accuracy", "single_frame_top1", "time_reversed_top1", "pair_top1")
    rows = [
        [cell(title, header=True), *(cell(pct(models[name][k]), cls="num") for k in keys)]
        for name, title in zip(names, model_titles, strict=True)
    ]
    parts += [
        "<h2>Summary</h2>",
        table(
            ["model", "top-1", "top-5", "mean class acc.", "single-frame classes", "time-reversed pairs",
             "right pair (either member)"],
            rows,
        ),
    ]  # fmt: skip

    # ---- per-class accuracy side by side
    lines = []
    for c in classes:
        cells = []
        for k, n in enumerate(names):
            acc = models[n]["per_class_top1"].get(c)
            width = 0 if acc is None else round(100 * acc)
            cells.append(Html(f"<span class='bar{' b2' if k % 2 else ''}' style='width:{width}px'></span>{pct(acc)}"))
        kind = Html("<span class='pair'>time-reversed pair</span>") if c in paired else "single-frame cue"
        lines.append([cell(c, header=True), cell(kind, cls="small"), *cells])
    parts += ["<h2>Per-class accuracy</h2>", table(["class", "kind", *model_titles], lines)]

    # ---- why
    parts.append(_explanation(models, pairs))

    # ---- confusion matrices
    parts.append("<h2>Confusion matrices</h2>")
    for name in names:
        parts.append(f"<h3>{esc(titles.get(name, name))}</h3>")
        parts.append(_confusion_html(classes, models[name]["confusion"]))

    # ---- gallery
    parts.append(
        "<h2>Gallery</h2><p class='small'>Frames as the models see them (16 frames at 8 fps, 48x72, shown 1.5x), "
        "with the ground truth and each model's top-1 prediction; where the models disagree on some clip of a "
        "class, that clip is shown.</p>"
    )
    gallery_rows = []
    for item in gallery:
        strip = _strip(item.frames)
        guesses = [
            cell(item.predictions.get(n) or "-", cls="ok" if item.predictions.get(n) == item.label else "bad")
            for n in names
        ]
        thumb = img(png_data_uri(strip), item.path, width=strip.width * 3 // 2)
        gallery_rows.append([thumb, cell(item.label, header=True), *guesses])
    parts.append(table(["frames", "ground truth", *model_titles], gallery_rows, cls="gallery"))
    if contact_sheet_file:
        parts.append(
            f"<p class='small'>All classes at native resolution: {link(contact_sheet_file, contact_sheet_file)}.</p>"
        )
    return page("forwardlab video demo", *(Html(p) for p in parts), css=_CSS)
