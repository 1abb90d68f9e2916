"""Model input recipes: resize, crop and normalize decoded clips the way a model was trained to see them.

Clips arrive as `uint8 (T, C, H, W)` (what `read_frames` returns) and stay uint8 through resizing and
cropping; only `VideoPreset` turns them into the float `(C, T, H, W)` a video network takes, as its last
step. Resizing and normalizing use torchvision's functionals (the v1 ones its video presets use, so results
match them bit for bit; they take the same tensors as `transforms.v2`). torchvision is imported when first
needed: cropping alone (multi-view decoding) is plain tensor slicing and should not pay its import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

# Per-channel statistics used by torchvision's Kinetics-400 video weights.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)

SizeArg = int | tuple[int, int]


def _hw(size: SizeArg) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else size


def resize(video: torch.Tensor, size: SizeArg, *, antialias: bool = True) -> torch.Tensor:
    """An int resizes the short side (aspect kept), `(h, w)` resizes exactly; a no-op when already there.

    `antialias=False` reproduces torchvision's video weights, which were evaluated without it. The
    resize is torchvision's v1 functional one, which its video presets use: the v2 kernel's uint8 path
    rounds some pixels differently (by 1), enough to change logits in the fifth decimal.
    """
    from torchvision.transforms import functional as F

    h, w = video.shape[-2:]
    if isinstance(size, int):
        if min(h, w) == size:
            return video
        return F.resize(video, [size], antialias=antialias)
    if (h, w) == tuple(size):
        return video
    return F.resize(video, list(size), antialias=antialias)


def spatial_crops(video: torch.Tensor, crop: SizeArg, n: int = 1) -> list[torch.Tensor]:
    """1 centre crop, or 3 crops along the longer side (start, centre, end) as in multi-view testing."""
    ch, cw = _hw(crop)
    h, w = video.shape[-2:]
    if ch > h or cw > w:
        raise ValueError(f"crop {ch}x{cw} is larger than the frames ({h}x{w}); resize first")
    if n not in (1, 3):
        raise ValueError(f"spatial crops must be 1 or 3, got {n}")
    top, left = round((h - ch) / 2), round((w - cw) / 2)  # torchvision's centre, rounding included
    if n == 1:
        corners = [(top, left)]
    elif h >= w:
        corners = [(0, left), (top, left), (h - ch, left)]
    else:
        corners = [(top, 0), (top, left), (top, w - cw)]
    return [video[..., y : y + ch, x : x + cw] for y, x in corners]


def to_model_input(video: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (..., T, C, H, W) -> normalized float32 (..., C, T, H, W), the layout video networks take.

    Uses the same v1 functionals as torchvision's video presets so results match them bit for bit.
    """
    from torchvision.transforms import functional as F

    x = F.convert_image_dtype(video, torch.float32)
    x = F.normalize(x, list(mean), list(std))
    return x.transpose(-4, -3)


@dataclass(frozen=True)
class VideoPreset:
    """A model's evaluation recipe: short-side or fixed resize, 1 or 3 crops, then normalize.

    Calling it on `uint8 (T, C, H, W)` returns float `(V, C, T, H, W)` with V = `spatial_crops` views.
    """

    resize_size: SizeArg
    crop_size: SizeArg
    mean: tuple[float, ...] = KINETICS_MEAN
    std: tuple[float, ...] = KINETICS_STD
    spatial_crops: int = 1
    antialias: bool = True

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        resized = resize(video, self.resize_size, antialias=self.antialias)
        crops = spatial_crops(resized, self.crop_size, self.spatial_crops)
        return to_model_input(torch.stack(crops), self.mean, self.std)
