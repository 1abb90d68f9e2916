"""Receptive-field arithmetic on hand-built stacks (numbers worked out by hand in the comments) and the zoo."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forwardlab.video.convlab.receptive_field import model_fields, trace_fields
from forwardlab.video.models.tiny import FrameConv


def _by_stage(model: nn.Module, clip: tuple[int, int, int]) -> dict[str, tuple]:
    return {
        s.stage: (s.rf_frames, s.rf_height, s.rf_width, s.stride_t, s.stride_h, s.stride_w)
        for s in trace_fields(model, clip)
    }


def test_a_plain_stack() -> None:
    stack = nn.Sequential(
        nn.Conv3d(3, 4, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3)),  # 3 x 7 x 7, jump 1 x 2 x 2
        nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),  # 7 + 2*2 = 11; jump 1 x 4 x 4
        nn.Conv3d(4, 4, 3, stride=(2, 1, 1), padding=1),  # t: 3 + 2*1 = 5, s: 11 + 2*4 = 19; jump 2 x 4 x 4
        nn.Conv3d(4, 4, 3, dilation=2, padding=2),  # t: 5 + 2*2*2 = 13, s: 19 + 2*2*4 = 35
        nn.AdaptiveAvgPool3d(1),  # the whole clip, or more: 16 x 64 x 64 < field, so the field stays
    )
    got = _by_stage(stack, (16, 64, 64))
    assert got["0"] == (3, 7, 7, 1, 2, 2)
    assert got["1"] == (3, 11, 11, 1, 4, 4)
    assert got["2"] == (5, 19, 19, 2, 4, 4)
    assert got["3"] == (13, 35, 35, 2, 4, 4)
    assert got["4"] == (16, 64, 64, 2, 4, 4)


class _Residual(nn.Module):
    """Two 3x3x3 convolutions plus the identity: the sum sees what the longer branch sees (5 frames)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv3d(2, 2, 3, padding=1), nn.Conv3d(2, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.b(self.a(x)) + x)


class _Inception(nn.Module):
    """A 1x1x1 branch and a functional 3x3x3 max-pool + 5x5x5 conv branch, concatenated on channels."""

    def __init__(self) -> None:
        super().__init__()
        self.one, self.five = nn.Conv3d(2, 2, 1), nn.Conv3d(2, 2, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.max_pool3d(F.pad(x, (1, 1, 1, 1, 1, 1)), kernel_size=3, stride=1)  # as I3D's "SAME" pool
        return torch.cat([self.one(x), self.five(pooled)], dim=1)


def test_branches_take_the_widest_field_and_functional_pools_count() -> None:
    model = nn.Sequential(nn.Conv3d(3, 2, 1), _Residual(), _Inception())
    got = _by_stage(model, (8, 16, 16))
    assert got["1"] == (5, 5, 5, 1, 1, 1)  # 1 + 2 + 2
    assert got["2"] == (11, 11, 11, 1, 1, 1)  # 5 + 2 (pool) + 4 (5x5x5 conv)


def test_framewise_convolutions_never_widen_time() -> None:
    model = nn.Sequential(FrameConv(3, 4, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)), FrameConv(4, 4, (1, 3, 3)))
    assert _by_stage(model, (4, 16, 16))["1"] == (1, 7, 7, 1, 2, 2)  # 3 + 2*2


def test_r3d_18_as_worked_out_by_hand() -> None:
    stages = {s.stage: s for s in model_fields("r3d_18").stages}
    # time: stem 3; layer1 +4 convs x 2 = 11; layer2 13 (stride 2) 17 21 25; layer3 29 37 45 53; layer4 ... 109
    assert [stages[n].rf_frames for n in ("stem", "layer1", "layer2", "layer3", "layer4")] == [3, 11, 25, 53, 109]
    # space: stem 7 (stride 2); layer1 7 + 4*2*2 = 23; layer2 27 35 43 51; ...
    assert [stages[n].rf_height for n in ("stem", "layer1", "layer2")] == [7, 23, 51]
    assert (stages["layer4"].stride_t, stages["layer4"].stride_h) == (8, 16)
    mc3 = {s.stage: s for s in model_fields("mc3_18").stages}
    assert (mc3["layer4"].rf_frames, mc3["layer4"].stride_t) == (11, 1)  # 3D only in the first block: time kept


def test_attention_stages_say_they_have_no_fixed_field() -> None:
    stages = model_fields("mvit_v2_s").stages
    assert stages[0].stage == "conv_proj" and stages[0].rf_frames == 3 and stages[0].stride_h == 4
    assert all(not s.traced and s.note for s in stages[1:])
