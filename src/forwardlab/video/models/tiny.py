"""Three small video networks that differ only in their convolutions, for learning and for the demo.

All three share one skeleton: a stem (convolution with stride 2, then a 3x3 max pool), three residual
stages (`width`, `2*width`, `4*width` channels, the last two halving the frame size), pooling (the
maximum over space, since the actors are small and bright, then the average over time), dropout and a
linear classifier. The only thing that changes is the convolution used everywhere in that skeleton:

* `tiny_2d`: `1 x 3 x 3` kernels. Every frame is processed on its own and the frames' features are
  averaged at the end (temporal average pooling), so the network cannot see the order of its frames:
  a clip and the same clip played backwards get exactly the same scores.
* `tiny_3d`: full `3 x 3 x 3` kernels, mixing space and time in every layer.
* `tiny_r2plus1d`: `(2+1)D` factorization (Tran et al., 2018): a `1 x 3 x 3` spatial convolution, batch
  norm and ReLU, then a `3 x 1 x 1` temporal one; the middle width is chosen so the pair has about the
  parameters of the `3 x 3 x 3` kernel it replaces.

Nothing is strided in time, so each output keeps one feature per input frame; seven convolution layers
in a row let the 3D and (2+1)D nets see 15 consecutive frames, enough to tell the direction of the
synthetic set's motions. The `1 x k x k` and `k x 1 x 1` kernels are Conv3d modules (same parameters and
state dicts) computed with `conv2d`, which PyTorch's CPU kernels run several times faster.

Input: float `(B, 3, T, H, W)` normalized with the recipe's mean/std. The recipe (`TINY_RECIPE`): 16
frames at 8 fps (a 1.9 s window), every frame resized to 48 x 72 (height x width: the whole frame, aspect
not kept, so small moving objects never leave the view); one clip costs 0.05 GMACs (2D) or 0.14 GMACs
(3D, (2+1)D). The registered entries' classes are the synthetic set's
(`forwardlab.video.data.synthetic_classes.CLASSES`); the 2D and (2+1)D weights ship inside the package
(`forwardlab/video/models/weights/`), produced by `scripts/train_tiny.py`, and load by name offline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from forwardlab.video.data.synthetic_classes import CLASSES
from forwardlab.video.models.registry import ModelEntry, Recipe, Weights, register
from forwardlab.video.transforms import _hw

ConvKind = Literal["2d", "3d", "2plus1d"]
CONV_KINDS: tuple[ConvKind, ...] = ("2d", "3d", "2plus1d")

# ImageNet statistics: the synthetic clips are plain RGB with no particular colour balance.
TINY_MEAN = (0.485, 0.456, 0.406)
TINY_STD = (0.229, 0.224, 0.225)
TINY_RECIPE = Recipe(
    frames_per_clip=16,
    fps=8.0,
    resize_size=(48, 72),
    crop_size=(48, 72),
    mean=TINY_MEAN,
    std=TINY_STD,
)
DEFAULT_WIDTH = 16
WEIGHTS_PACKAGE_DIR = "video/models/weights"


def _int_padding(conv: nn.Conv3d) -> tuple[int, int, int]:
    if isinstance(conv.padding, str):
        raise ValueError(f"{type(conv).__name__} needs numeric padding, got {conv.padding!r}")
    t, h, w = conv.padding
    return int(t), int(h), int(w)


class FrameConv(nn.Conv3d):
    """A `1 x k x k` Conv3d computed as a 2D convolution of every frame (same weights, same result).

    PyTorch's CPU kernels run these shapes 2-3x faster as `conv2d` over `(B*T, C, H, W)` than as `conv3d`.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        _, pad_h, pad_w = _int_padding(self)
        y = F.conv2d(frames, self.weight.squeeze(2), self.bias, (self.stride[1], self.stride[2]), (pad_h, pad_w))
        return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)


