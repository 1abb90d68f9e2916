"""Evaluate a registry model on a dataset: streaming decode, batched inference, durable rows, metrics.

The run, in one picture::

    manifest rows -> decode workers (probe, sample K clips, ONE decode for all K x C views, uint8)
                  -> main process: clips of several videos gathered into batches of `batch` clips,
                     normalized to float only here, model under inference_mode, softmax
                  -> when a video's last view is scored: its row is appended to results.partial.jsonl
                     (flush + fsync), so a killed run resumes where it stopped
                  -> at the end every output is rebuilt from the durable rows, sorted by path, atomically.

Video-level scores are the mean softmax over a video's views; clip-level scores treat each view alone.
Accuracy counts only evaluated videos whose label is one of the model's classes (exact string); others
are still predicted, and counted as "label not in model classes" or "unlabeled". Manifest rows that are
missing or corrupt, and videos that fail to decode, are listed with their reasons.
The Ray engine runs the same two stages on Ray Data (decode tasks, one model actor) and writes the same
durable rows, so both engines give the same outputs on the same data; Ray is imported only there.

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
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from forwardlab.fileio import atomic_path, write_text_atomic
from forwardlab.video.data.folder import open_dataset
from forwardlab.video.data.manifest import ClipRecord, Manifest
from forwardlab.video.errors import DatasetError, VideoDecodeError, VideoError

if TYPE_CHECKING:
    import torch

    from forwardlab.video.models.registry import ModelEntry, Recipe

Engine = Literal["local", "ray"]
Views = tuple[int, int]
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
_RUN_KEYS = ("model", "weights", "pretrained", "views", "manifest", "split", "limit", "seed")


class EvaluationError(VideoError):
    """An evaluation that cannot run: conflicting settings in `out`, a missing optional backend."""


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
class _Item:
    """One video to evaluate: its manifest key, where it is, and its ground truth."""

    key: str
    path: str
    label: str | None
    label_index: int | None


@dataclass
class _Decoded:
    """What a decode worker hands back: all views of one video (uint8), or why there are none."""

    item: _Item
    clips: torch.Tensor | None
    padded: int
    decode_s: float
    error: str | None


# =============================================================================================== decoding


def decode_views(path: str | Path, recipe: Recipe, views: Views) -> tuple[torch.Tensor, int]:
    """All K x C views of a video from one decode: `uint8 (K*C, T, 3, h, w)`, clip-major, plus padding.

    A video shorter than the recipe repeats its last frame; the second value counts those frames.
    """
    from forwardlab.video.io import probe, read_views_padded

    temporal, spatial = views
    clips = recipe.sampler(temporal)(probe(path))
    return read_views_padded(path, clips, size=recipe.decode_size, crop=recipe.crop_size, spatial_crops=spatial)


def _decode_item(item: _Item, recipe: Recipe, views: Views) -> _Decoded:
    """Decode one video, catching its failure as a reason (a batch job goes on past bad items)."""
    start = time.perf_counter()
    try:
        clips, padded = decode_views(item.path, recipe, views)
    except VideoDecodeError as exc:
        return _Decoded(item, None, 0, time.perf_counter() - start, exc.reason)
    except Exception as exc:  # PyAV and friends raise many types for odd files; record, don't stop
        return _Decoded(item, None, 0, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    return _Decoded(item, clips, padded, time.perf_counter() - start, None)


class _DecodeDataset:
    """Map-style dataset for torch's DataLoader: index -> one decoded video."""

    def __init__(self, items: Sequence[_Item], recipe: Recipe, views: Views) -> None:
        self.items, self.recipe, self.views = list(items), recipe, views

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> _Decoded:
        return _decode_item(self.items[index], self.recipe, self.views)


def _identity(x: Any) -> Any:
    return x


# =============================================================================================== rows


