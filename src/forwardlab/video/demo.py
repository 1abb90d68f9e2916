"""`make demo` for the video half: the whole workbench, offline, in one command.

1. generate the synthetic validation split (fresh clips, seeded),
2. probe every clip (probe.json, a summary table) and draw one sampled clip per class (contact sheet),
3. evaluate the two models that ship inside the package, `tiny_2d` and `tiny_r2plus1d`, with `evaluate`
   (each into `eval/<model>/`: results.parquet, per_class.csv, confusion.csv, summary.json),
4. write `report.html` (per-class accuracy side by side, confusion matrices, a gallery, and why the 2D
   model confuses the time-reversed pairs) and `summary.json` with the same figures, and print them.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from forwardlab.fileio import write_text_atomic
from forwardlab.progress import progress_bar
from forwardlab.video.data.manifest import Manifest
from forwardlab.video.reports.html import pct

if TYPE_CHECKING:  # torch-heavy: imported when the demo runs, so `forwardlab --help` stays quick
    from forwardlab.video.io import VideoInfo

DEMO_SPLIT = "val"
SHEET_FRAMES = 8
SHEET_SIZE = 96
DEMO_PER_CLASS = 8
DEMO_MODELS: dict[str, str] = {"tiny_2d": "2D + temporal average", "tiny_r2plus1d": "(2+1)D"}
SETTINGS_NAME = "demo.json"


@dataclass(frozen=True)
class DemoResult:
    dataset_root: Path
    probe_json: Path
    contact_sheet: Path
    n_clips: int
    report: Path | None = None
    summary_json: Path | None = None
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


def run_demo(
    out: Path,
    *,
    per_class: int = DEMO_PER_CLASS,
    seed: int = 0,
    console: Console | None = None,
    models: Sequence[str] | None = tuple(DEMO_MODELS),
    workers: int = 2,
) -> DemoResult:
    """Generate, probe, draw, evaluate the shipped models, report. `models=None` stops after drawing."""
    from forwardlab.video.data.synthetic import generate
    from forwardlab.video.data.synthetic_classes import CLASSES
    from forwardlab.video.io import probe, read_frames
    from forwardlab.video.sampling import uniform_timestamps
    from forwardlab.video.visualize import contact_sheet, save_image

    started = time.perf_counter()
    console = console or Console()
    out = Path(out)
    root = out / "synthetic"
    _reset_if_other_settings(out, {"per_class": per_class, "seed": seed, "split": DEMO_SPLIT})
    with progress_bar("generating synthetic clips", per_class * len(CLASSES)) as advance:
        clips = generate(root, per_class=per_class, split=DEMO_SPLIT, seed=seed, progress=advance)
    infos: list[tuple[str, VideoInfo]] = []
    with progress_bar("probing clips", len(clips)) as advance:
        for i, clip in enumerate(clips, 1):
            infos.append((clip.label, probe(clip.path)))
            advance(i, len(clips))
    probe_json = out / "probe.json"
    write_text_atomic(probe_json, json.dumps([dict(label=lbl, **i.to_dict()) for lbl, i in infos], indent=2))
    console.print(_summary(infos))

    first: dict[str, VideoInfo] = {}
    for label, info in infos:
        first.setdefault(label, info)
    rows = [
        (label, read_frames(info.path, uniform_timestamps(info, SHEET_FRAMES), size=SHEET_SIZE).data)
        for label, info in first.items()
    ]
    sheet = save_image(contact_sheet(rows), out / "contact_sheet.png")
    if not models:
        return DemoResult(root, probe_json, sheet, len(clips), seconds=time.perf_counter() - started)

    report, summary_json, figures = _evaluate_and_report(
        out, root, list(models), per_class=per_class, seed=seed, n_clips=len(clips), workers=workers
    )
    console.print(_figures_table(figures))
    console.print(f"report: [bold]{report}[/]  figures: [bold]{summary_json}[/]")
    seconds = time.perf_counter() - started
    return DemoResult(root, probe_json, sheet, len(clips), report, summary_json, figures, seconds)


def _reset_if_other_settings(out: Path, settings: dict[str, Any]) -> None:
    """A demo folder made with other settings: drop what the demo generated there (clips, evaluations)."""
    marker = out / SETTINGS_NAME
    if marker.is_file():
        previous = json.loads(marker.read_text(encoding="utf-8"))
        if previous != settings:
            for name in ("synthetic", "eval"):
                shutil.rmtree(out / name, ignore_errors=True)
    write_text_atomic(marker, json.dumps(settings, indent=2) + "\n")


# =============================================================================================== figures


def model_figures(rows: Sequence[dict[str, Any]], classes: Sequence[str]) -> dict[str, Any]:
    """The report's figures from evaluation rows (path, label, prediction, top5_labels, status)."""
    from forwardlab.video.data.synthetic_classes import TIME_REVERSED_PAIRS

    twin = {a: b for pair in TIME_REVERSED_PAIRS for a, b in (pair, pair[::-1])}
    scored = [r for r in rows if r["status"] == "ok" and r["label"] in classes]
    index = {c: i for i, c in enumerate(classes)}
    confusion = [[0] * len(classes) for _ in classes]
    for r in scored:
        confusion[index[r["label"]]][index[r["prediction"]]] += 1

    def top1(group: Sequence[dict[str, Any]]) -> float | None:
        return sum(r["prediction"] == r["label"] for r in group) / len(group) if group else None

    per_class = {c: top1([r for r in scored if r["label"] == c]) for c in classes}
    present = [v for v in per_class.values() if v is not None]
    paired = [r for r in scored if r["label"] in twin]
    single = [r for r in scored if r["label"] not in twin]
    return {
        "clips": len(scored),
        "failed": sum(1 for r in rows if r["status"] != "ok"),
        "top1": top1(scored),
        "top5": sum(r["label"] in list(r["top5_labels"]) for r in scored) / len(scored) if scored else None,
        "mean_class_accuracy": sum(present) / len(present) if present else None,
        "per_class_top1": per_class,
        "time_reversed_top1": top1(paired),
        "single_frame_top1": top1(single),
        # the prediction is the right class or its time-reversed twin: which pair, ignoring direction
        "pair_top1": sum(r["prediction"] in (r["label"], twin[r["label"]]) for r in paired) / len(paired)
        if paired
        else None,
        "twin_confusions": sum(r["prediction"] == twin[r["label"]] for r in paired),
        "confusion": confusion,
    }