class TimeConv(nn.Conv3d):
    """A `k x 1 x 1` Conv3d computed as a `(k, 1)` 2D convolution over `(B, C, T, H*W)` (3-5x faster on CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        pad_t, _, _ = _int_padding(self)
        y = F.conv2d(x.reshape(b, c, t, h * w), self.weight.squeeze(-1), self.bias, (self.stride[0], 1), (pad_t, 0))
        return y.reshape(b, y.shape[1], y.shape[2], h, w)


def r2plus1d_mid_channels(c_in: int, c_out: int, kernel_t: int = 3, kernel_s: int = 3) -> int:
    """R(2+1)D's middle width: as many parameters as the full kernel, t*k*k*in*out = mid*(k*k*in + t*out)."""
    full = kernel_t * kernel_s * kernel_s * c_in * c_out
    return max(1, full // (kernel_s * kernel_s * c_in + kernel_t * c_out))


def _conv(kind: ConvKind, c_in: int, c_out: int, stride: int) -> nn.Module:
    """The one thing the three networks do differently: a `c_in -> c_out` convolution, spatial `stride`."""
    if kind == "2d":
        return FrameConv(c_in, c_out, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False)
    if kind == "3d":
        return nn.Conv3d(c_in, c_out, (3, 3, 3), stride=(1, stride, stride), padding=(1, 1, 1), bias=False)
    if kind == "2plus1d":
        mid = r2plus1d_mid_channels(c_in, c_out)
        return nn.Sequential(
            FrameConv(c_in, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            TimeConv(mid, c_out, (3, 1, 1), padding=(1, 0, 0), bias=False),
        )
    raise ValueError(f"unknown convolution kind {kind!r}; expected one of {', '.join(CONV_KINDS)}")


class _Block(nn.Module):
    """Residual block: conv-BN-ReLU-conv-BN plus a shortcut (1x1x1 projection when the shape changes)."""

    def __init__(self, kind: ConvKind, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv(kind, c_in, c_out, stride)
        self.bn1 = nn.BatchNorm3d(c_out)
        self.conv2 = _conv(kind, c_out, c_out, 1)
        self.bn2 = nn.BatchNorm3d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv3d(c_in, c_out, 1, stride=(1, stride, stride), bias=False), nn.BatchNorm3d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class TinyVideoNet(nn.Module):
    """The shared skeleton; `kind` picks the convolution. `fc` is the classifier head (replaceable)."""

    def __init__(self, kind: ConvKind, *, num_classes: int, width: int = DEFAULT_WIDTH, dropout: float = 0.2) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.kind = kind
        self.stem = nn.Sequential(
            _conv(kind, 3, width, 2),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.layer1 = _Block(kind, width, width, 1)
        self.layer2 = _Block(kind, width, 2 * width, 2)
        self.layer3 = _Block(kind, 2 * width, 4 * width, 2)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(4 * width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for block in (self.layer1, self.layer2, self.layer3):
            nn.init.zeros_(block.bn2.weight)  # each residual block starts as the identity
        nn.init.normal_(self.fc.weight, std=0.01)  # start near uniform scores
        nn.init.zeros_(self.fc.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, 3, T, H, W)` -> pooled features `(B, 4 * width)`."""
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        # spatial max (the actors are small, bright and anywhere), then temporal average pooling
        return x.amax(dim=(3, 4)).mean(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))


def tiny_2d(*, num_classes: int, width: int = DEFAULT_WIDTH) -> TinyVideoNet:
    """Per-frame 2D convolutions, then temporal average pooling: blind to frame order by construction."""
    return TinyVideoNet("2d", num_classes=num_classes, width=width)


def tiny_3d(*, num_classes: int, width: int = DEFAULT_WIDTH) -> TinyVideoNet:
    """Full 3x3x3 convolutions."""
    return TinyVideoNet("3d", num_classes=num_classes, width=width)


def tiny_r2plus1d(*, num_classes: int, width: int = DEFAULT_WIDTH) -> TinyVideoNet:
    """(2+1)D convolutions: 1x3x3 spatial, then 3x1x1 temporal."""
    return TinyVideoNet("2plus1d", num_classes=num_classes, width=width)


BUILDERS: dict[str, Callable[..., TinyVideoNet]] = {
    "tiny_2d": tiny_2d,
    "tiny_3d": tiny_3d,
    "tiny_r2plus1d": tiny_r2plus1d,
}
# Which of them ship trained weights, and the file under forwardlab/video/models/weights/.
SHIPPED: dict[str, str] = {"tiny_2d": "tiny_2d_synthetic.pt", "tiny_r2plus1d": "tiny_r2plus1d_synthetic.pt"}

# What `scripts/train_tiny.py` measured for the shipped weights, written by it next to them: per model
# top-1/top-5 over all classes, top-1 on the classes one frame identifies and on the time-reversed pairs.
RECORDED_ACCURACY_PATH = Path(__file__).parent / "weights" / "recorded_accuracy.json"


def recorded_accuracy() -> dict[str, dict[str, Any]]:
    """The shipped weights' figures by model name ({} when the file is missing, e.g. while regenerating)."""
    if not RECORDED_ACCURACY_PATH.is_file():
        return {}
    models: dict[str, dict[str, Any]] = json.loads(RECORDED_ACCURACY_PATH.read_text(encoding="utf-8"))["models"]
    return models


def _params(builder: Callable[..., TinyVideoNet]) -> int:
    return sum(p.numel() for p in builder(num_classes=len(CLASSES)).parameters())


def _gmacs(kind: ConvKind, width: int = DEFAULT_WIDTH) -> float:
    """Multiply-accumulates of one clip through the convolutions and the head, at the recipe's size."""
    t = TINY_RECIPE.frames_per_clip
    h, w = _hw(TINY_RECIPE.crop_size)
    model = TinyVideoNet(kind, num_classes=len(CLASSES), width=width)
    macs = 0

    def hook(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv3d):
            per_output = module.in_channels // module.groups
            for k in module.kernel_size:
                per_output *= k
            macs += output.numel() * per_output
        elif isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv3d | nn.Linear)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, t, h, w))
    for handle in handles:
        handle.remove()
    return round(macs / 1e9, 3)


def _accuracy(name: str) -> dict[str, float]:
    figures = recorded_accuracy().get(name)
    if not figures:
        return {}
    return {"acc@1": round(100 * figures["top1"], 2), "acc@5": round(100 * figures["top5"], 2)}


def _entry(name: str) -> ModelEntry:
    builder = BUILDERS[name]
    file_name = SHIPPED.get(name)

    def build(num_classes: int) -> nn.Module:
        return builder(num_classes=num_classes)

    return ModelEntry(
        name=name,
        builder=build,
        weights=None
        if file_name is None
        else Weights(
            file_name=file_name,
            url=None,
            install_hint="they ship inside the forwardlab package; regenerate them with scripts/train_tiny.py",
            package_file=("forwardlab", f"{WEIGHTS_PACKAGE_DIR}/{file_name}"),
        ),
        classes=CLASSES,
        recipe=TINY_RECIPE,
        params=_params(builder),
        gmacs=_GMACS[name],
        accuracy=_accuracy(name),
        family="forwardlab-tiny",
    )


# Computed once by `_gmacs` and written down: registering must not run three forward passes at import.
_GMACS: dict[str, float] = {"tiny_2d": 0.048, "tiny_3d": 0.142, "tiny_r2plus1d": 0.142}

ENTRIES: dict[str, ModelEntry] = {name: register(_entry(name)) for name in BUILDERS}

__all__ = [
    "BUILDERS",
    "ENTRIES",
    "RECORDED_ACCURACY_PATH",
    "SHIPPED",
    "TINY_RECIPE",
    "TinyVideoNet",
    "recorded_accuracy",
    "tiny_2d",
    "tiny_3d",
    "tiny_r2plus1d",
]