def _video_row(
    item: _Item,
    probs: torch.Tensor,
    classes: Sequence[str],
    *,
    padded: int,
    decode_s: float,
    model_s: float,
) -> dict[str, Any]:
    """The durable row of an evaluated video from its per-view softmax `(V, num_classes)`."""
    k = min(TOP_K, len(classes))
    video = probs.mean(dim=0)
    scores, top = video.topk(k)
    view_top = probs.topk(k, dim=1).indices.tolist()
    top_list = [int(i) for i in top.tolist()]
    label_index = item.label_index
    return {
        "path": item.key,
        "label": item.label,
        "label_index": label_index,
        "status": "ok",
        "error": None,
        "prediction": classes[top_list[0]],
        "top5_labels": [classes[i] for i in top_list],
        "top5_scores": [float(s) for s in scores.tolist()],
        "correct_top1": None if label_index is None else top_list[0] == label_index,
        "correct_top5": None if label_index is None else label_index in top_list,
        "n_views": int(probs.shape[0]),
        "padded": int(padded),
        "decode_s": float(decode_s),
        "model_s": float(model_s),
        "view_top5": [[int(i) for i in v] for v in view_top],
    }


def _failed_row(item: _Item, error: str, decode_s: float) -> dict[str, Any]:
    return {**_empty_row(item.key, item.label, item.label_index, "failed", error), "decode_s": float(decode_s)}


def _empty_row(key: str, label: str | None, label_index: int | None, status: str, error: str) -> dict[str, Any]:
    return {
        "path": key,
        "label": label,
        "label_index": label_index,
        "status": status,
        "error": error,
        "prediction": None,
        "top5_labels": [],
        "top5_scores": [],
        "correct_top1": None,
        "correct_top5": None,
        "n_views": 0,
        "padded": 0,
        "decode_s": 0.0,
        "model_s": 0.0,
        "view_top5": [],
    }


