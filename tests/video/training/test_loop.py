"""The optimization primitives on a network small enough to check by hand."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from forwardlab.video.models.registry import Recipe
from forwardlab.video.training.loop import lr_factor, make_optimizer, make_scheduler, train_epoch, validate

RECIPE = Recipe(frames_per_clip=2, fps=1.0, resize_size=4, crop_size=4, mean=(0.5,) * 3, std=(0.5,) * 3)


def batches(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Clips `(B, T, C, H, W)` whose class is whether they are bright."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        y = torch.randint(0, 2, (8,), generator=g)
        base = torch.where(y[:, None, None, None, None] == 1, 200, 50)
        noise = torch.randint(-30, 30, (8, 2, 3, 4, 4), generator=g)
        out.append(((base + noise).clamp(0, 255).to(torch.uint8), y))
    return out


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 4 * 4, 2))


def test_weight_decay_applies_to_matrices_only() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    decayed, other = make_optimizer(model, 1e-3, 0.05).param_groups
    assert [p.shape for p in decayed["params"]] == [(3, 4)] and decayed["weight_decay"] == 0.05
    assert len(other["params"]) == 3 and other["weight_decay"] == 0.0


def test_the_schedule_warms_up_then_decays_to_zero_per_step() -> None:
    optimizer = make_optimizer(net(), 0.1, 0.0)
    scheduler = make_scheduler(optimizer, total_steps=10, warmup_steps=4)
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert all(a >= b for a, b in itertools.pairwise(lrs[3:]))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * lr_factor(10, 10, 4)) == pytest.approx(0.0)


def test_an_epoch_learns_and_reports_its_steps() -> None:
    model = net()
    optimizer = make_optimizer(model, 0.05, 0.0)
    scheduler = make_scheduler(optimizer, total_steps=30, warmup_steps=0)
    data = batches(10)
    first_loss, _ = validate(model, data, RECIPE, 2)[:2]
    steps: list[int] = []
    for _ in range(3):
        _, top1 = train_epoch(model, data, optimizer, scheduler, RECIPE, steps.append)
    assert steps == list(range(1, 11)) * 3
    assert model.training
    val_loss, val_top1, val_top5 = validate(model, batches(4, seed=1), RECIPE, 2)
    assert val_loss < first_loss and val_top1 > 0.9 and val_top5 == 1.0 and top1 > 0.9
    assert not model.training


def test_undecodable_batches_still_advance_the_schedule() -> None:
    model = net()
    optimizer = make_optimizer(model, 0.1, 0.0)
    scheduler = make_scheduler(optimizer, total_steps=4, warmup_steps=0)
    loss, top1 = train_epoch(model, [*batches(1), None, None], optimizer, scheduler, RECIPE)
    assert scheduler.last_epoch == 3 and loss > 0 and 0 <= top1 <= 1


def test_validation_counts_top1_and_top5_by_hand() -> None:
    class Fixed(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]).expand(len(x), 7)

    clips = torch.zeros(4, 2, 3, 4, 4, dtype=torch.uint8)
    loss, top1, top5 = validate(Fixed(), [(clips, torch.tensor([6, 2, 1, 0])), None], RECIPE, 7)
    assert top1 == 0.25 and top5 == 0.5
    assert loss == pytest.approx(float(nn.functional.cross_entropy(Fixed()(clips), torch.tensor([6, 2, 1, 0]))))