def _evaluate_and_report(
    out: Path, root: Path, models: list[str], *, per_class: int, seed: int, n_clips: int, workers: int
) -> tuple[Path, Path, dict[str, dict[str, Any]]]:
    import torch

    from forwardlab.video.data.folder import import_folder

    manifest = import_folder(root, workers=max(1, workers))
    # One compute thread: with decode workers on a small CPU, spinning OpenMP threads cost more than they give.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        figures, predictions, timing = _evaluate_models(manifest, out, models, n_clips, workers)
    finally:
        torch.set_num_threads(threads)
    report, summary_json = _report(out, root, manifest, models, figures, predictions, timing, per_class, seed, n_clips)
    return report, summary_json, figures


def _evaluate_models(
    manifest: Manifest, out: Path, models: list[str], n_clips: int, workers: int
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]], dict[str, float]]:
    import pandas as pd

    from forwardlab.video.evaluate import evaluate
    from forwardlab.video.models.catalog import get_entry

    figures: dict[str, dict[str, Any]] = {}
    predictions: dict[str, dict[str, str]] = {}
    timing: dict[str, float] = {}
    for name in models:
        entry = get_entry(name)
        start = time.perf_counter()
        # always from scratch: rows of an earlier demo may come from other weights (evaluate would resume them)
        shutil.rmtree(out / "eval" / name, ignore_errors=True)
        with progress_bar(f"evaluating {name}", n_clips, unit="videos") as advance:
            result = evaluate(
                manifest, name, out=out / "eval" / name, split=DEMO_SPLIT, batch=16, workers=workers, progress=advance
            )
        timing[name] = round(time.perf_counter() - start, 2)
        rows = pd.read_parquet(result.files["results"]).to_dict("records")
        figures[name] = {
            "title": DEMO_MODELS.get(name, name),
            **model_figures(rows, entry.classes),
            "recorded": dict(entry.accuracy),
            "evaluation": str(result.out),
        }
        predictions[name] = {r["path"]: r["prediction"] for r in rows if r["status"] == "ok"}
    return figures, predictions, timing


