"""Receptive field per stage, in frames and in pixels, and how much each stage downsamples time vs space.

For one axis, a layer with kernel k, dilation d and stride s turns an input whose units see `r` input
positions `j` apart (the jump) into one whose units see r + (k - 1) * d * j positions, j * s apart. The lab
follows that arithmetic through a real forward pass on the "meta" device (no compute): convolution and
pooling modules (and `conv3d` / `max_pool3d` / `avg_pool3d` called directly) apply it; ops that keep the
(T, H, W) grid (normalisation, activations, padding, residual sums, channel concatenation) pass it on, taking
the widest field where branches meet; a global pool makes the field the whole clip. Anything else (attention
over tokens, reshapes) ends the trace for that tensor, and the stage says so: attention layers have no fixed
receptive field to report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from forwardlab.video.convlab.models import ClipShape, clip_must_fit, random_model, recipe_shape
from forwardlab.video.models.catalog import get_entry

Triple = tuple[int, int, int]
_CONV_POOL = (nn.Conv3d, nn.MaxPool3d, nn.AvgPool3d)
_FUNCTIONAL = {"conv3d", "max_pool3d", "_max_pool3d", "max_pool3d_with_indices", "avg_pool3d"}
_GLOBAL = {"adaptive_avg_pool3d", "adaptive_max_pool3d", "_adaptive_max_pool3d", "adaptive_max_pool3d_with_indices"}


@dataclass(frozen=True)
class Field:
    """Per axis (t, h, w): how many input positions one unit sees, and the input distance between units."""

    size: Triple
    jump: Triple

    def through(self, kernel: Triple, stride: Triple, dilation: Triple = (1, 1, 1)) -> Field:
        size = tuple(r + (k - 1) * d * j for r, k, d, j in zip(self.size, kernel, dilation, self.jump, strict=True))
        jump = tuple(j * s for j, s in zip(self.jump, stride, strict=True))
        return Field(size, jump)  # type: ignore[arg-type]

    def union(self, other: Field) -> Field:
        """Where branches meet (a residual sum, a concatenation): the wider field, the coarser grid."""
        return Field(
            tuple(map(max, self.size, other.size)),  # type: ignore[arg-type]
            tuple(map(max, self.jump, other.jump)),  # type: ignore[arg-type]
        )


INPUT_FIELD = Field((1, 1, 1), (1, 1, 1))


def _triple(value: Any, default: int | None = None) -> Triple:
    if value is None or (isinstance(value, Sequence) and len(value) == 0):
        assert default is not None
        return default, default, default
    if isinstance(value, int):
        return value, value, value
    values = tuple(int(v) for v in value)
    return (values[0], values[1], values[2]) if len(values) == 3 else (values[0], values[0], values[0])


def _module_field(module: nn.Module, field: Field) -> Field:
    if isinstance(module, nn.Conv3d):
        return field.through(_triple(module.kernel_size), _triple(module.stride), _triple(module.dilation))
    kernel = _triple(module.kernel_size)
    stride = _triple(module.stride, default=kernel[0]) if module.stride is not None else kernel
    dilation = _triple(getattr(module, "dilation", 1))
    return field.through(kernel, stride, dilation)


def _functional_field(name: str, args: Sequence[Any], kwargs: dict[str, Any], field: Field) -> Field:
    if name == "conv3d":
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        stride = args[3] if len(args) > 3 else kwargs.get("stride", 1)
        dilation = args[5] if len(args) > 5 else kwargs.get("dilation", 1)
        return field.through(_triple(weight.shape[2:]), _triple(stride), _triple(dilation))
    kernel = _triple(args[1] if len(args) > 1 else kwargs["kernel_size"])
    stride = args[2] if len(args) > 2 else kwargs.get("stride")
    dilation = (args[4] if len(args) > 4 else kwargs.get("dilation", 1)) if "max" in name else 1
    return field.through(kernel, _triple(stride) if stride not in (None, []) else kernel, _triple(dilation))


def _grid(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape[-3:])


class _Tracer(TorchFunctionMode):
    """Carries a `Field` along every 5D tensor of one forward pass (keyed by tensor identity)."""

    def __init__(self, clip: tuple[int, int, int]) -> None:
        super().__init__()
        self.clip = clip
        self.fields: dict[int, tuple[torch.Tensor, Field]] = {}
        self.opaque = 0  # > 0 inside a conv/pool module, whose own ops the module's rule replaces

    def get(self, tensor: object) -> Field | None:
        if isinstance(tensor, torch.Tensor):
            hit = self.fields.get(id(tensor))
            if hit is not None and hit[0] is tensor:
                return hit[1]
        return None

    def set(self, tensor: torch.Tensor, field: Field) -> None:
        self.fields[id(tensor)] = (tensor, field)

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.opaque:
            return out
        inputs = [t for t in tree_flatten((args, kwargs))[0] if self.get(t) is not None]
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor) and t.dim() == 5]
        if not inputs or not outputs:
            return out
        fields = [self.get(t) for t in inputs]
        merged = fields[0]
        assert merged is not None
        for other in fields[1:]:
            merged = merged.union(other)  # type: ignore[arg-type]
        name = getattr(func, "__name__", "")
        for tensor in outputs:
            if name in _FUNCTIONAL and inputs[0] is args[0]:
                self.set(tensor, _functional_field(name, args, kwargs, self.get(args[0])))  # type: ignore[arg-type]
            elif name in _GLOBAL and _grid(tensor) == (1, 1, 1):
                whole = [max(r, c) for r, c in zip(merged.size, self.clip, strict=True)]
                self.set(tensor, Field((whole[0], whole[1], whole[2]), merged.jump))
            elif name == "pad" or any(_grid(tensor) == _grid(t) for t in inputs):
                self.set(tensor, merged)
        return out


@dataclass(frozen=True)
class StageField:
    """One stage's output: grid (frames x height x width), receptive field and stride, or why there is none."""

    stage: str
    grid: tuple[int, ...] | None
    rf_frames: int | None
    rf_height: int | None
    rf_width: int | None
    stride_t: int | None
    stride_h: int | None
    stride_w: int | None
    note: str = ""

    @property
    def traced(self) -> bool:
        return self.rf_frames is not None


