"""The network a run starts from: a registry model built for the run's classes, from scratch or fine-tuned.

From pretrained weights, the published classifier is replaced by one for the run's classes when they
differ; rows of classes the published head already knew are carried over, the rest of the network is
untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from forwardlab.video.errors import ModelError
from forwardlab.video.models.catalog import get_entry, load_model
from forwardlab.video.models.registry import ModelEntry


def find_head(model: nn.Module, num_classes: int) -> tuple[str, nn.Module]:
    """The classifier: the last `Linear` or `Conv3d` (in registration order) producing `num_classes`."""
    found: tuple[str, nn.Module] | None = None
    for name, module in model.named_modules():
        if (isinstance(module, nn.Linear) and module.out_features == num_classes) or (
            isinstance(module, nn.Conv3d) and module.out_channels == num_classes
        ):
            found = (name, module)
    if found is None:
        raise ModelError(f"{type(model).__name__}: no Linear or Conv3d layer with {num_classes} outputs to replace")
    return found


def replace_head(
    model: nn.Module, old_classes: Sequence[str], new_classes: Sequence[str], *, seed: int = 0
) -> list[str]:
    """Swap the classifier for one with `len(new_classes)` outputs; the rest of the network is untouched.

    Rows of classes the old head already knew (same name) are copied from it; the others start from the
    layer's default initialisation, drawn with `seed`. Returns the classes that were carried over.
    """
    name, old = find_head(model, len(old_classes))
    generator_state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        new: nn.Module
        if isinstance(old, nn.Linear):
            new = nn.Linear(old.in_features, len(new_classes), bias=old.bias is not None)
        else:
            assert isinstance(old, nn.Conv3d)
            new = nn.Conv3d(
                old.in_channels,
                len(new_classes),
                old.kernel_size,  # type: ignore[arg-type]
                stride=old.stride,  # type: ignore[arg-type]
                padding=old.padding,  # type: ignore[arg-type]
                bias=old.bias is not None,
            )
    finally:
        torch.set_rng_state(generator_state)
    index = {c: i for i, c in enumerate(old_classes)}
    kept = [c for c in new_classes if c in index]
    with torch.no_grad():
        for row, c in enumerate(new_classes):
            if c in index:
                new.weight[row] = old.weight[index[c]]
                if new.bias is not None and old.bias is not None:
                    new.bias[row] = old.bias[index[c]]
    new.to(dtype=old.weight.dtype)
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)
    return kept


@dataclass(frozen=True)
class PreparedModel:
    """A model ready to train: the network, the classes its outputs mean, and how it got there."""

    model: nn.Module
    entry: ModelEntry
    classes: tuple[str, ...]
    pretrained_weights: Path | None
    head_replaced: bool
    head_classes_kept: tuple[str, ...]


def prepare_model(name: str, classes: Sequence[str], *, from_pretrained: bool = False, seed: int = 0) -> PreparedModel:
    """Build registry model `name` for `classes`, from its pretrained weights if asked.

    From scratch the network gets `len(classes)` outputs directly. From pretrained weights it is built
    as published, loaded, and its head replaced when `classes` differ from the published ones.
    """
    entry = get_entry(name)
    classes = tuple(classes)
    torch.manual_seed(seed)
    if not from_pretrained:
        return PreparedModel(entry.builder(len(classes)), entry, classes, None, False, ())
    loaded = load_model(name, pretrained=True)
    model = loaded.model
    if classes == entry.classes:
        return PreparedModel(model, entry, classes, loaded.weights_path, False, classes)
    kept = replace_head(model, entry.classes, classes, seed=seed)
    return PreparedModel(model, entry, classes, loaded.weights_path, True, tuple(kept))
