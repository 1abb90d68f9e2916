"""Explore a dataset: what is in its manifest, what is unusable and why, and which clips are odd.

The prototype did this in a notebook for a few hundred Kinetics clips; here it works from the manifest, so
a 20,000-clip split costs one SQLite read and a few array passes. Only clips without probe fields are
opened (in parallel, and the results are stored back in the manifest, so the next run opens none); the
HTML page adds plots and a small gallery whose thumbnails are the only frames decoded.

Outliers are judged against what models need, not against the dataset's own spread: a clip shorter than a
model's clip span is padded by repeating its last frame (see `sampling`), one with fewer frames than a
16-frame clip repeats frames at any rate, a huge frame costs decode time for nothing after the resize,
and a variable frame rate (probe's `variable_frame_rate`, from packet timestamps) makes frame-index
sampling wrong, which is why `sampling` works in timestamps.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forwardlab.fileio import write_text_atomic
from forwardlab.progress import Advance
from forwardlab.video.data.folder import open_dataset
from forwardlab.video.data.manifest import STATUSES, ClipRecord, Manifest

NO_LABEL = "(no label)"
UNKNOWN = "unknown"
FILES_DIR = "explore_files"


@dataclass(frozen=True)
class OutlierRules:
    """Thresholds for odd clips; the defaults follow the model zoo's recipes (see the module docstring)."""

    min_frames: int = 16
    min_duration_s: float = 2.0
    max_short_side: int = 1080
    min_fps: float = 10.0
    max_fps: float = 60.0


@dataclass(frozen=True)
class Outlier:
    path: str
    label: str | None
    split: str
    kind: str  # too_short | too_few_frames | huge_resolution | variable_frame_rate | unusual_fps
    detail: str


@dataclass(frozen=True)
class RecipeSpan:
    """Clips of `frames_per_clip` at `fps` cover `span_s` seconds; shorter videos get padded frames."""

    frames_per_clip: int
    fps: float
    models: tuple[str, ...]

    @property
    def span_s(self) -> float:
        return self.frames_per_clip / self.fps

    @property
    def name(self) -> str:
        return f"{self.frames_per_clip} frames @ {self.fps:g} fps"


