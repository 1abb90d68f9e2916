"""Arrow of time: reversal is a pure flip of the frame axis; a palindrome changes nothing; shipped models behave."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from forwardlab.video.convlab.arrow_of_time import arrow_of_time, reversal_predictions, reverse_time, summarize
from forwardlab.video.data.synthetic_classes import TIME_REVERSED_PAIRS
from forwardlab.video.models import tiny


def _clip(frames: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, frames, 48, 72, generator=torch.Generator().manual_seed(seed))


def test_reversal_flips_time_and_nothing_else() -> None:
    x = _clip()
    backward = reverse_time(x)
    for t in range(x.shape[2]):
        assert torch.equal(backward[:, :, t], x[:, :, -1 - t])
    assert torch.equal(reverse_time(backward), x)


@pytest.mark.parametrize("name", list(tiny.BUILDERS))
def test_time_reversal_of_a_palindromic_clip_changes_nothing(name: str) -> None:
    half = _clip(frames=8)
    palindrome = torch.cat([half, half.flip(2)], dim=2)  # frames a b ... h h ... b a
    model = tiny.BUILDERS[name](num_classes=12).eval()
    with torch.inference_mode():
        assert torch.equal(model(palindrome), model(reverse_time(palindrome)))
    forward, backward = reversal_predictions(model, palindrome)
    assert forward == backward
    # the same model on an ordinary clip: only the order-blind 2D net is unaffected
    x = _clip(frames=16, seed=1)
    with torch.inference_mode():
        moved = (model(x) - model(reverse_time(x))).abs().max().item()
    assert (moved < 1e-5) if name == "tiny_2d" else (moved > 1e-4)


def test_summary_counts_changes_and_twins_per_class() -> None:
    labels = ["moving_left", "moving_left", "comet_trail"]
    result = summarize("m", "random", labels, ["moving_left", "moving_left", "comet_trail"],
                       ["moving_right", "moving_left", "bouncing_ball"], pairs=TIME_REVERSED_PAIRS)  # fmt: skip
    left, comet = (next(c for c in result.per_class if c.label == k) for k in ("moving_left", "comet_trail"))
    assert (left.changed, left.to_twin, left.twin, left.top1_reversed) == (1, 1, "moving_right", 0.5)
    assert (comet.changed, comet.to_twin, comet.twin) == (1, None, None)
    assert result.changed_share == pytest.approx(2 / 3)
    assert [c.label for c in result.most_sensitive()] == ["comet_trail", "moving_left"]


@pytest.mark.slow
def test_shipped_models_on_synthetic_clips(tmp_path: Path) -> None:
    flat = arrow_of_time("tiny_2d", out=tmp_path, per_class=1)
    assert flat.clips == 12 and flat.changed == 0  # temporal average pooling: blind to the arrow of time
    moving = arrow_of_time("tiny_r2plus1d", out=tmp_path, per_class=1)
    paired = [c for c in moving.per_class if c.twin is not None]
    assert sum(c.to_twin or 0 for c in paired) >= 6  # of 8 pair clips, reversed ones become their twin
    assert set(moving.to_dict()) >= {"changed_share", "most_sensitive", "per_class"}
