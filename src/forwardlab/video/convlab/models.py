"""Which network and which input the lab's measurements run on: a registry model at its recipe's clip size."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from forwardlab.errors import ForwardlabError
from forwardlab.video.models.catalog import get_entry, load_model
from forwardlab.video.models.registry import ModelEntry, find_weights
from forwardlab.video.transforms import _hw


@dataclass(frozen=True)
class ClipShape:
    """One clip as a model takes it: `frames` x `height` x `width` (3 colour channels, batch of one)."""

    frames: int
    height: int
    width: int

    @property
    def thw(self) -> tuple[int, int, int]:
        return self.frames, self.height, self.width

    def batch(self) -> tuple[int, int, int, int, int]:
        return 1, 3, self.frames, self.height, self.width

    def __str__(self) -> str:
        return f"{self.frames}x{self.height}x{self.width}"


def recipe_shape(entry: ModelEntry, frames: int | None = None, size: int | tuple[int, int] | None = None) -> ClipShape:
    """The recipe's clip (frames per clip, crop size) unless `frames` / `size` override it."""
    height, width = _hw(size if size is not None else entry.recipe.crop_size)
    shape = ClipShape(frames or entry.recipe.frames_per_clip, int(height), int(width))
    if min(shape.thw) < 1:
        raise ForwardlabError(f"{entry.name}: clip size {shape} must be at least 1x1x1")
    return shape


def random_model(entry: ModelEntry, *, device: str = "cpu") -> nn.Module:
    """The architecture with freshly initialised weights (eval mode); on "meta" it costs no memory or time.

    Cost and receptive fields depend on the architecture only, so they need no trained weights.
    """
    with torch.device(device):
        return entry.builder(entry.num_classes).eval()


def trained_or_random(name: str) -> tuple[nn.Module, bool]:
    """The model with its weights when they are on this machine (no download), else random ones; and which."""
    entry = get_entry(name)
    if find_weights(entry) is not None:
        return load_model(name, pretrained=True, offline=True).model, True
    return random_model(entry), False


@contextlib.contextmanager
def clip_must_fit(what: str, clip: object) -> Iterator[None]:
    """Turn torch's error for a clip too small for a model's kernels into one line naming the model and clip."""
    try:
        yield
    except RuntimeError as exc:
        raise ForwardlabError(f"{what}: cannot run a {clip} clip ({str(exc).splitlines()[0]})") from exc
