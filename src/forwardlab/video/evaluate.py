"""Evaluate a registry model on a dataset: which clips, durable rows, metrics, output files.

The run, in one picture::

    manifest rows -> `inference.run_local` / `run_ray` (decode workers, batches of clips, softmax per view,
                     `TopClasses`: the mean over a video's views ranked)
                  -> one `ResultRow` per finished video, appended to results.partial.jsonl (flush + fsync),
                     so a killed run resumes where it stopped
                  -> at the end every output is rebuilt from the durable rows, sorted by path, atomically.

Video-level scores are the mean softmax over a video's views; clip-level scores treat each view alone.
Accuracy counts only evaluated videos whose label is one of the model's classes (exact string); others
are still predicted, and counted as "label not in model classes" or "unlabeled". Manifest rows that are
missing or corrupt, and videos that fail to decode, are listed with their reasons.
Both engines write the same durable rows, so they give the same outputs on the same data.

Outputs in `out/`:
  results.partial.jsonl  the durable log: one JSON object per finished video (the resume state)
  run.json               the settings that produced the log; a rerun with other settings is refused
  results.parquet        one row per selected manifest row (evaluated, failed, missing or corrupt)
  predictions.csv        video,label,prediction,top5,correct (evaluated videos; top5 `;`-joined)
  per_class.csv          class,class_index,videos,top1_correct,top1_accuracy,top5_correct,top5_accuracy
  confusion.csv          true label x predicted label counts, over classes that occur
  summary.json           model, recipe, views, counts, metrics, failures with reasons, timing
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from forwardlab.fileio import atomic_path, write_text_atomic
from forwardlab.video.data.folder import open_dataset
from forwardlab.video.data.manifest import ClipRecord, Manifest
from forwardlab.video.errors import DatasetError, EvaluationError
from forwardlab.video.inference import Item, Outcome, Ranking, TopClasses, Views, import_ray, run_local, run_ray

if TYPE_CHECKING:
    import pyarrow as pa

    from forwardlab.video.models.registry import ModelEntry

Engine = Literal["local", "ray"]
Progress = Callable[[int, int], None]

TOP_K = 5
PARTIAL_NAME = "results.partial.jsonl"
RUN_NAME = "run.json"
OUTPUT_NAMES = {
    "results": "results.parquet",
    "predictions": "predictions.csv",
    "per_class": "per_class.csv",
    "confusion": "confusion.csv",
    "summary": "summary.json",
}
# Settings that change what a row contains: a resumed run must use the same ones.
_RUN_KEYS = ("model", "weights", "pretrained", "views", "sample", "manifest", "split", "limit", "seed")


# =============================================================================================== metrics
# Small pure functions over class indices, so they can be checked against a table computed by hand.


def topk_accuracy(ranked: Sequence[Sequence[int]], labels: Sequence[int], k: int = 1) -> float:
    """Fraction of samples whose label is among the first `k` entries of their ranked predictions."""
    if len(ranked) != len(labels):
        raise ValueError(f"{len(ranked)} rankings for {len(labels)} labels")
    if not labels:
        raise ValueError("accuracy of no samples is undefined")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    hits = sum(label in list(r)[:k] for r, label in zip(ranked, labels, strict=True))
    return hits / len(labels)


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int], num_classes: int) -> np.ndarray:
    """`(num_classes, num_classes)` counts: row = true class, column = predicted class."""
    if len(labels) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    if labels:
        np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return matrix


def per_class_accuracy(labels: Sequence[int], predictions: Sequence[int], num_classes: int) -> dict[int, float]:
    """Top-1 accuracy (recall) of every class that has at least one sample."""
    matrix = confusion_matrix(labels, predictions, num_classes)
    support = matrix.sum(axis=1)
    return {int(c): float(matrix[c, c] / support[c]) for c in np.flatnonzero(support)}


def mean_class_accuracy(labels: Sequence[int], predictions: Sequence[int], num_classes: int) -> float:
    """Mean over the classes present in `labels` of their top-1 accuracy (each class weighs the same)."""
    if not labels:
        raise ValueError("accuracy of no samples is undefined")
    return float(np.mean(list(per_class_accuracy(labels, predictions, num_classes).values())))


# =============================================================================================== results


@dataclass(frozen=True)
class EvalSummary:
    """What `evaluate` did: counts, metrics (None where nothing was scored) and where the files are."""

    out: Path
    model: str
    views: Views
    counts: dict[str, int]
    metrics: dict[str, float | None]
    videos_per_s: float | None
    resumed: int
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["out"] = str(self.out)
        out["files"] = {k: str(v) for k, v in self.files.items()}
        return out


@dataclass(frozen=True)
class ResultRow:
    """One selected manifest row's result: a line of results.partial.jsonl and a row of results.parquet.

    `status` is "ok" (evaluated), "failed" (could not be decoded; `error` says why) or the manifest status
    that kept it from being read ("missing", "corrupt"). Top-5 fields are empty unless it is "ok";
    `correct_*` are None where the label is not one of the model's classes (`label_index` None).
    """

    path: str = field(metadata={"arrow": "string"})
    label: str | None = field(metadata={"arrow": "string"})
    label_index: int | None = field(metadata={"arrow": "int32"})
    status: str = field(metadata={"arrow": "string"})
    error: str | None = field(metadata={"arrow": "string"})
    prediction: str | None = field(default=None, metadata={"arrow": "string"})
    top5_labels: list[str] = field(default_factory=list, metadata={"arrow": "list<string>"})
    top5_scores: list[float] = field(default_factory=list, metadata={"arrow": "list<float64>"})
    correct_top1: bool | None = field(default=None, metadata={"arrow": "bool"})
    correct_top5: bool | None = field(default=None, metadata={"arrow": "bool"})
    n_views: int = field(default=0, metadata={"arrow": "int32"})
    padded: int = field(default=0, metadata={"arrow": "int32"})
    decode_s: float = field(default=0.0, metadata={"arrow": "float64"})
    model_s: float = field(default=0.0, metadata={"arrow": "float64"})
    view_top5: list[list[int]] = field(default_factory=list, metadata={"arrow": "list<list<int32>>"})

    @classmethod
    def of(cls, outcome: Outcome[Ranking], classes: Sequence[str], label_index: int | None) -> ResultRow:
        """The row of a video the inference loop went through: scored, or failed with its reason."""
        item = outcome.item
        if outcome.error is not None:
            return cls(item.key, item.label, label_index, "failed", outcome.error, decode_s=float(outcome.decode_s))
        assert outcome.value is not None
        top = outcome.value.indices
        return cls(
            path=item.key,
            label=item.label,
            label_index=label_index,
            status="ok",
            error=None,
            prediction=classes[top[0]],
            top5_labels=[classes[i] for i in top],
            top5_scores=outcome.value.scores,
            correct_top1=None if label_index is None else top[0] == label_index,
            correct_top5=None if label_index is None else label_index in top,
            n_views=int(outcome.n_views),
            padded=int(outcome.padded),
            decode_s=float(outcome.decode_s),
            model_s=float(outcome.model_s),
            view_top5=outcome.value.view_indices,
        )

    @classmethod
    def skipped(cls, record: ClipRecord, label_index: int | None) -> ResultRow:
        """The row of a manifest row not read for its status (missing, corrupt), with the manifest's reason."""
        return cls(record.path, record.label, label_index, record.status, record.reason or f"status {record.status}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResultRow:
        return cls(**data)

    @classmethod
    def arrow_schema(cls) -> pa.Schema:
        """The parquet schema: the fields in order, each with the type its field's `arrow` metadata names."""
        import pyarrow as pa

        def arrow_type(name: str) -> pa.DataType:
            if name.startswith("list<"):
                return pa.list_(arrow_type(name.removeprefix("list<").removesuffix(">")))
            return {"string": pa.string(), "int32": pa.int32(), "float64": pa.float64(), "bool": pa.bool_()}[name]

        return pa.schema([(f.name, arrow_type(f.metadata["arrow"])) for f in fields(cls)])


class _RowLog:
    """Append-only JSON-lines file: a row is durable once `append` returns (flush + fsync).

    A run killed mid-write leaves at most one partial last line; opening the log drops it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, ResultRow] = {}
        if path.exists():
            data = path.read_bytes()
            end = data.rfind(b"\n") + 1
            for line in data[:end].splitlines():
                if line.strip():
                    row = ResultRow.from_dict(json.loads(line))
                    self.rows[row.path] = row
            if end != len(data):
                with path.open("r+b") as f:
                    f.truncate(end)
        self._file = path.open("ab")

    def append(self, row: ResultRow) -> None:
        self._file.write(json.dumps(row.to_dict(), sort_keys=True).encode() + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.rows[row.path] = row

    def close(self) -> None:
        self._file.close()


# =============================================================================================== the job


def _select(
    manifest: Manifest, split: str | None, limit: int | None, seed: int
) -> tuple[list[ClipRecord], list[ClipRecord]]:
    """(rows to evaluate, rows skipped for their manifest status); `limit` draws a seeded subset."""
    records = sorted(manifest.records(split=split), key=lambda r: r.path)
    where = f" in split {split!r}" if split is not None else ""
    if not records:
        raise DatasetError(f"{manifest.path}: the dataset is empty: no clips{where} to evaluate")
    usable = [r for r in records if r.status == "downloaded"]
    skipped = [r for r in records if r.status != "downloaded"]
    if not usable:
        tally = ", ".join(f"{n} {s}" for s, n in sorted(Counter(r.status for r in skipped).items()))
        reasons = "; ".join(f"{r.path}: {r.reason or r.status}" for r in skipped[:3])
        raise DatasetError(
            f"{manifest.path}: none of its {len(records)} clips{where} is downloaded ({tally}): {reasons}"
        )
    if limit is not None and len(usable) > limit:
        chosen = np.random.default_rng(seed).permutation(len(usable))[:limit]
        usable = [usable[i] for i in sorted(chosen)]
    return usable, skipped


def _check_run(out: Path, config: dict[str, Any]) -> None:
    """Refuse to mix rows of different settings in one `out`; record the settings of a fresh run."""
    run_file = out / RUN_NAME
    if (out / PARTIAL_NAME).exists() and run_file.is_file():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        differ = [k for k in _RUN_KEYS if previous.get(k) != config.get(k)]
        if differ:
            shown = "; ".join(f"{k}: {previous.get(k)!r} there, {config.get(k)!r} now" for k in differ)
            raise EvaluationError(
                f"{out}: holds results of an evaluation with other settings ({shown}); "
                f"use another output folder, or delete {PARTIAL_NAME} there to start over"
            )
        return
    write_text_atomic(run_file, json.dumps(config, indent=2) + "\n")


def evaluate(
    data: str | Path | Manifest,
    model: str,
    *,
    out: Path,
    limit: int | None = None,
    views: Views | None = None,
    sample: str | None = None,
    batch: int = 8,
    workers: int = 2,
    engine: Engine = "local",
    address: str | None = None,
    pretrained: bool = True,
    weights: Path | None = None,
    seed: int = 0,
    split: str | None = None,
    progress: Progress | None = None,
) -> EvalSummary:
    """Evaluate registry model `model` on the downloaded clips of `data`; write results into `out`.

    `data`: a manifest file, a folder holding `manifest.sqlite`, or a class-folder dataset (indexed into
    `out/manifest.sqlite`, so the source folder is not written). `split` keeps one split (default: all
    rows); `limit` evaluates a subset of that many downloaded clips drawn with `seed`. `views=(K, C)`:
    K clips x C crops per video (default: the model's recipe); `sample`: a sampling rule in place of the
    recipe's (`uniform:64`, `clip:64@25`, `all@25`, ...; see `Recipe.for_run`). `batch` clips go through the model at
    once; `workers` processes decode (0: decode in this process). `engine="ray"` runs on Ray Data
    (`address` of a running cluster, else a small local one). `weights` loads that state-dict file
    instead of the published weights. `progress(done, total)` is called after every video.

    Resumable: rows are durable as they are produced; rerunning with the same `out` (and settings)
    skips the videos already done and ends with the same outputs an uninterrupted run writes.
    Missing, corrupt and undecodable videos are counted and listed with their reasons, never fatal.
    """
    from forwardlab.video.models.catalog import get_entry, load_model

    entry = get_entry(model)  # fails first, listing the known names
    recipe, (k, c) = entry.recipe.for_run(sample, views)
    entry = replace(entry, recipe=recipe)  # what this run does, for the Ray actor and the summary
    if k < 1 or c not in (1, 3):
        raise EvaluationError(f"views {k}x{c}: need K >= 1 clips and C = 1 or 3 crops")
    if batch < 1:
        raise EvaluationError(f"batch must be >= 1 clip, got {batch}")
    if workers < 0:
        raise EvaluationError(f"workers must be >= 0, got {workers}")
    if limit is not None and limit < 1:
        raise EvaluationError(f"limit must be >= 1, got {limit}")
    if engine not in ("local", "ray"):
        raise EvaluationError(f"engine must be 'local' or 'ray', got {engine!r}")
    if engine == "ray":
        import_ray()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    manifest = open_dataset(data, import_into=out, workers=workers)
    targets, skipped = _select(manifest, split, limit, seed)
    config = {
        "model": model,
        "weights": None if weights is None else str(Path(weights).resolve()),
        "pretrained": bool(pretrained) if weights is None else None,
        "views": [k, c],
        "sample": recipe.sample,
        "manifest": str(manifest.path.resolve()),
        "split": split,
        "limit": limit,
        "seed": seed,
    }
    _check_run(out, config)

    class_index = {name: i for i, name in enumerate(entry.classes)}

    def label_index(label: str | None) -> int | None:
        return None if label is None else class_index.get(label)

    items = [Item(r.path, str(manifest.absolute(r)), r.label) for r in targets]
    log = _RowLog(out / PARTIAL_NAME)
    wanted = {t.key for t in items}
    resumed = sum(1 for key in log.rows if key in wanted)
    todo = [t for t in items if t.key not in log.rows]
    done, total = resumed, len(items)
    if progress is not None:
        progress(done, total)
    setup_s = 0.0
    started = time.perf_counter()
    try:
        if todo:
            task = TopClasses(TOP_K)
            outcomes: Iterator[Outcome[Ranking]]
            if engine == "ray":  # the model is loaded in Ray's actor: its load time counts as run time
                outcomes = run_ray(
                    todo,
                    entry=entry,
                    pretrained=pretrained,
                    weights=weights,
                    task=task,
                    views=(k, c),
                    batch=batch,
                    workers=workers,
                    address=address,
                )
            else:
                loaded = load_model(model, pretrained=pretrained, weights=weights)
                setup_s = time.perf_counter() - started
                started = time.perf_counter()
                outcomes = run_local(
                    todo, loaded.model, recipe=recipe, task=task, views=(k, c), batch=batch, workers=workers
                )
            for outcome in outcomes:
                log.append(ResultRow.of(outcome, entry.classes, label_index(outcome.item.label)))
                done += 1
                if progress is not None:
                    progress(done, total)
    finally:
        log.close()
    run_s = time.perf_counter() - started

    rows_by_key = {key: row for key, row in log.rows.items() if key in wanted}
    for r in skipped:
        rows_by_key[r.path] = ResultRow.skipped(r, label_index(r.label))
    final = [rows_by_key[key] for key in sorted(rows_by_key)]
    timing = {"setup_s": setup_s, "run_s": run_s, "videos_this_run": len(todo), "resumed": resumed}
    return _write_outputs(out, final, entry, (k, c), config, timing, manifest)


# =============================================================================================== outputs


def _metrics(scored: Sequence[ResultRow], index: dict[str, int]) -> dict[str, float | None]:
    """Video level (mean softmax over views) and clip level (each view alone) accuracies."""
    names = ("video_top1", "video_top5", "clip_top1", "clip_top5", "mean_class_accuracy")
    if not scored:
        return dict.fromkeys(names)
    labels = [_scored_label(r) for r in scored]
    video_ranked = [_ranking(r, index) for r in scored]
    clip_ranked = [v for r in scored for v in r.view_top5]
    clip_labels = [_scored_label(r) for r in scored for _ in r.view_top5]
    return {
        "video_top1": topk_accuracy(video_ranked, labels, 1),
        "video_top5": topk_accuracy(video_ranked, labels, TOP_K),
        "clip_top1": topk_accuracy(clip_ranked, clip_labels, 1),
        "clip_top5": topk_accuracy(clip_ranked, clip_labels, TOP_K),
        "mean_class_accuracy": mean_class_accuracy(labels, [v[0] for v in video_ranked], len(index)),
    }


def _ranking(row: ResultRow, index: dict[str, int]) -> list[int]:
    """A video's top-5 as class indices."""
    return [index[name] for name in row.top5_labels]


def _scored_label(row: ResultRow) -> int:
    """The class index of a scored row (one whose label is a model class)."""
    assert row.label_index is not None
    return row.label_index


def _write_outputs(
    out: Path,
    rows: list[ResultRow],
    entry: ModelEntry,
    views: Views,
    config: dict[str, Any],
    timing: dict[str, Any],
    manifest: Manifest,
) -> EvalSummary:
    from forwardlab.video.models.trained import recipe_to_card

    classes = entry.classes
    index = {name: i for i, name in enumerate(classes)}
    ok = [r for r in rows if r.status == "ok"]
    scored = [r for r in ok if r.label_index is not None]
    metrics = _metrics(scored, index)

    files = {name: out / file for name, file in OUTPUT_NAMES.items()}
    _write_parquet(files["results"], rows)
    _write_predictions(files["predictions"], ok)
    _write_per_class(files["per_class"], scored, classes)
    _write_confusion(files["confusion"], scored, classes, index)

    status = Counter(r.status for r in rows)
    outside = Counter(r.label for r in ok if r.label is not None and r.label_index is None)
    counts = {
        "rows": len(rows),
        "evaluated": status["ok"],
        "failed": status["failed"],
        "missing": status["missing"],
        "corrupt": status["corrupt"],
        "scored": len(scored),
        "label_not_in_model_classes": sum(outside.values()),
        "unlabeled": sum(1 for r in ok if r.label is None),
        "padded_videos": sum(1 for r in ok if r.padded > 0),
        "clips": sum(r.n_views for r in ok),
    }
    decode_s = sum(r.decode_s for r in ok)
    model_s = sum(r.model_s for r in ok)
    new = timing["videos_this_run"]
    videos_per_s = round(new / timing["run_s"], 3) if new and timing["run_s"] > 0 else None
    summary = {
        "model": entry.name,
        "weights": config["weights"] or ("published" if config["pretrained"] else "random (pretrained=False)"),
        "recipe": recipe_to_card(entry.recipe),  # as a trained model's card stores it
        "views": {"temporal": views[0], "spatial": views[1], "per_video": views[0] * views[1]},
        "data": {
            "manifest": config["manifest"],
            "root": str(manifest.root),
            "split": config["split"],
            "limit": config["limit"],
            "seed": config["seed"],
        },
        "counts": counts,
        "metrics": metrics,
        "label_not_in_model_classes": dict(sorted(outside.items())),
        "failures": [{"path": r.path, "status": r.status, "reason": r.error} for r in rows if r.status != "ok"],
        "timing": {
            "videos_this_run": new,
            "resumed_videos": timing["resumed"],
            "model_load_s": round(timing["setup_s"], 3),
            "run_s": round(timing["run_s"], 3),
            "videos_per_s": videos_per_s,
            "decode_s_per_clip": round(decode_s / counts["clips"], 4) if counts["clips"] else None,
            "model_s_per_clip": round(model_s / counts["clips"], 4) if counts["clips"] else None,
        },
        "files": {name: path.name for name, path in files.items()},
    }
    write_text_atomic(files["summary"], json.dumps(summary, indent=2) + "\n")
    return EvalSummary(
        out=out,
        model=entry.name,
        views=views,
        counts=counts,
        metrics=metrics,
        videos_per_s=videos_per_s,
        resumed=timing["resumed"],
        files=files,
    )


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _write_predictions(path: Path, ok: Sequence[ResultRow]) -> None:
    text = _csv_text(
        ("video", "label", "prediction", "top5", "correct"),
        ((r.path, r.label or "", r.prediction, ";".join(r.top5_labels), _csv_bool(r.correct_top1)) for r in ok),
    )
    write_text_atomic(path, text)


def _csv_bool(value: bool | None) -> str:
    return "" if value is None else str(bool(value))


def _write_per_class(path: Path, scored: Sequence[ResultRow], classes: Sequence[str]) -> None:
    by_class: dict[int, list[ResultRow]] = {}
    for r in scored:
        by_class.setdefault(_scored_label(r), []).append(r)
    lines = []
    for i in sorted(by_class):
        group = by_class[i]
        top1 = sum(bool(r.correct_top1) for r in group)
        top5 = sum(bool(r.correct_top5) for r in group)
        lines.append((classes[i], i, len(group), top1, _ratio(top1, len(group)), top5, _ratio(top5, len(group))))
    header = ("class", "class_index", "videos", "top1_correct", "top1_accuracy", "top5_correct", "top5_accuracy")
    write_text_atomic(path, _csv_text(header, lines))


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.6f}"


def _write_confusion(path: Path, scored: Sequence[ResultRow], classes: Sequence[str], index: dict[str, int]) -> None:
    """Square counts over the classes that occur as a label or a top-1 prediction, in model order."""
    labels = [_scored_label(r) for r in scored]
    predicted = [_ranking(r, index)[0] for r in scored]
    matrix = confusion_matrix(labels, predicted, len(classes))
    present = sorted(set(labels) | set(predicted))
    lines = [(classes[i], *(int(matrix[i, j]) for j in present)) for i in present]
    write_text_atomic(path, _csv_text(("label \\ prediction", *(classes[j] for j in present)), lines))


def _write_parquet(path: Path, rows: Sequence[ResultRow]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise EvaluationError(
            f"writing {path.name} needs pyarrow ({exc}); install the extra: pip install 'forwardlab[video]'"
        ) from exc
    table = pa.Table.from_pylist([r.to_dict() for r in rows], schema=ResultRow.arrow_schema())
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


__all__ = [
    "EvalSummary",
    "ResultRow",
    "confusion_matrix",
    "evaluate",
    "mean_class_accuracy",
    "per_class_accuracy",
    "topk_accuracy",
]