def _report(
    out: Path,
    root: Path,
    manifest: Manifest,
    models: list[str],
    figures: dict[str, dict[str, Any]],
    predictions: dict[str, dict[str, str]],
    timing: dict[str, float],
    per_class: int,
    seed: int,
    n_clips: int,
) -> tuple[Path, Path]:
    from forwardlab.video.data.synthetic_classes import CLASSES, TIME_REVERSED_PAIRS
    from forwardlab.video.io import probe, read_frames
    from forwardlab.video.models.catalog import get_entry
    from forwardlab.video.report_demo import GalleryItem, render_report

    recipe = get_entry(models[0]).recipe
    gallery: list[GalleryItem] = []
    records = manifest.records(split=DEMO_SPLIT)
    for label in CLASSES:
        # one clip per class; where the models disagree on some clip of it, that clip
        group = [r for r in records if r.label == label]
        if not group:
            continue
        disagree = [r for r in group if len({predictions[n].get(r.path) for n in models}) > 1]
        record = (disagree or group)[0]
        path = manifest.absolute(record)
        stamps = recipe.sampler(1)(probe(path))[0]
        frames = read_frames(path, stamps, size=recipe.decode_size).data
        gallery.append(
            GalleryItem(record.path, label, frames, {n: predictions[n].get(record.path, "") for n in models})
        )

    dataset = {"root": str(root), "split": DEMO_SPLIT, "per_class": per_class, "seed": seed, "clips": n_clips}
    page = render_report(
        models=figures,
        titles={n: f"{DEMO_MODELS.get(n, n)} ({n})" for n in models},
        classes=list(CLASSES),
        pairs=list(TIME_REVERSED_PAIRS),
        dataset=dataset,
        gallery=gallery,
        contact_sheet_file="contact_sheet.png",
    )
    report = out / "report.html"
    write_text_atomic(report, page)
    summary = {
        "dataset": dataset,
        "classes": list(CLASSES),
        "time_reversed_pairs": [list(p) for p in TIME_REVERSED_PAIRS],
        "models": figures,
        "timing_s": timing,
        "report": report.name,
    }
    summary_json = out / "summary.json"
    write_text_atomic(summary_json, json.dumps(summary, indent=2) + "\n")
    return report, summary_json


# =============================================================================================== printing


def _figures_table(figures: dict[str, dict[str, Any]]) -> Table:
    table = Table(
        "model", "top-1", "top-5", "mean class acc", "single-frame classes", "time-reversed pairs", title="demo results"
    )
    for name, f in figures.items():
        table.add_row(
            name,
            pct(f["top1"]),
            pct(f["top5"]),
            pct(f["mean_class_accuracy"]),
            pct(f["single_frame_top1"]),
            pct(f["time_reversed_top1"]),
        )
    return table


def _summary(infos: list[tuple[str, VideoInfo]]) -> Table:
    by_label: dict[str, list[VideoInfo]] = defaultdict(list)
    for label, info in infos:
        by_label[label].append(info)
    table = Table("class", "clips", "duration s", "fps", "sizes", "frames", title="probe summary")
    for label, group in sorted(by_label.items()):
        durations = [i.duration_s for i in group]
        table.add_row(
            label,
            str(len(group)),
            f"{min(durations):.1f}-{max(durations):.1f}",
            ",".join(sorted({f"{i.fps:g}" for i in group})),
            ",".join(sorted({f"{i.width}x{i.height}" for i in group})),
            str(sum(i.n_frames for i in group)),
        )
    return table
