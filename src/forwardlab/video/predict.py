"""Classify videos with a registry model, the way the model was evaluated (its recipe, multi-view)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from forwardlab.video.errors import VideoDecodeError
from forwardlab.video.inference import Item, Outcome, Ranking, TopClasses, Views, run_local
from forwardlab.video.models.catalog import get_entry, load_model
from forwardlab.video.models.registry import LoadedModel


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
    sample: str | None = None,
    pretrained: bool = True,
    weights: str | Path | None = None,
) -> list[Prediction]:
    """Top-`top` classes per video, in the order of `paths`. `model` is a registry name or an already
    loaded model (notebooks). `sample` is a sampling rule (`uniform:64`, `clip:64@25`, `all@25`, ...) in
    place of the model's recipe; `views` (KxC) as in `Recipe.for_run`. A video that cannot be decoded
    raises its `VideoDecodeError`."""
    entry = model.entry if isinstance(model, LoadedModel) else get_entry(model)
    recipe, (k, c) = entry.recipe.for_run(sample, views)  # a bad rule fails before weights are fetched
    loaded = model if isinstance(model, LoadedModel) else load_model(model, pretrained=pretrained, weights=weights)
    items = [Item(key=str(i), path=str(path)) for i, path in enumerate(paths)]
    # one video's views per forward pass, decoded in this process: no worker processes for a few files
    outcomes = run_local(items, loaded.model, recipe=recipe, task=TopClasses(top), views=(k, c), batch=k * c, workers=0)
    done: dict[str, Outcome[Ranking]] = {}
    for outcome in outcomes:
        if outcome.error is not None:
            raise VideoDecodeError(outcome.item.path, outcome.error)
        done[outcome.item.key] = outcome
    return [_prediction(done[item.key], loaded.entry.classes) for item in items]


def _prediction(outcome: Outcome[Ranking], classes: Sequence[str]) -> Prediction:
    ranking = outcome.value
    assert ranking is not None
    return Prediction(
        path=outcome.item.path,
        top=[(classes[i], p) for i, p in zip(ranking.indices, ranking.scores, strict=True)],
        views=outcome.n_views,
        padded_frames=outcome.padded,
        seconds=outcome.decode_s + outcome.model_s,
    )
