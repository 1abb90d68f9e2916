"""Shift equivariance, stage by stage: does shifting the clip shift the features, and where does it not?

A clip `a` and a copy `b` of the same content moved by (k frames, dy, dx pixels) are cut from one larger
random clip, so the content really moves (nothing wraps around). A stage whose units lie `s` input positions
apart (its cumulative stride) can only follow shifts that are multiples of `s`; for those, its features of
`b` should equal its features of `a` moved by shift / s. Convolutions and pooling with no padding make that
exact; zero padding breaks it near the borders (a unit there sees padding in one clip and content in the
other), so the error is reported separately for the interior (units whose receptive field stays inside
the clip along the shifted axes) and the border. By default each stage is tested with its own stride as
the shift, the smallest move it can follow.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from forwardlab.errors import ForwardlabError
from forwardlab.video.convlab.models import clip_must_fit, recipe_shape, trained_or_random
from forwardlab.video.convlab.receptive_field import StageField, trace_fields
from forwardlab.video.models.catalog import get_entry

Axis = Literal["time", "space"]
AXES: tuple[Axis, ...] = ("time", "space")
Triple = tuple[int, int, int]


@dataclass(frozen=True)
class StageShift:
    """One stage under one input shift: relative errors (interior, border, all) and where they are.

    `error_hw` is the relative error per (height, width) position, averaged over frames; `error_t` per frame,
    averaged over the frame. Both are over the positions the two clips share.
    """

    stage: str
    shift: Triple
    stride: Triple
    aligned: bool
    error_interior: float | None = None
    error_border: float | None = None
    error_all: float | None = None
    margin: Triple | None = None
    error_hw: list[list[float]] = field(default_factory=list)
    error_t: list[float] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class OutputShift:
    """How much the model's final output moves under a shift (invariance, not equivariance)."""

    shift: Triple
    relative_change: float
    same_top1: bool


@dataclass(frozen=True)
class EquivarianceResult:
    model: str
    clip: str
    axis: str
    weights: str
    stages: list[StageShift]
    outputs: list[OutputShift]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stage_shift(axis: Axis, stage: StageField, shift: int | None) -> Triple:
    if axis == "time":
        return (shift if shift is not None else stage.stride_t or 1), 0, 0
    return 0, *((shift, shift) if shift is not None else (stage.stride_h or 1, stage.stride_w or 1))


def _features(model: nn.Module, stages: Sequence[str], x: torch.Tensor) -> tuple[dict[str, torch.Tensor], Any]:
    found: dict[str, torch.Tensor] = {}
    handles = [
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: found.__setitem__(name, out.detach().clone())
        )
        for name in stages
    ]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return found, out


