"""The first layer's spatio-temporal filters as an animated grid: one tile per filter, one GIF frame per tap.

Each filter of a first layer `(out, 3, t, k, k)` is an RGB patch that changes over its t temporal taps; the
GIF plays those taps in order, so a filter tuned to motion visibly moves. A (2+1)D first layer (a 1 x k x k
RGB convolution, normalisation and ReLU, then a t x 1 x 1 convolution over its outputs) has no RGB filter of
its own; it is shown as the linear composition of the two convolutions with the normalisation's scale folded
in, ignoring the ReLU between them - the filter the pair would be without that non-linearity.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch import nn

from forwardlab.errors import ForwardlabError
from forwardlab.fileio import atomic_path
from forwardlab.video.convlab.models import trained_or_random

_PAD = 2
_BACKGROUND = (40, 40, 40)


@dataclass(frozen=True)
class FirstLayer:
    """RGB filters `(out, 3, t, k, k)`, the module(s) they come from, and how they were obtained."""

    weight: torch.Tensor
    source: str
    composed: bool


def _bn_scale(module: nn.Module) -> torch.Tensor | None:
    if isinstance(module, nn.BatchNorm3d) and module.running_var is not None:
        scale = torch.rsqrt(module.running_var + module.eps)
        return scale * module.weight if module.weight is not None else scale
    return None


def first_layer(model: nn.Module) -> FirstLayer:
    """The first Conv3d reading the 3 colour channels; composed with the temporal conv after it for (2+1)D."""
    modules = list(model.named_modules())
    convs = [(name, m) for name, m in modules if isinstance(m, nn.Conv3d)]
    position = {name: i for i, (name, _) in enumerate(modules)}
    for i, (name, conv) in enumerate(convs):
        if conv.in_channels != 3:
            continue
        weight = conv.weight.detach().float().cpu()
        nxt = convs[i + 1] if i + 1 < len(convs) else None
        if weight.shape[2] == 1 and nxt is not None and nxt[1].kernel_size[1:] == (1, 1) and nxt[1].kernel_size[0] > 1:
            temporal = nxt[1].weight.detach().float().cpu()[:, :, :, 0, 0]  # (out, mid, t)
            between = modules[position[name] + 1 : position[nxt[0]]]  # registration order: the norm in between
            scales = [s for s in (_bn_scale(m) for _, m in between) if s is not None]
            scale = scales[0] if scales else torch.ones(weight.shape[0])
            spatial = weight[:, :, 0] * scale.detach().cpu().view(-1, 1, 1, 1)  # (mid, 3, k, k)
            composed = torch.einsum("omt,mchw->octhw", temporal, spatial)
            return FirstLayer(composed, f"{name} -> {nxt[0]}", True)
        return FirstLayer(weight, name, False)
    raise ForwardlabError(f"{type(model).__name__}: no Conv3d layer reads the 3 colour channels")


def filter_frames(weight: torch.Tensor, *, scale: int | None = None, max_filters: int = 64) -> list[Image.Image]:
    """One grid image per temporal tap; every filter is normalised on its own (its largest |value| -> 255)."""
    weight = weight[:max_filters]
    n, _, taps, kh, kw = weight.shape
    scale = scale or max(6, 42 // max(kh, kw))  # tiles of about 42 pixels, whatever the kernel size
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    peak = weight.abs().amax(dim=(1, 2, 3, 4), keepdim=True).clamp_min(1e-12)
    pixels = ((weight / peak * 0.5 + 0.5) * 255).round().clamp(0, 255).to(torch.uint8)  # 128 = zero
    tile_h, tile_w = kh * scale, kw * scale
    frames = []
    for t in range(taps):
        grid = Image.new("RGB", (cols * (tile_w + _PAD) + _PAD, rows * (tile_h + _PAD) + _PAD + 12), _BACKGROUND)
        for i in range(n):
            tile = Image.fromarray(pixels[i, :, t].permute(1, 2, 0).numpy())
            r, c = divmod(i, cols)
            grid.paste(
                tile.resize((tile_w, tile_h), Image.Resampling.NEAREST),
                (_PAD + c * (tile_w + _PAD), _PAD + r * (tile_h + _PAD)),
            )
        ImageDraw.Draw(grid).text((_PAD, grid.height - 12), f"tap {t + 1}/{taps}", fill=(230, 230, 230))
        frames.append(grid)
    return frames


def gif_bytes(frames: list[Image.Image], *, frame_ms: int = 350) -> bytes:
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return buffer.getvalue()


@dataclass(frozen=True)
class FilterImages:
    model: str
    weights: str
    source: str
    composed: bool
    shape: tuple[int, ...]
    gif: Path
    png: Path

    def to_dict(self) -> dict[str, object]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}


def render_filters(name: str, out: Path, *, scale: int | None = None, max_filters: int = 64) -> FilterImages:
    """Write `out/<name>_filters.gif` (animated over the taps) and `out/<name>_filters.png` (the middle tap)."""
    model, trained = trained_or_random(name)
    layer = first_layer(model)
    frames = filter_frames(layer.weight, scale=scale, max_filters=max_filters)
    gif, png = out / f"{name}_filters.gif", out / f"{name}_filters.png"
    with atomic_path(gif) as tmp:
        tmp.write_bytes(gif_bytes(frames))
    with atomic_path(png) as tmp:
        frames[len(frames) // 2].save(tmp, format="PNG")
    return FilterImages(
        name, "trained" if trained else "random", layer.source, layer.composed, tuple(layer.weight.shape), gif, png
    )


__all__ = ["FilterImages", "FirstLayer", "filter_frames", "first_layer", "gif_bytes", "render_filters"]