class _RowLog:
    """Append-only JSON-lines file: a row is durable once `append` returns (flush + fsync).

    A run killed mid-write leaves at most one partial last line; opening the log drops it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        if path.exists():
            data = path.read_bytes()
            end = data.rfind(b"\n") + 1
            for line in data[:end].splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.rows[row["path"]] = row
            if end != len(data):
                with path.open("r+b") as f:
                    f.truncate(end)
        self._file = path.open("ab")

    def append(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row, sort_keys=True).encode() + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.rows[row["path"]] = row

    def close(self) -> None:
        self._file.close()


# =============================================================================================== inference


class _Scorer:
    """Gathers clips of several videos into batches of `batch` clips and emits each video's row when
    its last view has been scored. Holds at most `batch - 1` clips plus one video's views between calls.
    """

    def __init__(
        self, model: torch.nn.Module, recipe: Recipe, classes: Sequence[str], batch: int, device: torch.device
    ) -> None:
        self.model, self.recipe, self.classes, self.batch, self.device = model, recipe, classes, batch, device
        self.queue: deque[tuple[_Open, int]] = deque()

    def add(self, decoded: _Decoded) -> Iterator[dict[str, Any]]:
        assert decoded.clips is not None
        video = _Open(decoded, len(decoded.clips))
        self.queue.extend((video, v) for v in range(len(decoded.clips)))
        while len(self.queue) >= self.batch:
            yield from self._run(self.batch)

    def flush(self) -> Iterator[dict[str, Any]]:
        while self.queue:
            yield from self._run(min(self.batch, len(self.queue)))

    def _run(self, n: int) -> Iterator[dict[str, Any]]:
        import torch

        from forwardlab.video.transforms import to_model_input

        taken = [self.queue.popleft() for _ in range(n)]
        start = time.perf_counter()
        clips = torch.stack([video.decoded.clips[v] for video, v in taken])  # type: ignore[index]
        x = to_model_input(clips, self.recipe.mean, self.recipe.std).to(self.device)
        with torch.inference_mode():
            probs = self.model(x).float().softmax(dim=-1).cpu()
        share = (time.perf_counter() - start) / n
        for (video, v), p in zip(taken, probs, strict=True):
            video.probs[v] = p
            video.model_s += share
        for video, _ in taken:
            if video.complete and not video.emitted:
                video.emitted = True
                d = video.decoded
                d.clips = None  # release the uint8 views as soon as the row exists
                yield _video_row(
                    d.item,
                    torch.stack(video.probs),  # type: ignore[arg-type]
                    self.classes,
                    padded=d.padded,
                    decode_s=d.decode_s,
                    model_s=video.model_s,
                )


class _Open:
    """A video whose views are being scored."""

    def __init__(self, decoded: _Decoded, n_views: int) -> None:
        self.decoded = decoded
        self.probs: list[torch.Tensor | None] = [None] * n_views
        self.model_s = 0.0
        self.emitted = False

    @property
    def complete(self) -> bool:
        return all(p is not None for p in self.probs)


def _device() -> torch.device:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _run_local(
    todo: Sequence[_Item],
    model: torch.nn.Module,
    *,
    recipe: Recipe,
    classes: Sequence[str],
    views: Views,
    batch: int,
    workers: int,
) -> Iterator[dict[str, Any]]:
    """Rows in completion order: decode in `workers` processes, score in this one."""
    from torch.utils.data import DataLoader

    device = _device()
    scorer = _Scorer(model.to(device), recipe, classes, batch, device)
    loader: DataLoader[_Decoded] = DataLoader(
        _DecodeDataset(todo, recipe, views),  # type: ignore[arg-type]
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        collate_fn=_identity,
        prefetch_factor=2 if workers > 0 else None,
        in_order=False,  # a slow video does not hold back the ones decoded after it
    )
    for decoded in loader:
        if decoded.error is not None:
            yield _failed_row(decoded.item, decoded.error, decoded.decode_s)
        else:
            yield from scorer.add(decoded)
    yield from scorer.flush()


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise EvaluationError(
            f"engine='ray' needs Ray Data, which is not installed ({exc}); "
            "install the extra: pip install 'forwardlab[ray]'"
        ) from exc
    return ray


def _ray_decode(batch: dict[str, np.ndarray], *, recipe: Recipe, views: Views) -> dict[str, np.ndarray]:
    """Ray Data decode stage: one video per batch -> its uint8 views (zeros and an error if it failed)."""
    from forwardlab.video.transforms import _hw

    rows: list[_Decoded] = []
    for key, path, label_index in zip(batch["key"], batch["path"], batch["label_index"], strict=True):
        rows.append(_decode_item(_Item(str(key), str(path), None, _opt_int(label_index)), recipe, views))
    ch, cw = _hw(recipe.crop_size)
    blank = np.zeros((views[0] * views[1], recipe.frames_per_clip, 3, ch, cw), dtype=np.uint8)
    return {
        "key": np.array([r.item.key for r in rows], dtype=object),
        "label_index": np.array([-1 if r.item.label_index is None else r.item.label_index for r in rows]),
        "clips": np.stack([blank if r.clips is None else r.clips.numpy() for r in rows]),
        "padded": np.array([r.padded for r in rows]),
        "decode_s": np.array([r.decode_s for r in rows]),
        "error": np.array(["" if r.error is None else r.error for r in rows], dtype=object),
    }


def _opt_int(value: Any) -> int | None:
    return None if value is None or int(value) < 0 else int(value)


class _RayScorer:
    """Ray Data model stage: a callable class, so the model is loaded once per actor.

    The registry entry travels with it (and is registered in the actor), so models registered at run
    time in the driver (our tiny nets, trained folders) load in the actor too.
    """

    def __init__(self, entry: ModelEntry, pretrained: bool, weights: str | None, batch: int) -> None:
        from forwardlab.video.models.catalog import load_model
        from forwardlab.video.models.registry import register

        register(entry)
        device = _device()
        loaded = load_model(entry.name, pretrained=pretrained, weights=weights)
        self.scorer = _Scorer(loaded.model.to(device), entry.recipe, entry.classes, batch, device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        out: list[dict[str, Any]] = []
        for i in range(len(batch["key"])):
            item = _Item(str(batch["key"][i]), "", None, _opt_int(batch["label_index"][i]))
            error, decode_s = str(batch["error"][i]), float(batch["decode_s"][i])
            if error:
                out.append(_failed_row(item, error, decode_s))
                continue
            clips = torch.from_numpy(np.array(batch["clips"][i]))  # a writable copy of Ray's read-only view
            decoded = _Decoded(item, clips, int(batch["padded"][i]), decode_s, None)
            out.extend(self.scorer.add(decoded))
        out.extend(self.scorer.flush())
        return {"row": np.array([json.dumps(r, sort_keys=True) for r in out], dtype=object)}


def _run_ray(
    todo: Sequence[_Item],
    *,
    entry: ModelEntry,
    pretrained: bool,
    weights: Path | None,
    views: Views,
    batch: int,
    workers: int,
    address: str | None,
) -> Iterator[dict[str, Any]]:
    """The same two stages on Ray Data: decode tasks (`workers` at a time) -> one model actor."""
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        if address is not None:
            ray.init(address=address, logging_level="WARNING")
        else:
            # one logical CPU per decode worker plus one for the model actor, as the local engine uses
            ray.init(
                num_cpus=max(1, workers) + 1,
                include_dashboard=False,
                object_store_memory=512 * 2**20,
                logging_level="WARNING",
            )
        started = True
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        items = [
            {
                "key": t.key,
                "path": t.path,
                "label_index": -1 if t.label_index is None else t.label_index,
            }
            for t in todo
        ]
        per_video = views[0] * views[1]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(
            _ray_decode,
            batch_size=1,
            fn_kwargs={"recipe": entry.recipe, "views": views},
            num_cpus=1,
            compute=ray.data.TaskPoolStrategy(size=max(1, workers)),
            batch_format="numpy",
        )
        ds = ds.map_batches(
            _RayScorer,
            batch_size=max(1, batch // per_video),
            fn_constructor_kwargs={
                "entry": entry,
                "pretrained": pretrained,
                "weights": None if weights is None else str(weights),
                "batch": batch,
            },
            num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=1),
            batch_format="numpy",
        )
        labels = {t.key: t.label for t in todo}  # label strings stay here: Ray's columns turn None into NaN
        for row in ds.iter_rows():
            result = json.loads(row["row"])
            result["label"] = labels[result["path"]]
            yield result
    finally:
        if started:
            ray.shutdown()


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
    K clips x C crops per video (default: the model's recipe). `batch` clips go through the model at
    once; `workers` processes decode (0: decode in this process). `engine="ray"` runs on Ray Data
    (`address` of a running cluster, else a small local one). `weights` loads that state-dict file
    instead of the published weights. `progress(done, total)` is called after every video.

    Resumable: rows are durable as they are produced; rerunning with the same `out` (and settings)
    skips the videos already done and ends with the same outputs an uninterrupted run writes.
    Missing, corrupt and undecodable videos are counted and listed with their reasons, never fatal.
    """
    from forwardlab.video.models.catalog import get_entry

    entry = get_entry(model)  # fails first, listing the known names
    recipe = entry.recipe
    k, c = views if views is not None else (recipe.temporal_views, recipe.spatial_views)
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
        _import_ray()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    manifest = open_dataset(data, import_into=out, workers=workers)
    targets, skipped = _select(manifest, split, limit, seed)
    config = {
        "model": model,
        "weights": None if weights is None else str(Path(weights).resolve()),
        "pretrained": bool(pretrained) if weights is None else None,
        "views": [k, c],
        "manifest": str(manifest.path.resolve()),
        "split": split,
        "limit": limit,
        "seed": seed,
    }
    _check_run(out, config)

    class_index = {name: i for i, name in enumerate(entry.classes)}
    items = [
        _Item(r.path, str(manifest.absolute(r)), r.label, class_index.get(r.label) if r.label is not None else None)
        for r in targets
    ]
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
            rows: Iterator[dict[str, Any]]
            if engine == "ray":  # the model is loaded in Ray's actor: its load time counts as run time
                rows = _run_ray(
                    todo,
                    entry=entry,
                    pretrained=pretrained,
                    weights=weights,
                    views=(k, c),
                    batch=batch,
                    workers=workers,
                    address=address,
                )
            else:
                from forwardlab.video.models.catalog import load_model

                loaded = load_model(model, pretrained=pretrained, weights=weights)
                setup_s = time.perf_counter() - started
                started = time.perf_counter()
                rows = _run_local(
                    todo, loaded.model, recipe=recipe, classes=entry.classes, views=(k, c), batch=batch, workers=workers
                )
            for row in rows:
                log.append(row)
                done += 1
                if progress is not None:
                    progress(done, total)
    finally:
        log.close()
    run_s = time.perf_counter() - started

    rows_by_key = {key: row for key, row in log.rows.items() if key in wanted}
    for r in skipped:
        label_index = class_index.get(r.label) if r.label is not None else None
        rows_by_key[r.path] = _empty_row(r.path, r.label, label_index, r.status, r.reason or f"status {r.status}")
    final = [rows_by_key[key] for key in sorted(rows_by_key)]
    timing = {"setup_s": setup_s, "run_s": run_s, "videos_this_run": len(todo), "resumed": resumed}
    return _write_outputs(out, final, entry, (k, c), config, timing, manifest)