@dataclass
class DatasetStats:
    """Everything the summary, the JSON and the page show, computed from manifest rows in one pass."""

    name: str
    manifest: str
    root: str
    n_clips: int
    splits: dict[str, dict[str, int]]
    classes: dict[str, dict[str, int]]
    usable_per_class: dict[str, int]
    reasons: list[tuple[str, str, int]]
    probed: int
    numeric: dict[str, np.ndarray]
    categories: dict[str, dict[str, int]]
    outliers: list[Outlier]
    recipes: list[tuple[RecipeSpan, int]]
    rules: OutlierRules = field(default_factory=OutlierRules)

    def outlier_counts(self) -> dict[str, int]:
        return dict(Counter(o.kind for o in self.outliers).most_common())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures: counts, quantiles of every distribution, outlier counts, recipe coverage."""

        def quantiles(values: np.ndarray) -> dict[str, float] | None:
            if not values.size:
                return None
            q = np.quantile(values, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
            names = ("min", "p5", "p25", "median", "p75", "p95", "max")
            return {**{k: round(float(v), 4) for k, v in zip(names, q, strict=True)}, "mean": float(values.mean())}

        return {
            "name": self.name,
            "manifest": self.manifest,
            "root": self.root,
            "clips": self.n_clips,
            "probed": self.probed,
            "splits": self.splits,
            "classes": len(self.classes),
            "clips_per_class": self.classes,
            "usable_per_class": self.usable_per_class,
            "unusable_reasons": [{"status": s, "reason": r, "clips": n} for s, r, n in self.reasons],
            "distributions": {k: quantiles(v) for k, v in self.numeric.items()},
            "categories": self.categories,
            "outlier_rules": asdict(self.rules),
            "outliers": self.outlier_counts(),
            "recipes": [
                {"recipe": r.name, "span_s": round(r.span_s, 4), "models": list(r.models), "shorter_clips": n}
                for r, n in self.recipes
            ],
        }


def common_recipes() -> list[RecipeSpan]:
    """The distinct clip lengths of the catalog's models (importing the catalog loads torch and torchvision,
    once). For a model whose recipe is a whole-video rule (I3D's `all@25`) it is the shortest clip it takes."""
    from forwardlab.video.models.catalog import entries

    by_clip: dict[tuple[int, float], list[str]] = defaultdict(list)
    for name, entry in sorted(entries().items()):
        by_clip[(entry.recipe.frames_per_clip, entry.recipe.fps)].append(name)
    spans = [RecipeSpan(t, fps, tuple(models)) for (t, fps), models in by_clip.items()]
    return sorted(spans, key=lambda r: (r.span_s, r.frames_per_clip))


def _column(records: Sequence[ClipRecord], name: str) -> np.ndarray:
    return np.array([np.nan if (v := getattr(r, name)) is None else float(v) for r in records], dtype=float)


def _outliers(probed: Sequence[ClipRecord], rules: OutlierRules) -> list[Outlier]:
    found: list[Outlier] = []

    def add(r: ClipRecord, kind: str, detail: str) -> None:
        found.append(Outlier(r.path, r.label, r.split, kind, detail))

    for r in probed:
        duration, fps = r.duration_s or 0.0, r.fps or 0.0
        if duration < rules.min_duration_s:
            add(r, "too_short", f"{duration:.2f} s < {rules.min_duration_s:g} s")
        if r.n_frames is not None and r.n_frames < rules.min_frames:
            add(r, "too_few_frames", f"{r.n_frames} frames < {rules.min_frames}")
        if r.width and r.height and min(r.width, r.height) > rules.max_short_side:
            add(r, "huge_resolution", f"{r.width}x{r.height} (short side > {rules.max_short_side})")
        if r.variable_frame_rate:
            add(r, "variable_frame_rate", f"average {fps:.3f} fps, frame intervals vary")
        if fps and not rules.min_fps <= fps <= rules.max_fps:
            add(r, "unusual_fps", f"{fps:.3f} fps outside {rules.min_fps:g}-{rules.max_fps:g}")
    return found


def _tally(values: Sequence[object]) -> dict[str, int]:
    return dict(Counter(UNKNOWN if v is None else str(v) for v in values).most_common())


def compute_stats(
    manifest: Manifest,
    records: Sequence[ClipRecord],
    *,
    rules: OutlierRules | None = None,
    recipes: Sequence[RecipeSpan] = (),
) -> DatasetStats:
    """Counts, distributions and outliers of `records` (rows of `manifest`); linear in the rows."""
    rules = rules or OutlierRules()
    splits: dict[str, dict[str, int]] = {}
    classes: dict[str, dict[str, int]] = defaultdict(dict)
    usable: Counter[str] = Counter()
    reasons: Counter[tuple[str, str]] = Counter()
    for r in records:
        label = r.label or NO_LABEL
        splits.setdefault(r.split, dict.fromkeys(STATUSES, 0))[r.status] += 1
        classes[label][r.split] = classes[label].get(r.split, 0) + 1
        if r.status == "downloaded":
            usable[label] += 1
        else:
            reasons[(r.status, r.reason or r.status)] += 1
    probed = [r for r in records if r.status == "downloaded" and r.duration_s is not None]
    width, height = _column(probed, "width"), _column(probed, "height")
    with np.errstate(invalid="ignore", divide="ignore"):
        aspect = width / height
    numeric = {
        "duration_s": _column(probed, "duration_s"),
        "fps": _column(probed, "fps"),
        "n_frames": _column(probed, "n_frames"),
        "short_side_px": np.fmin(width, height),
        "aspect_ratio": aspect,
        "size_mb": _column(probed, "size_bytes") / 1e6,
    }
    numeric = {k: v[np.isfinite(v)] for k, v in numeric.items()}
    categories = {
        "codec": _tally([r.codec for r in probed]),
        "resolution": _tally([f"{r.width}x{r.height}" if r.width and r.height else None for r in probed]),
        "audio": _tally([None if r.has_audio is None else ("audio" if r.has_audio else "no audio") for r in probed]),
        "frame_rate_mode": _tally(
            [
                None if r.variable_frame_rate is None else ("variable" if r.variable_frame_rate else "constant")
                for r in probed
            ]
        ),
        "is_cc": _tally([None if r.is_cc is None else ("yes" if r.is_cc else "no") for r in records]),
    }
    durations = numeric["duration_s"]
    coverage = [(recipe, int((durations < recipe.span_s).sum())) for recipe in recipes]
    return DatasetStats(
        name=manifest.name,
        manifest=str(manifest.path),
        root=str(manifest.root),
        n_clips=len(records),
        splits=dict(sorted(splits.items())),
        classes={k: dict(sorted(v.items())) for k, v in sorted(classes.items())},
        usable_per_class={k: usable.get(k, 0) for k in sorted(classes)},
        reasons=[(s, reason, n) for (s, reason), n in reasons.most_common()],
        probed=len(probed),
        numeric=numeric,
        categories=categories,
        outliers=_outliers(probed, rules),
        recipes=coverage,
        rules=rules,
    )


def gallery_sample(records: Sequence[ClipRecord], limit: int, *, seed: int = 0) -> list[ClipRecord]:
    """Up to `limit` downloaded clips spread over the classes (one per class first, classes evenly
    spaced when there are more classes than slots), drawn with `seed`."""
    if limit < 1:
        return []
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[ClipRecord]] = defaultdict(list)
    for r in records:
        if r.status == "downloaded":
            by_label[r.label or NO_LABEL].append(r)
    labels = sorted(by_label)
    if len(labels) > limit:
        labels = [labels[i] for i in np.linspace(0, len(labels) - 1, limit).round().astype(int)]
    queues = {label: [by_label[label][i] for i in rng.permutation(len(by_label[label]))] for label in labels}
    chosen: list[ClipRecord] = []
    while len(chosen) < limit and any(queues.values()):
        for label in labels:
            if queues[label] and len(chosen) < limit:
                chosen.append(queues[label].pop())
    return sorted(chosen, key=lambda r: (r.label or "", r.path))


