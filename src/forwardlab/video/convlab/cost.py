"""Parameters and multiply-accumulates (MACs), per layer and in total, for a given clip size.

Counting uses `torch.utils.flop_counter.FlopCounterMode` on the "meta" device: shapes flow through the real
forward pass (so attention, reshapes and any custom layer are covered) but nothing is computed, which makes
even Swin3D-B at full size instant. It counts matrix products and convolutions (FLOPs = 2 x MACs) and, like
torchvision's published "GFLOPS" (which are MACs), not normalisation, activations or pooling.

torchvision's figures are for one 16-frame clip at the crop size, whatever the recipe's clip length
(S3D evaluates 128-frame clips, Swin3D 32-frame ones): `reference_shape` gives that input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from forwardlab.errors import ForwardlabError
from forwardlab.video.convlab.models import ClipShape, clip_must_fit, random_model, recipe_shape
from forwardlab.video.models.catalog import get_entry
from forwardlab.video.models.tiny import FrameConv, TimeConv, r2plus1d_mid_channels

TORCHVISION_OPS_FRAMES = 16


@dataclass(frozen=True)
class LayerCost:
    """One module's own share: parameters it holds directly, MACs of the ops it runs itself (not its children)."""

    name: str
    kind: str
    params: int
    macs: int
    output_shape: tuple[int, ...] | None


@dataclass(frozen=True)
class ModelCost:
    model: str
    clip: str
    params: int
    macs: int
    layers: list[LayerCost]
    published_params: int | None = None
    published_gmacs: float | None = None
    stages: dict[str, int] = field(default_factory=dict)  # top-level module -> MACs (children included)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def params_diff(self) -> float | None:
        """Relative difference to the published parameter count (None when there is none for this clip)."""
        return None if self.published_params is None else self.params / self.published_params - 1

    @property
    def gmacs_diff(self) -> float | None:
        return None if self.published_gmacs is None else self.gmacs / self.published_gmacs - 1

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(gmacs=self.gmacs, params_diff=self.params_diff, gmacs_diff=self.gmacs_diff)
        return out


def count(model: nn.Module, shape: Sequence[int]) -> tuple[int, list[LayerCost], dict[str, int]]:
    """Total MACs of one forward pass on an input of `shape`, per-layer rows, and MACs per top-level module.

    The model may live on "meta" (nothing is computed) or on a real device.
    """
    device = next(iter(model.parameters()), torch.empty(0)).device
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, module in model.named_modules():
        if name:

            def hook(_m: nn.Module, _i: object, out: object, name: str = name) -> None:
                if isinstance(out, torch.Tensor):
                    shapes[name] = tuple(out.shape)

            handles.append(module.register_forward_hook(hook))
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            model(torch.zeros(*shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
    root = type(model).__name__
    inclusive = {
        key.removeprefix(root).removeprefix("."): sum(ops.values()) // 2
        for key, ops in counter.get_flop_counts().items()
        if key == root or key.startswith(root + ".")
    }
    layers = []
    for name, module in model.named_modules():
        own_params = sum(p.numel() for p in module.parameters(recurse=False))
        prefix = f"{name}." if name else ""
        children = sum(inclusive.get(prefix + child, 0) for child, _ in module.named_children())
        own_macs = inclusive.get(name, 0) - children
        if own_params or own_macs:
            layers.append(LayerCost(name or "(model)", type(module).__name__, own_params, own_macs, shapes.get(name)))
    stages = {child: inclusive.get(child, 0) for child, _ in model.named_children()}
    return inclusive.get("", 0), layers, stages


def reference_shape(name: str) -> ClipShape:
    """The clip the registry's published cost refers to: 16 frames for torchvision's models, else the recipe's."""
    entry = get_entry(name)
    frames = TORCHVISION_OPS_FRAMES if entry.family == "torchvision" else None
    return recipe_shape(entry, frames)


def model_cost(name: str, *, frames: int | None = None, size: int | tuple[int, int] | None = None) -> ModelCost:
    """Cost of registry model `name` on one clip (default: its recipe's); compared with the published totals
    when the clip is the one they were published for."""
    entry = get_entry(name)
    shape = recipe_shape(entry, frames, size)
    model = random_model(entry, device="meta")
    params = sum(p.numel() for p in model.parameters())
    with clip_must_fit(name, shape):
        macs, layers, stages = count(model, shape.batch())
    published = shape == reference_shape(name)
    return ModelCost(
        model=name,
        clip=str(shape),
        params=params,
        macs=macs,
        layers=layers,
        published_params=entry.params if published else None,
        published_gmacs=entry.gmacs if published else None,
        stages=stages,
    )


@dataclass(frozen=True)
class ConvVariant:
    """One way to build the same layer; `mid_channels` only for (2+1)D."""

    kind: str
    kernels: str
    params: int
    macs: int
    mid_channels: int | None = None


def conv_variants(
    in_channels: int = 64,
    out_channels: int = 64,
    *,
    kernel_t: int = 3,
    kernel_s: int = 3,
    clip: tuple[int, int, int] = (16, 56, 56),
) -> list[ConvVariant]:
    """The same layer as 2D (1 x k x k), 3D (t x k x k) and (2+1)D (1 x k x k, then t x 1 x 1), 'same' padding.

    (2+1)D's middle width follows Tran et al. (2018), as torchvision's R(2+1)D does: the pair gets about the
    parameters of the t x k x k kernel, which leaves room for the extra non-linearity between the two.
    """
    if min(in_channels, out_channels, kernel_t, kernel_s, *clip) < 1:
        raise ForwardlabError(f"conv_variants: channels, kernels and clip size must be >= 1 (got {locals()})")
    mid = r2plus1d_mid_channels(in_channels, out_channels, kernel_t, kernel_s)
    pad_t, pad_s = kernel_t // 2, kernel_s // 2
    spatial = (1, kernel_s, kernel_s)
    with torch.device("meta"):
        layers: list[tuple[str, str, nn.Module, int | None]] = [
            (
                "2D",
                f"1x{kernel_s}x{kernel_s}",
                FrameConv(in_channels, out_channels, spatial, padding=(0, pad_s, pad_s), bias=False),
                None,
            ),
            (
                "3D",
                f"{kernel_t}x{kernel_s}x{kernel_s}",
                nn.Conv3d(
                    in_channels, out_channels, (kernel_t, *spatial[1:]), padding=(pad_t, pad_s, pad_s), bias=False
                ),
                None,
            ),
            (
                "(2+1)D",
                f"1x{kernel_s}x{kernel_s} -> {kernel_t}x1x1",
                nn.Sequential(
                    FrameConv(in_channels, mid, spatial, padding=(0, pad_s, pad_s), bias=False),
                    TimeConv(mid, out_channels, (kernel_t, 1, 1), padding=(pad_t, 0, 0), bias=False),
                ),
                mid,
            ),
        ]
    out = []
    for kind, kernels, module, mid_channels in layers:
        macs, _, _ = count(module, (1, in_channels, *clip))
        out.append(ConvVariant(kind, kernels, sum(p.numel() for p in module.parameters()), macs, mid_channels))
    return out
