"""Model input recipes: uint8 until the end, crops where they should be, torchvision-compatible output."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.video import R2Plus1D_18_Weights

from forwardlab.video.transforms import KINETICS_MEAN, KINETICS_STD, VideoPreset, resize, spatial_crops


def video(t: int = 4, h: int = 120, w: int = 160) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (t, 3, h, w), dtype=torch.uint8, generator=g)


def test_short_side_resize_keeps_aspect_and_dtype() -> None:
    out = resize(video(), 60)
    assert out.shape == (4, 3, 60, 80) and out.dtype == torch.uint8


def test_three_crops_run_along_the_long_side() -> None:
    v = video(h=100, w=160)
    left, centre, right = spatial_crops(v, 100, 3)
    assert torch.equal(left, v[..., :, 0:100])
    assert torch.equal(centre, v[..., :, 30:130])
    assert torch.equal(right, v[..., :, 60:160])


def test_crop_larger_than_frame_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="larger than the frames"):
        spatial_crops(video(h=50, w=50), 64)


def test_preset_matches_torchvisions_own_transform() -> None:
    v = video(t=8, h=128, w=171)
    ours = VideoPreset(resize_size=(128, 171), crop_size=(112, 112))(v)[0]
    theirs = R2Plus1D_18_Weights.KINETICS400_V1.transforms()(v)
    assert ours.shape == (3, 8, 112, 112)
    torch.testing.assert_close(ours, theirs)


def test_preset_normalizes_with_its_statistics() -> None:
    grey = torch.full((2, 3, 16, 16), 128, dtype=torch.uint8)
    out = VideoPreset(resize_size=16, crop_size=16, spatial_crops=3)(grey)
    assert out.shape == (3, 3, 2, 16, 16)
    expected = (128 / 255 - torch.tensor(KINETICS_MEAN)) / torch.tensor(KINETICS_STD)
    torch.testing.assert_close(out[0, :, 0, 0, 0], expected)
