"""Trained model folders: what `forwardlab video train` writes, read back as registry entries.

A folder holds `model.pt` (the state dict) and `model_card.json` (format, base model, classes, recipe,
weights file, metrics, history, ...). Its entry is the base model's builder and cost with the card's
classes and recipe, and the folder's weights file. The base model can be any registered model or another
trained folder, so looking it up is the catalog's job: `catalog.get_entry(folder)` (what `evaluate` and
`predict` use), `catalog.register_trained` and `catalog.load_trained` build on `trained_entry` here.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from forwardlab.video.errors import ModelError
from forwardlab.video.models.registry import REGISTRY, ModelEntry, Recipe, Weights

MODEL_NAME = "model.pt"
CARD_NAME = "model_card.json"
CARD_FORMAT = "forwardlab-trained-model"
CARD_VERSION = 1


def _card_path(path: str | Path) -> Path:
    p = Path(path)
    card = p / CARD_NAME if p.is_dir() else p.with_name(CARD_NAME) if p.suffix == ".pt" else p
    if not card.is_file():
        raise ModelError(
            f"{path}: not a trained model folder (no {CARD_NAME}; train one with `forwardlab video train`)"
        )
    return card


def is_trained_model(name: str) -> bool:
    """Whether `name` points at a trained model folder (or its card / weights) rather than a registry name."""
    if name in REGISTRY:
        return False
    p = Path(name)
    return (p / CARD_NAME).is_file() or (p.suffix in (".pt", ".json") and p.with_name(CARD_NAME).is_file())


def read_card(path: str | Path) -> dict[str, Any]:
    """The model card of a trained model folder (or of its `model.pt` / `model_card.json`)."""
    card_path = _card_path(path)
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{card_path}: unreadable model card ({exc})") from exc
    if card.get("format") != CARD_FORMAT:
        raise ModelError(f"{card_path}: not a forwardlab model card (format {card.get('format')!r})")
    return card


def recipe_to_card(recipe: Recipe) -> dict[str, Any]:
    """The recipe as the card stores it (JSON: sizes as lists); `recipe_from_card` reads it back."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(recipe).items()}


def recipe_from_card(fields: dict[str, Any]) -> Recipe:
    def size(value: Any) -> int | tuple[int, int]:
        return int(value) if isinstance(value, int) else (int(value[0]), int(value[1]))

    return Recipe(
        frames_per_clip=int(fields["frames_per_clip"]),
        fps=float(fields["fps"]),
        resize_size=size(fields["resize_size"]),
        crop_size=size(fields["crop_size"]),
        mean=tuple(float(v) for v in fields["mean"]),
        std=tuple(float(v) for v in fields["std"]),
        temporal_views=int(fields.get("temporal_views", 1)),
        spatial_views=int(fields.get("spatial_views", 1)),
        antialias=bool(fields.get("antialias", True)),
        sample=fields.get("sample"),
    )


def trained_entry(path: str | Path, base: ModelEntry) -> ModelEntry:
    """A registry entry for a trained model folder, built on `base` (the entry of its card's `base_model`)."""
    card_path = _card_path(path)
    card = read_card(card_path)
    weights = (card_path.parent / card["weights"]["file"]).resolve()
    if not weights.is_file():
        raise ModelError(f"{card_path.parent}: the weights file {card['weights']['file']} named by its card is missing")
    val = card.get("metrics", {})
    accuracy = {"acc@1": 100 * val["val_top1"], "acc@5": 100 * val["val_top5"]} if "val_top1" in val else {}
    return ModelEntry(
        name=str(path),
        builder=base.builder,
        # an absolute file name: the registry's weight search finds it whatever folder it looks in
        weights=Weights(file_name=str(weights), url=None, install_hint="retrain it with `forwardlab video train`"),
        classes=tuple(card["classes"]),
        recipe=recipe_from_card(card["recipe"]),
        params=base.params,
        gmacs=base.gmacs,
        accuracy=accuracy,
        family=f"trained from {base.name}",
    )


__all__ = [
    "CARD_FORMAT",
    "CARD_NAME",
    "CARD_VERSION",
    "MODEL_NAME",
    "is_trained_model",
    "read_card",
    "recipe_from_card",
    "recipe_to_card",
    "trained_entry",
]
