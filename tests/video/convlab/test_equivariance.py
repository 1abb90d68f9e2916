"""Shift equivariance: exact without padding effects, broken only at the border by zero padding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from forwardlab.errors import ForwardlabError
from forwardlab.video.convlab.equivariance import measure


def _stack(padding: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(3, 4, 3, padding=padding),
        nn.ReLU(),
        nn.Conv3d(4, 4, 3, stride=2, padding=padding),
        nn.ReLU(),
        nn.Conv3d(4, 5, 3, padding=padding),
    )


@pytest.mark.parametrize("axis", ["time", "space"])
def test_a_convolution_stack_without_padding_is_exactly_equivariant(axis: str) -> None:
    stages, _ = measure(_stack(padding=0), (20, 28, 28), axis=axis)  # type: ignore[arg-type]
    assert [s.stage for s in stages] == ["0", "1", "2", "3", "4"]
    assert all(s.aligned for s in stages)
    assert [s.shift for s in stages][-1] == ((2, 0, 0) if axis == "time" else (0, 2, 2))  # the stride after "2"
    for s in stages:
        assert s.error_interior is not None and s.error_interior < 1e-6, s
        assert s.error_all is not None and s.error_all < 1e-6, s  # no padding: the border too


@pytest.mark.parametrize("axis", ["time", "space"])
def test_zero_padding_breaks_equivariance_only_at_the_border(axis: str) -> None:
    stages, _ = measure(_stack(padding=1), (20, 28, 28), axis=axis)  # type: ignore[arg-type]
    for s in stages:
        assert s.error_interior is not None and s.error_interior < 1e-6, s
        assert s.error_border is not None and s.error_border > 1e-2, s
        profile = s.error_t if axis == "time" else [sum(row) / len(row) for row in s.error_hw]
        assert max(profile[0], profile[-1]) > 10 * min(profile[len(profile) // 2], 1e-3)  # where: the edges


def test_a_shift_the_stride_cannot_follow_is_reported_not_compared() -> None:
    stages, outputs = measure(_stack(padding=0), (20, 28, 28), axis="space", shift=1)
    assert [s.aligned for s in stages] == [True, True, False, False, False]
    assert "not a multiple of the stride" in stages[2].note
    assert outputs and outputs[0].shift == (0, 1, 1)


def test_bad_shifts_are_refused() -> None:
    with pytest.raises(ForwardlabError, match="at least 1"):
        measure(_stack(padding=0), (20, 28, 28), shift=0)
    with pytest.raises(ForwardlabError, match="not smaller than the clip"):
        measure(_stack(padding=0), (10, 28, 28), axis="time", shift=10)
    with pytest.raises(ForwardlabError, match="cannot run a 4x28x28 clip"):
        measure(_stack(padding=0), (4, 28, 28), axis="time")
