"""First-layer filters: the right tensor (composed for (2+1)D) and an animated grid one frame per tap."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from forwardlab.video.convlab.filters import first_layer, render_filters
from forwardlab.video.models import tiny


def test_first_layer_of_2d_and_3d_nets_is_their_rgb_convolution() -> None:
    flat = first_layer(tiny.tiny_2d(num_classes=12))
    assert tuple(flat.weight.shape) == (16, 3, 1, 3, 3) and not flat.composed
    full = first_layer(tiny.tiny_3d(num_classes=12))
    assert tuple(full.weight.shape) == (16, 3, 3, 3, 3) and full.source == "stem.0"


def test_2plus1d_filters_are_the_linear_composition_of_its_two_convolutions() -> None:
    torch.manual_seed(0)
    model = tiny.tiny_r2plus1d(num_classes=12).eval()
    spatial, norm, _, temporal = model.stem[0]
    norm.running_var.uniform_(0.5, 2.0)  # a non-trivial scale to fold in
    layer = first_layer(model)
    assert layer.composed and tuple(layer.weight.shape) == (16, 3, 3, 3, 3)
    x = torch.randn(1, 3, 6, 9, 9)
    scale = (norm.weight / torch.sqrt(norm.running_var + norm.eps)).view(1, -1, 1, 1, 1)
    with torch.no_grad():
        expected = F.conv3d(F.conv3d(x, spatial.weight) * scale, temporal.weight)  # no padding, no ReLU
        got = F.conv3d(x, layer.weight)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_render_i3d_filters_as_an_animated_grid(tmp_path: Path) -> None:
    result = render_filters("i3d", tmp_path)  # random weights when DeepMind's are not installed: shapes only
    assert result.shape == (64, 3, 7, 7, 7)
    with Image.open(result.gif) as gif:
        assert gif.n_frames == 7  # one frame per temporal tap
        assert gif.size[0] > 8 * 7 * 6  # 8 x 8 tiles of 7 x 7 filters shown 6x
    with Image.open(result.png) as png:
        assert png.size == gif.size