# =============================================================================================== outputs


def _metrics(scored: Sequence[dict[str, Any]], index: dict[str, int]) -> dict[str, float | None]:
    """Video level (mean softmax over views) and clip level (each view alone) accuracies."""
    names = ("video_top1", "video_top5", "clip_top1", "clip_top5", "mean_class_accuracy")
    if not scored:
        return dict.fromkeys(names)
    labels = [r["label_index"] for r in scored]
    video_ranked = [_ranking(r, index) for r in scored]
    clip_ranked = [v for r in scored for v in r["view_top5"]]
    clip_labels = [r["label_index"] for r in scored for _ in r["view_top5"]]
    return {
        "video_top1": topk_accuracy(video_ranked, labels, 1),
        "video_top5": topk_accuracy(video_ranked, labels, TOP_K),
        "clip_top1": topk_accuracy(clip_ranked, clip_labels, 1),
        "clip_top5": topk_accuracy(clip_ranked, clip_labels, TOP_K),
        "mean_class_accuracy": mean_class_accuracy(labels, [v[0] for v in video_ranked], len(index)),
    }


def _ranking(row: dict[str, Any], index: dict[str, int]) -> list[int]:
    """A video's top-5 as class indices."""
    return [index[name] for name in row["top5_labels"]]


def _write_outputs(
    out: Path,
    rows: list[dict[str, Any]],
    entry: ModelEntry,
    views: Views,
    config: dict[str, Any],
    timing: dict[str, Any],
    manifest: Manifest,
) -> EvalSummary:
    classes = entry.classes
    index = {name: i for i, name in enumerate(classes)}
    ok = [r for r in rows if r["status"] == "ok"]
    scored = [r for r in ok if r["label_index"] is not None]
    metrics = _metrics(scored, index)

    files = {name: out / file for name, file in OUTPUT_NAMES.items()}
    _write_parquet(files["results"], rows)
    _write_predictions(files["predictions"], ok)
    _write_per_class(files["per_class"], scored, classes)
    _write_confusion(files["confusion"], scored, classes, index)

    status = Counter(r["status"] for r in rows)
    outside = Counter(r["label"] for r in ok if r["label"] is not None and r["label_index"] is None)
    counts = {
        "rows": len(rows),
        "evaluated": status["ok"],
        "failed": status["failed"],
        "missing": status["missing"],
        "corrupt": status["corrupt"],
        "scored": len(scored),
        "label_not_in_model_classes": sum(outside.values()),
        "unlabeled": sum(1 for r in ok if r["label"] is None),
        "padded_videos": sum(1 for r in ok if r["padded"] > 0),
        "clips": sum(r["n_views"] for r in ok),
    }
    decode_s = sum(r["decode_s"] for r in ok)
    model_s = sum(r["model_s"] for r in ok)
    new = timing["videos_this_run"]
    videos_per_s = round(new / timing["run_s"], 3) if new and timing["run_s"] > 0 else None
    summary = {
        "model": entry.name,
        "weights": config["weights"] or ("published" if config["pretrained"] else "random (pretrained=False)"),
        "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(entry.recipe).items()},
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
        "failures": [
            {"path": r["path"], "status": r["status"], "reason": r["error"]} for r in rows if r["status"] != "ok"
        ],
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


def _write_predictions(path: Path, ok: Sequence[dict[str, Any]]) -> None:
    text = _csv_text(
        ("video", "label", "prediction", "top5", "correct"),
        (
            (r["path"], r["label"] or "", r["prediction"], ";".join(r["top5_labels"]), _csv_bool(r["correct_top1"]))
            for r in ok
        ),
    )
    write_text_atomic(path, text)


def _csv_bool(value: bool | None) -> str:
    return "" if value is None else str(bool(value))


def _write_per_class(path: Path, scored: Sequence[dict[str, Any]], classes: Sequence[str]) -> None:
    by_class: dict[int, list[dict[str, Any]]] = {}
    for r in scored:
        by_class.setdefault(r["label_index"], []).append(r)
    lines = []
    for i in sorted(by_class):
        group = by_class[i]
        top1 = sum(bool(r["correct_top1"]) for r in group)
        top5 = sum(bool(r["correct_top5"]) for r in group)
        lines.append((classes[i], i, len(group), top1, _ratio(top1, len(group)), top5, _ratio(top5, len(group))))
    header = ("class", "class_index", "videos", "top1_correct", "top1_accuracy", "top5_correct", "top5_accuracy")
    write_text_atomic(path, _csv_text(header, lines))


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.6f}"


