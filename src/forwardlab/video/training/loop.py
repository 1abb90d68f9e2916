"""The optimization: AdamW, a per-step learning-rate schedule, one epoch of training, and validation.

Batches arrive as uint8 clips `(B, T, C, h, w)` with their labels; they are normalized here, with the
recipe's mean and std, just before the model sees them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from forwardlab.video.models.registry import Recipe
from forwardlab.video.transforms import to_model_input


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up from 1/warmup to 1 over `warmup_steps`, then cosine decay to 0 at `total_steps`."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; weight decay on weight matrices and kernels only, not on biases or norm parameters."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr)


def make_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """`lr_factor` of the optimizer's learning rate, stepped once per batch."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total_steps, warmup_steps))


def train_epoch(
    model: nn.Module,
    loader: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    recipe: Recipe,
    on_step: Callable[[int], None] | None = None,
) -> tuple[float, float]:
    """One pass over `loader`: (mean loss, top-1) of its clips. `on_step(step)` after each step (1-based).

    A batch of None (no clip of it could be decoded) still advances the schedule, so the learning rate
    does not depend on which videos failed.
    """
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    for step, batch_data in enumerate(loader, 1):
        if batch_data is None:
            scheduler.step()
            continue
        clips, y = batch_data
        logits = model(to_model_input(clips, recipe.mean, recipe.std))
        loss = nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.item() * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        if on_step is not None:
            on_step(step)
    return loss_sum / max(1, seen), correct / max(1, seen)


def validate(model: nn.Module, loader: Any, recipe: Recipe, num_classes: int) -> tuple[float, float, float]:
    """(loss, top-1, top-5) of the centred clip of every validation video."""
    model.eval()
    losses, seen, top1, top5 = 0.0, 0, 0, 0
    k = min(5, num_classes)
    with torch.inference_mode():
        for batch_data in loader:
            if batch_data is None:
                continue
            clips, y = batch_data
            logits = model(to_model_input(clips, recipe.mean, recipe.std))
            losses += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            ranked = logits.topk(k, dim=1).indices
            top1 += int((ranked[:, 0] == y).sum())
            top5 += int((ranked == y[:, None]).any(dim=1).sum())
            seen += len(y)
    n = max(1, seen)
    return losses / n, top1 / n, top5 / n