def _compare(name: str, fa: torch.Tensor, fb: torch.Tensor, stage: StageField, shift: Triple) -> StageShift:
    stride: Triple = (stage.stride_t or 1, stage.stride_h or 1, stage.stride_w or 1)
    if any(s % j for s, j in zip(shift, stride, strict=True)):
        return StageShift(name, shift, stride, False, note=f"shift {shift} is not a multiple of the stride {stride}")
    moved = [s // j for s, j in zip(shift, stride, strict=True)]
    grid = fa.shape[2:]
    if any(m >= n for m, n in zip(moved, grid, strict=True)):
        return StageShift(name, shift, stride, False, note=f"shift moves the {tuple(grid)} grid out of view")
    a = fa[:, :, moved[0] :, moved[1] :, moved[2] :]
    b = fb[:, :, : grid[0] - moved[0], : grid[1] - moved[1], : grid[2] - moved[2]]
    diff2 = (a - b).pow(2).sum(dim=(0, 1))  # per (t, h, w) of the overlap
    ref2 = a.pow(2).sum(dim=(0, 1))
    scale = ref2.sqrt().mean().clamp_min(1e-12)
    rf = (stage.rf_frames or 1, stage.rf_height or 1, stage.rf_width or 1)
    # a unit is interior when its receptive field stays off the padding along the shifted axes (along the others
    # both clips see the same padding at the same place, which does not break equivariance)
    margin: Triple = tuple(math.ceil((r - 1) / 2 / j) if s else 0 for r, j, s in zip(rf, stride, shift, strict=True))  # type: ignore[assignment]
    interior = torch.ones_like(diff2, dtype=torch.bool)
    for dim, (m, n) in enumerate(zip(margin, diff2.shape, strict=True)):
        keep = torch.zeros(n, dtype=torch.bool)
        keep[m : max(m, n - m)] = True
        interior &= keep.view([-1 if d == dim else 1 for d in range(3)])

    def rel(mask: torch.Tensor) -> float | None:
        if not mask.any():
            return None
        return float(diff2[mask].sum().sqrt() / ref2[mask].sum().sqrt().clamp_min(1e-12))

    error = diff2.sqrt() / scale
    return StageShift(
        stage=name,
        shift=shift,
        stride=stride,
        aligned=True,
        error_interior=rel(interior),
        error_border=rel(~interior),
        error_all=rel(torch.ones_like(interior)),
        margin=margin,
        error_hw=[[round(float(v), 5) for v in row] for row in error.mean(dim=0)],
        error_t=[round(float(v), 5) for v in error.mean(dim=(1, 2))],
    )


def measure(
    model: nn.Module,
    clip: Triple,
    *,
    axis: Axis = "space",
    shift: int | None = None,
    seed: int = 0,
    stages: Sequence[str] | None = None,
) -> tuple[list[StageShift], list[OutputShift]]:
    """Per stage, the error of shifted features against shifted input; `shift=None`: each stage's stride."""
    if axis not in AXES:
        raise ForwardlabError(f"axis {axis!r}: expected one of {', '.join(AXES)}")
    if shift is not None and shift < 1:
        raise ForwardlabError(f"shift {shift}: must be at least 1 (frames or pixels)")
    model = model.eval()
    with clip_must_fit(type(model).__name__, "x".join(map(str, clip))):
        fields = trace_fields(copy.deepcopy(model).to("meta"), clip, stages)
    usable = [f for f in fields if f.traced and f.grid is not None and max(f.grid) > 1]
    if not usable:
        raise ForwardlabError("no stage with a traceable T x H x W grid: equivariance needs conv/pool stages")
    shifts = {f.stage: _stage_shift(axis, f, shift) for f in usable}
    most: Triple = tuple(max(s[d] for s in shifts.values()) for d in range(3))  # type: ignore[assignment]
    if any(m >= c for m, c in zip(most, clip, strict=True)):
        raise ForwardlabError(f"shift {most} is not smaller than the clip {clip}; use a larger clip or a smaller shift")
    generator = torch.Generator().manual_seed(seed)
    device = next(iter(model.parameters()), torch.empty(0)).device
    big = torch.randn(1, 3, *(c + m for c, m in zip(clip, most, strict=True)), generator=generator).to(device)
    t, h, w = clip
    names = [f.stage for f in usable]
    feats_a, out_a = _features(model, names, big[:, :, :t, :h, :w])
    results: list[StageShift] = []
    outputs: list[OutputShift] = []
    for moved in sorted(set(shifts.values())):
        k, dy, dx = moved
        feats_b, out_b = _features(model, names, big[:, :, k : k + t, dy : dy + h, dx : dx + w])
        if isinstance(out_a, torch.Tensor) and isinstance(out_b, torch.Tensor):
            change = float((out_a - out_b).norm() / out_a.norm().clamp_min(1e-12))
            outputs.append(OutputShift(moved, change, bool((out_a.argmax(-1) == out_b.argmax(-1)).all())))
        for stage in usable:
            if shifts[stage.stage] == moved:
                results.append(_compare(stage.stage, feats_a[stage.stage], feats_b[stage.stage], stage, moved))
    order = {name: i for i, name in enumerate(names)}
    return sorted(results, key=lambda r: order[r.stage]), outputs


def model_equivariance(
    name: str,
    *,
    axis: Axis = "space",
    shift: int | None = None,
    frames: int | None = None,
    size: int | tuple[int, int] | None = None,
    seed: int = 0,
) -> EquivarianceResult:
    """`measure` on registry model `name` (its weights when on this machine, else random ones)."""
    entry = get_entry(name)
    clip = recipe_shape(entry, frames, size)
    model, trained = trained_or_random(name)
    stages, outputs = measure(model, clip.thw, axis=axis, shift=shift, seed=seed)
    return EquivarianceResult(name, str(clip), axis, "trained" if trained else "random", stages, outputs)
