"""Classify videos with a registry model, the way the model was evaluated (its recipe, multi-view)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from forwardlab.video.evaluate import Views, decode_views
from forwardlab.video.models.catalog import load_model
from forwardlab.video.models.registry import LoadedModel, Recipe
from forwardlab.video.transforms import to_model_input


def model_input(path: str | Path, recipe: Recipe, views: Views | None = None) -> tuple[torch.Tensor, int]:
    """A video as the model's input batch: float (K*C, 3, T, h, w), plus how many frames were padding.

    K temporal clips x C spatial crops come from one decode; frames stay uint8 until the final
    normalization. A video shorter than a clip repeats its last frame (see `sampling`).
    """
    frames, padded = decode_views(path, recipe, views or (recipe.temporal_views, recipe.spatial_views))
    return to_model_input(frames, recipe.mean, recipe.std), padded


@dataclass(frozen=True)
class Prediction:
    """Top-k classes of one video (probabilities averaged over its views) and what it took."""

    path: str
    top: list[tuple[str, float]]
    views: int
    padded_frames: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["top"] = [{"label": label, "probability": p} for label, p in self.top]
        return out


def predict(
    paths: Sequence[str | Path],
    *,
    model: str | LoadedModel = "r2plus1d_18",
    top: int = 5,
    views: Views | None = None,
    pretrained: bool = True,
    weights: str | Path | None = None,
) -> list[Prediction]:
    """Top-`top` classes per video. `model` is a registry name or an already loaded model (notebooks)."""
    loaded = model if isinstance(model, LoadedModel) else load_model(model, pretrained=pretrained, weights=weights)
    classes = loaded.entry.classes
    k = min(top, len(classes))
    results = []
    for path in paths:
        start = time.perf_counter()
        batch, padded = model_input(path, loaded.entry.recipe, views)
        with torch.inference_mode():
            probabilities = loaded.model(batch).softmax(dim=-1).mean(dim=0)
        values, indices = probabilities.topk(k)
        results.append(
            Prediction(
                path=str(path),
                top=[(classes[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)],
                views=int(batch.shape[0]),
                padded_frames=padded,
                seconds=time.perf_counter() - start,
            )
        )
    return results
