"""2D vs 3D vs (2+1)D: the three small networks trained on the synthetic set with one budget, side by side.

The networks share every layer but their convolutions (see `forwardlab.video.models.tiny`), the data, the
seed and the schedule, so what differs in the table comes from how each convolution treats time. The
headline column is accuracy on the time-reversed pairs: a clip's frames alone cannot tell those classes
apart, only their order can. Params and MACs come from `cost` at the models' recipe clip.

Training three networks on two CPU cores takes minutes: `epochs` and `per_class` set the budget. The default
(20 epochs over 32 clips per class, about 7-13 minutes on 2 cores) is about the least that separates them:
at 8 epochs over 16 clips all three sit near 30% and the table shows nothing. Rerunning
with the same settings reuses finished runs (and resumes a killed one); other settings start over.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forwardlab.errors import ForwardlabError
from forwardlab.fileio import write_text_atomic
from forwardlab.video.convlab.cost import model_cost

TINY_MODELS: dict[str, str] = {
    "tiny_2d": "2D (1x3x3)",
    "tiny_3d": "3D (3x3x3)",
    "tiny_r2plus1d": "(2+1)D (1x3x3 + 3x1x1)",
}
SETTINGS_NAME = "compare_settings.json"
RESULT_NAME = "compare.json"


@dataclass(frozen=True)
class CompareRow:
    model: str
    title: str
    params: int
    gmacs: float
    top1: float | None
    time_reversed_top1: float | None
    single_frame_top1: float | None
    pair_top1: float | None
    train_seconds: float | None
    val_clips: int | None


@dataclass(frozen=True)
class CompareResult:
    """The headline table; `source` says whether this run trained the rows or they are the shipped records."""

    rows: list[CompareRow]
    source: str
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompareResult:
        return cls([CompareRow(**row) for row in data["rows"]], data["source"], data.get("settings", {}))


def _row(name: str, figures: dict[str, Any] | None, train_seconds: float | None) -> CompareRow:
    cost = model_cost(name)
    figures = figures or {}
    return CompareRow(
        model=name,
        title=TINY_MODELS.get(name, name),
        params=cost.params,
        gmacs=round(cost.gmacs, 4),
        top1=figures.get("top1"),
        time_reversed_top1=figures.get("time_reversed_top1"),
        single_frame_top1=figures.get("single_frame_top1"),
        pair_top1=figures.get("pair_top1"),
        train_seconds=train_seconds,
        val_clips=figures.get("val_clips", figures.get("clips")),
    )


def recorded() -> CompareResult:
    """The table from the shipped weights' recorded figures (`scripts/train_tiny.py`); tiny_3d ships none."""
    from forwardlab.video.models.tiny import recorded_accuracy

    figures = recorded_accuracy()
    rows = [_row(name, figures.get(name), (figures.get(name) or {}).get("train_seconds")) for name in TINY_MODELS]
    return CompareResult(rows, "recorded figures of the shipped weights (scripts/train_tiny.py)")


def compare(
    out: Path,
    *,
    epochs: int = 20,
    per_class: int = 32,
    val_per_class: int = 8,
    batch: int = 8,
    lr: float = 4e-3,
    seed: int = 0,
    workers: int = 2,
    models: Sequence[str] = tuple(TINY_MODELS),
    progress: Callable[[str, int, int], None] | None = None,
) -> CompareResult:
    """Generate the synthetic train/val splits under `out/data`, train each model into `out/runs/<model>`,
    evaluate it on val into `out/eval/<model>`, and write `out/compare.json`."""
    import pandas as pd

    from forwardlab.video.data.folder import import_folder
    from forwardlab.video.data.synthetic import generate
    from forwardlab.video.data.synthetic_classes import CLASSES
    from forwardlab.video.demo import model_figures
    from forwardlab.video.evaluate import evaluate
    from forwardlab.video.models.trained import CARD_NAME
    from forwardlab.video.training.run import train

    if epochs < 1 or per_class < 1 or val_per_class < 1:
        raise ForwardlabError(
            f"compare: epochs, per_class and val_per_class must be >= 1 (got {epochs}, {per_class}, {val_per_class})"
        )
    unknown = [m for m in models if m not in TINY_MODELS]
    if unknown:
        raise ForwardlabError(f"compare: {', '.join(unknown)} not one of the small networks {', '.join(TINY_MODELS)}")
    settings = dict(epochs=epochs, per_class=per_class, val_per_class=val_per_class, batch=batch, lr=lr, seed=seed)
    marker = out / SETTINGS_NAME
    same = marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == settings
    if not same:
        for name in ("runs", "eval"):
            shutil.rmtree(out / name, ignore_errors=True)
    write_text_atomic(marker, json.dumps(settings, indent=2) + "\n")

    def step(label: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, total: progress(label, done, total))

    data = out / "data"
    for split, n in (("train", per_class), ("val", val_per_class)):
        generate(data, per_class=n, split=split, seed=seed, progress=step(f"generating {split}"))
    manifest = import_folder(data, workers=max(1, workers))
    rows = []
    for name in models:
        run = out / "runs" / name
        started = time.perf_counter()
        if not (run / CARD_NAME).is_file():
            train(
                manifest,
                name,
                out=run,
                epochs=epochs,
                batch=batch,
                lr=lr,
                seed=seed,
                classes=CLASSES,
                workers=workers,
                cache_dir=out / "runs" / "frame-cache",
                progress=step(f"training {name}"),
            )
        seconds = json.loads((run / CARD_NAME).read_text(encoding="utf-8")).get("history", [])
        train_seconds = round(sum(r["seconds"] for r in seconds), 1) if seconds else time.perf_counter() - started
        shutil.rmtree(out / "eval" / name, ignore_errors=True)
        summary = evaluate(
            manifest,
            name,
            out=out / "eval" / name,
            split="val",
            weights=run / "model.pt",
            workers=workers,
            progress=step(f"evaluating {name}"),
        )
        figures = model_figures(pd.read_parquet(summary.files["results"]).to_dict("records"), CLASSES)
        rows.append(_row(name, figures, train_seconds))
    result = CompareResult(rows, f"trained here: {per_class} clips per class, {epochs} epochs, seed {seed}", settings)
    write_text_atomic(out / RESULT_NAME, json.dumps(result.to_dict(), indent=2) + "\n")
    return result
