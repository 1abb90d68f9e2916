"""Every model by name: the lookups the rest of forwardlab uses.

Importing this module registers every built-in family (each registers its entries where it is defined),
so a name resolves whatever was imported before. A name is a registered model or the folder of a model
trained with `forwardlab video train` (registered under its path when first asked for).

    registry (records, REGISTRY, weights)  <-  torchvision_zoo, i3d, tiny, trained  <-  catalog
"""

from __future__ import annotations

from pathlib import Path

from forwardlab.video.errors import ModelError
from forwardlab.video.models import i3d, tiny, torchvision_zoo
from forwardlab.video.models.registry import REGISTRY, LoadedModel, ModelEntry, build_model, register
from forwardlab.video.models.trained import is_trained_model, read_card, trained_entry

BUILT_IN: tuple[str, ...] = (*torchvision_zoo.ENTRIES, i3d.ENTRY.name, *tiny.ENTRIES)
"""The built-in models in listing order: torchvision's, DeepMind's I3D, our tiny networks."""


def get_entry(name: str) -> ModelEntry:
    """A registered model, or the folder of a model trained with `forwardlab video train`."""
    if name in REGISTRY:
        return REGISTRY[name]
    if is_trained_model(name):
        return register_trained(name)
    raise ModelError(f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))}")


def entries() -> dict[str, ModelEntry]:
    """Every registered model by name: the built-in ones in `BUILT_IN` order, then those registered at run time."""
    names = [*BUILT_IN, *(name for name in REGISTRY if name not in BUILT_IN)]
    return {name: REGISTRY[name] for name in names}


def load_model(
    name: str, *, pretrained: bool = True, weights: str | Path | None = None, offline: bool = False
) -> LoadedModel:
    """Model `name` in eval mode, with its pretrained weights unless `pretrained=False`.

    `weights` overrides where the state dict comes from (a file with the same architecture).
    """
    return build_model(get_entry(name), pretrained=pretrained, weights=weights, offline=offline)


def _trained_entry(path: str | Path) -> ModelEntry:
    return trained_entry(path, get_entry(read_card(path)["base_model"]))


def register_trained(path: str | Path) -> ModelEntry:
    """Add a trained model folder to the registry under `str(path)`, so `evaluate` can use it by name."""
    return register(_trained_entry(path))


def load_trained(path: str | Path) -> LoadedModel:
    """A trained model folder as a `LoadedModel` in eval mode (what `predict(model=...)` accepts)."""
    return build_model(_trained_entry(path), pretrained=True)


__all__ = ["BUILT_IN", "entries", "get_entry", "load_model", "load_trained", "register_trained"]