def _write_confusion(
    path: Path, scored: Sequence[dict[str, Any]], classes: Sequence[str], index: dict[str, int]
) -> None:
    """Square counts over the classes that occur as a label or a top-1 prediction, in model order."""
    labels = [r["label_index"] for r in scored]
    predicted = [index[r["prediction"]] for r in scored]
    matrix = confusion_matrix(labels, predicted, len(classes))
    present = sorted(set(labels) | set(predicted))
    lines = [(classes[i], *(int(matrix[i, j]) for j in present)) for i in present]
    write_text_atomic(path, _csv_text(("label \\ prediction", *(classes[j] for j in present)), lines))


def _write_parquet(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise EvaluationError(
            f"writing {path.name} needs pyarrow ({exc}); install the extra: pip install 'forwardlab[video]'"
        ) from exc
    schema = pa.schema(
        [
            ("path", pa.string()),
            ("label", pa.string()),
            ("label_index", pa.int32()),
            ("status", pa.string()),
            ("error", pa.string()),
            ("prediction", pa.string()),
            ("top5_labels", pa.list_(pa.string())),
            ("top5_scores", pa.list_(pa.float64())),
            ("correct_top1", pa.bool_()),
            ("correct_top5", pa.bool_()),
            ("n_views", pa.int32()),
            ("padded", pa.int32()),
            ("decode_s", pa.float64()),
            ("model_s", pa.float64()),
            ("view_top5", pa.list_(pa.list_(pa.int32()))),
        ]
    )
    table = pa.Table.from_pylist([{name: r[name] for name in schema.names} for r in rows], schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


__all__ = [
    "EvalSummary",
    "EvaluationError",
    "confusion_matrix",
    "decode_views",
    "evaluate",
    "mean_class_accuracy",
    "per_class_accuracy",
    "topk_accuracy",
]
