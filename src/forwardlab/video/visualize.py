"""Pictures of what a model sees: contact sheets of sampled, resized frames."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from forwardlab.fileio import atomic_path

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
