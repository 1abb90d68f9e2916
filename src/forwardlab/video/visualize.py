"""Pictures of what a model sees: contact sheets, frame strips, and animated original-vs-input previews."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw

from forwardlab.fileio import atomic_path
from forwardlab.video.transforms import _hw

if TYPE_CHECKING:
    from forwardlab.video.models.registry import Recipe

_PAD = 4
_LABEL_H = 14
_BACKGROUND = (24, 24, 24)
_TEXT = (235, 235, 235)


def contact_sheet(
    rows: Sequence[tuple[str, torch.Tensor]],
    *,
    captions: Sequence[Sequence[str]] | None = None,
    max_cols: int = 16,
) -> Image.Image:
    """One row per clip (`label`, `uint8 (T, C, H, W)`), frames left to right, with small captions.

    Rows are wrapped at `max_cols` frames so a 64-frame clip stays readable.
    """
    if not rows:
        raise ValueError("contact_sheet needs at least one clip")
    tiles_h = max(int(f.shape[-2]) for _, f in rows)
    tiles_w = max(int(f.shape[-1]) for _, f in rows)
    cols = min(max_cols, max(int(f.shape[0]) for _, f in rows))
    lines = [(label, frames, i) for i, (label, frames) in enumerate(rows)]
    n_lines = sum(-(-int(f.shape[0]) // cols) for _, f, _ in lines)
    cell_h = tiles_h + _LABEL_H
    sheet = Image.new(
        "RGB",
        (cols * (tiles_w + _PAD) + _PAD, n_lines * (cell_h + _PAD) + len(rows) * _LABEL_H + _PAD),
        _BACKGROUND,
    )
    draw = ImageDraw.Draw(sheet)
    y = _PAD
    for label, frames, row in lines:
        draw.text((_PAD, y), label, fill=_TEXT)
        y += _LABEL_H
        array = frames.permute(0, 2, 3, 1).cpu().numpy().astype(np.uint8, copy=False)
        for j, image in enumerate(array):
            r, c = divmod(j, cols)
            x, yy = _PAD + c * (tiles_w + _PAD), y + r * (cell_h + _PAD)
            sheet.paste(Image.fromarray(image), (x, yy))
            if captions is not None:
                draw.text((x, yy + image.shape[0]), captions[row][j], fill=_TEXT)
        y += -(-len(array) // cols) * (cell_h + _PAD)
    return sheet


def save_image(image: Image.Image, path: str | Path) -> Path:
    """Write atomically; the format follows the suffix (.png, .jpg, .webp)."""
    target = Path(path)
    with atomic_path(target) as tmp:
        image.save(tmp, format=Image.registered_extensions().get(target.suffix.lower(), "PNG"))
    return target


def frame_strip(frames: torch.Tensor, *, gap: int = 2) -> Image.Image:
    """`uint8 (T, C, H, W)` frames side by side, a thumbnail that shows motion without playing anything."""
    array = frames.permute(0, 2, 3, 1).cpu().numpy().astype(np.uint8, copy=False)
    n, h, w, _ = array.shape
    strip = Image.new("RGB", (n * w + (n - 1) * gap, h), _BACKGROUND)
    for i, image in enumerate(array):
        strip.paste(Image.fromarray(image), (i * (w + gap), 0))
    return strip


@dataclass(frozen=True)
class Preview:
    """What `model_input_preview` drew: the file, the span of the clip shown, and the model's frames."""

    path: Path
    start_s: float
    end_s: float
    source_frames: int
    model_frames: int


def model_input_preview(
    video: str | Path,
    recipe: Recipe,
    out: str | Path,
    *,
    height: int = 160,
    max_source_frames: int = 120,
) -> Preview:
    """An animated GIF: the original (left, every frame of the span the model's clip covers, crop box
    drawn) beside the model input (right: the sampled frames after resize and crop, each held until the
    next sampled time), so users see what the model sees and what sampling skips.

    The clip is the recipe's centre one (one temporal view). The original is decoded at `height` pixels,
    never at full resolution; the model input is decoded exactly as `evaluate` decodes it and enlarged
    with nearest-neighbour scaling so its pixels stay visible.
    """
    from forwardlab.video.io import probe, read_frames, read_views
    from forwardlab.video.sampling import multiview_timestamps

    info = probe(video)
    clip = multiview_timestamps(info, 1, recipe.frames_per_clip, recipe.fps)[0]
    model = read_views(video, [clip], size=recipe.decode_size, crop=recipe.crop_size)[0]
    step = 1 / info.fps if info.fps > 0 else 1 / recipe.fps
    start, end = float(clip[0]), float(clip[-1]) + 1 / recipe.fps
    n_source = max(1, min(max_source_frames, round((end - start) / step)))
    source_times = [start + i * (end - start) / n_source for i in range(n_source)]
    width = max(2, round(height * info.width / max(1, info.height)))
    source = read_frames(video, source_times, size=(height, width)).data
    box = _crop_box(info.width, info.height, recipe, width / max(1, info.width))
    model_h, model_w = int(model.shape[-2]), int(model.shape[-1])
    scale = height / model_h
    shown_w = max(1, round(model_w * scale))
    model_times = [float(t) for t in clip]
    frames: list[Image.Image] = []
    for t, frame in zip(source_times, source, strict=True):
        k = max(0, bisect_right(model_times, t + 1e-9) - 1)
        canvas = Image.new("RGB", (width + _PAD * 3 + shown_w, height + _LABEL_H), _BACKGROUND)
        original = Image.fromarray(frame.permute(1, 2, 0).numpy())
        ImageDraw.Draw(original).rectangle(box, outline=(255, 210, 0))
        canvas.paste(original, (_PAD, _LABEL_H))
        seen = Image.fromarray(model[k].permute(1, 2, 0).numpy()).resize((shown_w, height), Image.Resampling.NEAREST)
        canvas.paste(seen, (_PAD * 2 + width, _LABEL_H))
        draw = ImageDraw.Draw(canvas)
        draw.text((_PAD, 1), f"original {t:.2f}s", fill=_TEXT)
        draw.text((_PAD * 2 + width, 1), f"model input {k + 1}/{len(model_times)}", fill=_TEXT)
        frames.append(canvas)
    target = Path(out)
    duration_ms = max(20, round(1000 * (end - start) / n_source))
    with atomic_path(target) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return Preview(target, start, end, n_source, len(model_times))


def _crop_box(width: int, height: int, recipe: Recipe, scale: float) -> tuple[int, int, int, int]:
    """The centre crop's rectangle on the original frame (scaled by `scale`), from the recipe's sizes."""
    resize = recipe.decode_size
    if isinstance(resize, int):
        factor = resize / min(width, height)
        rw, rh = width * factor, height * factor
    else:
        rh, rw = resize
    ch, cw = _hw(recipe.crop_size)
    sx, sy = width / rw * scale, height / rh * scale
    left, top = round((rw - cw) / 2) * sx, round((rh - ch) / 2) * sy
    return round(left), round(top), round(left + cw * sx) - 1, round(top + ch * sy) - 1