@dataclass(frozen=True)
class ModelField:
    model: str
    clip: str
    fps: float | None
    stages: list[StageField]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LONG_CONTAINER = 6  # R(2+1)D's stem has 6 layers and stays one stage; S3D's `features` has 16


def stage_names(model: nn.Module) -> list[str]:
    """The model's top-level children; a long container (S3D's `features`, MViT's `blocks`) by its items."""
    names = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential | nn.ModuleList) and len(child) > LONG_CONTAINER:
            names += [f"{name}.{sub}" for sub, _ in child.named_children()]
        else:
            names.append(name)
    return names


def trace_fields(model: nn.Module, clip: tuple[int, int, int], stages: Sequence[str] | None = None) -> list[StageField]:
    """Receptive field and stride of each stage's output for an input clip of `clip` = (T, H, W)."""
    tracer = _Tracer(clip)
    stages = list(stages) if stages is not None else stage_names(model)
    seen: dict[str, StageField] = {}
    handles = []

    def enter(_m: nn.Module, inputs: tuple[Any, ...]) -> None:
        tracer.opaque += 1
        tracer.pending.append(tracer.get(inputs[0]) if inputs else None)  # type: ignore[attr-defined]

    def leave(module: nn.Module, _inputs: object, output: object) -> None:
        tracer.opaque -= 1
        field = tracer.pending.pop()  # type: ignore[attr-defined]
        if field is not None and isinstance(output, torch.Tensor) and not tracer.opaque:
            tracer.set(output, _module_field(module, field))

    def record(name: str) -> Callable[[nn.Module, object, object], None]:
        def hook(_m: nn.Module, _inputs: object, output: object) -> None:
            seen[name] = _stage(name, output, tracer.get(output))

        return hook

    tracer.pending = []  # type: ignore[attr-defined]
    for _name, module in model.named_modules():
        if isinstance(module, _CONV_POOL):
            handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    for name in stages:
        handles.append(model.get_submodule(name).register_forward_hook(record(name)))
    device = next(iter(model.parameters()), torch.empty(0)).device
    x = torch.zeros(1, 3, *clip, device=device)
    tracer.set(x, INPUT_FIELD)
    try:
        with tracer, torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return [seen.get(name, StageField(name, None, None, None, None, None, None, None, "not run")) for name in stages]


def _stage(name: str, output: object, field: Field | None) -> StageField:
    if field is None or not isinstance(output, torch.Tensor):
        why = "tokens or attention: no fixed field" if isinstance(output, torch.Tensor) and output.dim() == 5 else ""
        return StageField(name, None, None, None, None, None, None, None, why or "output is not a T x H x W grid")
    return StageField(name, _grid(output), *field.size, *field.jump)


def model_fields(name: str, *, frames: int | None = None, size: int | tuple[int, int] | None = None) -> ModelField:
    """`trace_fields` for registry model `name` on its recipe's clip (or the given one); weights do not matter."""
    entry = get_entry(name)
    shape: ClipShape = recipe_shape(entry, frames, size)
    with clip_must_fit(name, shape):
        stages = trace_fields(random_model(entry, device="meta"), shape.thw)
    return ModelField(name, str(shape), entry.recipe.fps, stages)


def deepest_traced(fields: Sequence[StageField]) -> StageField | None:
    """The last stage whose field is known and whose output is still a grid (not yet pooled to one unit)."""
    usable = [f for f in fields if f.traced and f.grid is not None and max(f.grid) > 1]
    return usable[-1] if usable else None
