"""Model input recipes: resize, crop and normalize decoded clips the way a model was trained to see them.

Clips arrive as `uint8 (T, C, H, W)` (what `read_frames` returns) and stay uint8 through resizing and
cropping; only `VideoPreset` turns them into the float `(C, T, H, W)` a video network takes, as its last
step. Resizing and normalizing use torchvision's functionals (the v1 ones its video presets use, so results
match them bit for bit; they take the same tensors as `transforms.v2`). torchvision is imported when first
needed: cropping alone (multi-view decoding) is plain tensor slicing and should not pay its import.

Two presets, as in torchvision's video_classification references: `VideoPreset` is how a model is
evaluated, `TrainPreset` how it is augmented in training (uint8 in and out: training normalizes per batch,
so data workers hand over a quarter of the bytes).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import numpy as np

# Per-channel statistics used by torchvision's Kinetics-400 video weights.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)

SizeArg = int | tuple[int, int]

# Random resized crop: the share of the frame's area kept, and the aspect jitter around the crop's own.
CROP_SCALE = (0.6, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
# Class names that make a horizontal flip change the label (see `flip_allowed`).
DIRECTION_WORDS = re.compile(r"left|right|clockwise", re.IGNORECASE)


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
        return to_model_input(torch.stack(self.crops(video)), self.mean, self.std)

    def crops(self, video: torch.Tensor) -> list[torch.Tensor]:
        """The views before normalizing: `spatial_crops` uint8 `(T, C, h, w)` crops of the resized clip."""
        resized = resize(video, self.resize_size, antialias=self.antialias)
        return spatial_crops(resized, self.crop_size, self.spatial_crops)


def flip_allowed(classes: Sequence[str]) -> bool:
    """True when no class name suggests a left/right or rotation direction.

    A mirrored clip of "moving left" is a clip of "moving right", so flipping is on only when no class name
    mentions a direction (`left`, `right`, `clockwise`, anywhere in the name, case ignored, so
    `counterclockwise` and `rightward` count; a false alarm such as `bright` only costs the augmentation).
    """
    return not any(DIRECTION_WORDS.search(name) for name in classes)


def random_resized_crop_box(
    rng: np.random.Generator,
    height: int,
    width: int,
    target: tuple[int, int],
    scale: tuple[float, float] = CROP_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a crop covering `scale` of the area, its aspect `ratio` times the target's.

    Ten tries, each drawing scale, ratio, then (when the crop fits) top and left from `rng`; the whole frame
    when none fits.
    """
    area = height * width
    base = target[1] / target[0]
    for _ in range(10):
        share = rng.uniform(*scale)
        aspect = base * math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w = round(math.sqrt(area * share * aspect))
        h = round(math.sqrt(area * share / aspect))
        if 0 < h <= height and 0 < w <= width:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return 0, 0, height, width


@dataclass(frozen=True)
class TrainPreset:
    """A model's training augmentation: resize as the recipe does, a random resized crop back to the crop size,
    and a horizontal flip half of the time when `flip` is on (see `flip_allowed`).

    Calling it on `uint8 (T, C, H, W)` with a generator returns `uint8 (T, C, h, w)`, `(h, w)` the crop size;
    every frame gets the same crop and flip. The draws (the crop's, then the flip's when `flip`) all come
    from `rng`, so a clip's augmentation is a function of the generator's seed.
    """

    resize_size: SizeArg
    crop_size: SizeArg
    flip: bool
    antialias: bool = True
    scale: tuple[float, float] = CROP_SCALE
    ratio: tuple[float, float] = CROP_RATIO

    def __call__(self, video: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        frames = resize(video, self.resize_size, antialias=self.antialias)
        crop = _hw(self.crop_size)
        height, width = frames.shape[-2:]
        top, left, h, w = random_resized_crop_box(rng, height, width, crop, self.scale, self.ratio)
        out = resize(frames[..., top : top + h, left : left + w], crop)
        if self.flip and rng.random() < 0.5:
            out = out.flip(-1)
        return out.contiguous()
