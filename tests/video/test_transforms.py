"""Model input recipes: uint8 until the end, crops where they should be, torchvision-compatible output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.video import R2Plus1D_18_Weights

from forwardlab.video.transforms import (
    CROP_RATIO,
    CROP_SCALE,
    KINETICS_MEAN,
    KINETICS_STD,
    TrainPreset,
    VideoPreset,
    flip_allowed,
    random_resized_crop_box,
    resize,
    spatial_crops,
    to_model_input,
)


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


def test_preset_crops_are_its_views_before_normalizing() -> None:
    preset = VideoPreset(resize_size=(100, 140), crop_size=96, spatial_crops=3)
    crops = preset.crops(video())
    assert [c.shape for c in crops] == [(4, 3, 96, 96)] * 3 and all(c.dtype == torch.uint8 for c in crops)
    assert torch.equal(preset(video()), to_model_input(torch.stack(crops), KINETICS_MEAN, KINETICS_STD))


# ============================================================================= training preset


def test_random_resized_crop_boxes_lie_inside_and_keep_their_share_and_aspect() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        top, left, h, w = random_resized_crop_box(rng, 120, 160, (48, 72))
        assert top >= 0 and top + h <= 120 and left >= 0 and left + w <= 160
        assert CROP_SCALE[0] - 0.02 <= h * w / (120 * 160) <= CROP_SCALE[1] + 0.02
        assert CROP_RATIO[0] - 0.05 <= (w / h) / (72 / 48) <= CROP_RATIO[1] + 0.05


def test_a_crop_that_cannot_fit_falls_back_to_the_whole_frame() -> None:
    assert random_resized_crop_box(np.random.default_rng(0), 100, 100, (1, 50)) == (0, 0, 100, 100)


def test_train_preset_gives_uint8_clips_of_the_crop_size() -> None:
    preset = TrainPreset(resize_size=(96, 128), crop_size=(48, 64), flip=True)
    grey = torch.full((6, 3, 120, 160), 77, dtype=torch.uint8)
    for seed in range(10):
        out = preset(video(t=6), np.random.default_rng(seed))
        assert out.shape == (6, 3, 48, 64) and out.dtype == torch.uint8 and out.is_contiguous()
        assert torch.equal(preset(grey, np.random.default_rng(seed)), torch.full((6, 3, 48, 64), 77, dtype=torch.uint8))


def test_train_preset_is_a_function_of_the_generator_seed() -> None:
    preset = TrainPreset(resize_size=(96, 128), crop_size=(48, 64), flip=True)
    v = video(t=3)
    outs = [preset(v, np.random.default_rng([5, i])) for i in range(8)]
    assert all(torch.equal(a, preset(v, np.random.default_rng([5, i]))) for i, a in enumerate(outs))
    assert not all(torch.equal(outs[0], o) for o in outs[1:])


@pytest.mark.parametrize("flip", [True, False])
def test_train_preset_flips_half_the_clips_only_when_asked(flip: bool) -> None:
    whole = TrainPreset(resize_size=(60, 80), crop_size=(60, 80), flip=flip, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    v = video(h=60, w=80)
    outs = [whole(v, np.random.default_rng(seed)) for seed in range(40)]
    flipped = sum(torch.equal(o, v.flip(-1)) for o in outs)
    assert all(torch.equal(o, v) or torch.equal(o, v.flip(-1)) for o in outs)
    assert (10 < flipped < 30) if flip else flipped == 0


def test_flip_is_allowed_only_without_direction_words() -> None:
    assert flip_allowed(["bouncing_ball", "comet_trail"])
    assert not flip_allowed(["Turning Right", "x"]) and not flip_allowed(["rotating_counterclockwise"])
    assert not flip_allowed(["bright_light"])  # a false alarm only costs the augmentation
