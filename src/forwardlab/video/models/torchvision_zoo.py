"""torchvision's Kinetics-400 video classifiers, registered by name.

Everything comes from the weights enums: URL, classes, parameter count, GFLOPS (which count MACs) and
the evaluation recipe, read from the weights' own metadata rather than retyped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from torch import nn
from torchvision.models import video as tvv

from forwardlab.video.errors import ModelError
from forwardlab.video.models.registry import ModelEntry, Recipe, Weights, register
from forwardlab.video.transforms import SizeArg

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


ENTRIES: dict[str, ModelEntry] = {
    name: register(_torchvision_entry(name, *spec)) for name, spec in TORCHVISION_MODELS.items()
}

__all__ = ["ENTRIES", "TORCHVISION_MODELS"]