@dataclass(frozen=True)
class ExploreResult:
    stats: DatasetStats
    html: Path
    json: Path
    outliers_csv: Path
    probed_now: int
    gallery: int


def explore(
    data: str | Path | Manifest,
    out: str | Path,
    *,
    workers: int = 4,
    rules: OutlierRules | None = None,
    gallery_clips: int = 48,
    seed: int = 0,
    probe_progress: Advance | None = None,
    thumbnail_progress: Advance | None = None,
) -> ExploreResult:
    """Explore `data` (a manifest, a folder holding one, or class folders) into `out`.

    Clips lacking probe fields are probed first (`workers` in parallel) and stored in the manifest.
    Writes `explore.html` (plots inline, thumbnails in `explore_files/`), `explore.json` and
    `outliers.csv`; each file is replaced atomically.
    """
    from forwardlab.video.reports.explore_page import render_explore
    from forwardlab.video.reports.thumbnails import write_thumbnails

    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    manifest = open_dataset(data, import_into=target, workers=workers)
    probed_now = sum(manifest.refresh(workers=workers, progress=probe_progress, only_unprobed=True).values())
    records = manifest.records()
    stats = compute_stats(manifest, records, rules=rules, recipes=common_recipes())
    sample = gallery_sample(records, gallery_clips, seed=seed)
    thumbs = write_thumbnails(
        [(r.path, manifest.absolute(r)) for r in sample],
        target / FILES_DIR,
        workers=workers,
        progress=thumbnail_progress,
    )
    html_path, json_path, csv_path = target / "explore.html", target / "explore.json", target / "outliers.csv"
    write_text_atomic(csv_path, outliers_csv(stats.outliers))
    write_text_atomic(json_path, json.dumps(stats.to_dict(), indent=2) + "\n")
    write_text_atomic(html_path, render_explore(stats, sample, thumbs, manifest=manifest, page_dir=target))
    return ExploreResult(stats, html_path, json_path, csv_path, probed_now, len(sample))


def outliers_csv(outliers: Sequence[Outlier]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("path", "label", "split", "kind", "detail"))
    writer.writerows((o.path, o.label or "", o.split, o.kind, o.detail) for o in outliers)
    return buffer.getvalue()
