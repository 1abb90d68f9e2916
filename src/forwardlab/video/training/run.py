"""Train or fine-tune any registry model on a dataset in our layout; resumable, seeded, with a model card.

The run, in one picture::

    manifest rows (split `train`, else all) -> labels from the data (sorted) -> model: registry builder,
    optionally its pretrained weights, classifier head replaced when the classes differ (`model`)
      -> frame cache: every clip decoded once, at twice the recipe's frame rate and the recipe's decode
         size, into out/cache/*.npy (worker processes; skipped when it would exceed `cache_limit_gb`,
         then every step decodes its frames instead) (`data`)
      -> each epoch: a seeded shuffle; worker processes cut one augmented clip per video (random
         temporal offset, random resized crop, horizontal flip when the classes allow it), uint8 (`data`)
      -> main process: normalize, AdamW step, linear warm-up then cosine learning rate (per step) (`loop`)
      -> end of epoch: validation (split `val`, if any), metrics.csv rewritten, checkpoint.pt (atomic)
    -> model.pt (state dict) + model_card.json; the cache and the checkpoint are removed.

Determinism and resume: the model is initialised from `seed`; the shuffle of epoch `e` and every clip's
augmentation come from generators seeded with `(seed, e[, index])`, and torch's generator (dropout) is
reseeded at the start of each epoch. So a run killed at any point and started again with the same
arguments resumes from its last checkpoint and ends with the same weights as an uninterrupted run.

Horizontal flips are on only when no class name mentions a direction (`transforms.flip_allowed`);
`flip=True`/`False` overrides the rule.

The folder it writes is a trained model (`models/trained.py`): `catalog.get_entry(str(out))` and
`catalog.load_trained(out)` use it wherever a registry model goes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from forwardlab.download import sha256_file
from forwardlab.fileio import atomic_path, write_text_atomic
from forwardlab.video.data.folder import open_dataset
from forwardlab.video.data.manifest import MANIFEST_NAME, ClipRecord, Manifest
from forwardlab.video.errors import DatasetError, TrainError
from forwardlab.video.models.catalog import get_entry
from forwardlab.video.models.registry import ModelEntry, Recipe
from forwardlab.video.models.trained import CARD_FORMAT, CARD_NAME, CARD_VERSION, MODEL_NAME, recipe_to_card
from forwardlab.video.training.data import (
    TrainClip,
    cache_bytes,
    fill_cache,
    make_clips,
    train_loader,
    val_loader,
)
from forwardlab.video.training.loop import make_optimizer, make_scheduler, train_epoch, validate
from forwardlab.video.training.model import PreparedModel, prepare_model
from forwardlab.video.transforms import CROP_RATIO, CROP_SCALE, flip_allowed

Progress = Callable[[int, int], None]

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.csv"
CACHE_DIR = "cache"
# Settings that must match for a run to resume from a checkpoint.
_RESUME_KEYS = (
    "model",
    "from_pretrained",
    "manifest",
    "split",
    "val_split",
    "classes",
    "epochs",
    "batch",
    "lr",
    "weight_decay",
    "warmup_epochs",
    "seed",
    "flip",
    "cached",
)


@dataclass(frozen=True)
class TrainResult:
    """What `train` produced: where the files are, the classes, and each epoch's metrics."""

    out: Path
    model_path: Path
    card_path: Path
    metrics_path: Path
    classes: tuple[str, ...]
    history: list[dict[str, float]]
    resumed_from_epoch: int
    seconds: float
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def train(
    data: str | Path | Manifest,
    model: str,
    *,
    out: str | Path,
    from_pretrained: bool = False,
    epochs: int = 10,
    batch: int = 16,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    warmup_epochs: float = 1.0,
    workers: int = 2,
    seed: int = 0,
    split: str | None = None,
    val_split: str | None = "auto",
    classes: Sequence[str] | None = None,
    flip: bool | None = None,
    cache: bool | None = None,
    cache_limit_gb: float = 4.0,
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train registry model `model` on the labelled, downloaded clips of `data`; write the result to `out`.

    `data`: a manifest, a folder holding `manifest.sqlite`, or a class-folder dataset (indexed into
    `out/manifest.sqlite`). `split`: the rows to train on (default `train` if the manifest has it, else
    all); `val_split`: validated after every epoch (`"auto"`: `val` when present; None: no validation).
    `classes`: the label order of the outputs (default: sorted labels of the training rows; with
    `from_pretrained` and exactly the published classes, the published order, so the head is kept).
    `flip`: None applies the direction rule (module docstring). `cache`: None caches decoded frames when
    they fit in `cache_limit_gb`; they go to `out/cache` (removed at the end) unless `cache_dir` names a
    folder to keep them in (runs on the same data and recipe then share it). `warmup_epochs` of linear
    warm-up, then cosine decay, per step. `progress(done, total)` after every step; `on_epoch(metrics)`
    after every epoch.

    `threads`: torch's compute threads during the run (default: the CPUs left over by the `workers`, at least
    one; OpenMP threads that spin on a CPU shared with data workers made steps ten times slower here).

    Resumable: rerun with the same arguments into the same `out` after a kill.
    """
    with _torch_threads(compute_threads(threads, workers)):
        started = time.perf_counter()
        entry = get_entry(model)  # an unknown name fails first, listing the known ones
        _check_settings(
            epochs=epochs, batch=batch, lr=lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs, workers=workers
        )
        out = Path(out)
        _check_out(out, overwrite)
        out.mkdir(parents=True, exist_ok=True)

        manifest = open_dataset(data, import_into=out, workers=workers)
        chosen = _choose_data(manifest, entry, split, val_split, classes, from_pretrained=from_pretrained)
        recipe = entry.recipe
        use_flip = flip_allowed(chosen.classes) if flip is None else flip
        use_cache = (
            cache
            if cache is not None
            else cache_bytes(chosen.train_rows + chosen.val_rows, recipe) <= cache_limit_gb * 2**30
        )
        cache_root = Path(cache_dir) if cache_dir is not None else out / CACHE_DIR
        config: dict[str, Any] = {
            "model": model,
            "from_pretrained": from_pretrained,
            "manifest": str(manifest.path.resolve()),
            "split": chosen.split,
            "val_split": chosen.val_split,
            "classes": list(chosen.classes),
            "epochs": epochs,
            "batch": batch,
            "lr": lr,
            "weight_decay": weight_decay,
            "warmup_epochs": warmup_epochs,
            "seed": seed,
            "flip": use_flip,
            "cached": use_cache,
        }
        clips = _make_clips(manifest, chosen, recipe, cache_root if use_cache else None, workers)

        prepared = prepare_model(model, chosen.classes, from_pretrained=from_pretrained, seed=seed)
        run = _Training(prepared.model, clips, recipe, config, out, workers=workers)
        history, start_epoch = run.resume()
        run.run_epochs(history, start_epoch, progress, on_epoch)

        model_path = out / MODEL_NAME
        with atomic_path(model_path) as tmp:
            torch.save(run.net.state_dict(), tmp)
        card = _card(config, recipe, prepared, manifest, clips, run.total_steps, history, model_path)
        write_text_atomic(out / CARD_NAME, json.dumps(card, indent=2) + "\n")
        run.checkpoint.unlink(missing_ok=True)
        if cache_dir is None:
            shutil.rmtree(cache_root, ignore_errors=True)
        return TrainResult(
            out=out,
            model_path=model_path,
            card_path=out / CARD_NAME,
            metrics_path=out / METRICS_NAME,
            classes=chosen.classes,
            history=history,
            resumed_from_epoch=start_epoch,
            seconds=time.perf_counter() - started,
            failed=clips.failed,
        )


# =============================================================================================== checks


def compute_threads(threads: int | None, workers: int) -> int:
    """`threads` if given, else the CPUs this process may use minus the data workers (at least 1)."""
    if threads is not None:
        if threads < 1:
            raise TrainError(f"threads must be >= 1, got {threads}")
        return threads
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus - workers)


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run the block with torch using `n` compute threads; the previous count is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_settings(
    *, epochs: int, batch: int, lr: float, weight_decay: float, warmup_epochs: float, workers: int
) -> None:
    if epochs < 1:
        raise TrainError(f"epochs must be >= 1, got {epochs}")
    if batch < 1:
        raise TrainError(f"batch must be >= 1, got {batch}")
    if lr <= 0 or weight_decay < 0 or warmup_epochs < 0:
        raise TrainError(
            f"need lr > 0, weight_decay >= 0, warmup_epochs >= 0 (got {lr}, {weight_decay}, {warmup_epochs})"
        )
    if workers < 0:
        raise TrainError(f"workers must be >= 0, got {workers}")


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse a folder holding a finished model or unrelated files (a checkpoint means: resume)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise TrainError(f"{out}: exists and is not a folder")
    if overwrite:
        for name in (MODEL_NAME, CARD_NAME, CHECKPOINT_NAME, METRICS_NAME):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / CACHE_DIR, ignore_errors=True)
        return
    if (out / CARD_NAME).exists():
        raise TrainError(
            f"{out}: already holds a trained model ({CARD_NAME}); choose another --out, or --overwrite to replace it"
        )
    ours = {CHECKPOINT_NAME, METRICS_NAME, CACHE_DIR, MANIFEST_NAME, f"{MANIFEST_NAME}-wal", f"{MANIFEST_NAME}-shm"}
    others = sorted(p.name for p in out.iterdir() if p.name not in ours and not p.name.startswith("."))
    if others and not (out / CHECKPOINT_NAME).exists():
        shown = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
        raise TrainError(
            f"{out}: exists and is not empty ({shown}) and holds no training checkpoint to resume; "
            "choose a new or empty --out, or --overwrite"
        )


# =============================================================================================== data


@dataclass(frozen=True)
class _Chosen:
    """The rows a run trains and validates on, and its classes in output order."""

    split: str | None
    val_split: str | None
    train_rows: list[ClipRecord]
    val_rows: list[ClipRecord]
    classes: tuple[str, ...]


def _usable(manifest: Manifest, split: str | None) -> list[ClipRecord]:
    rows = manifest.records(split=split)
    return [r for r in rows if r.status == "downloaded" and r.label]


def _choose_splits(manifest: Manifest, split: str | None, val_split: str | None) -> tuple[str | None, str | None]:
    """Default: train on `train` and validate on `val` when the manifest has them, else train on all."""
    splits = set(manifest.counts())
    if split is None:
        split = "train" if "train" in splits else None
    if val_split == "auto":
        val_split = "val" if "val" in splits and split is not None and split != "val" else None
    if split is not None and split not in splits:
        known = ", ".join(sorted(splits)) or "none"
        raise DatasetError(f"{manifest.path}: no split {split!r} (splits: {known})")
    if val_split is not None and val_split not in splits:
        raise DatasetError(f"{manifest.path}: no validation split {val_split!r} (splits: {', '.join(sorted(splits))})")
    return split, val_split


def _choose_data(
    manifest: Manifest,
    entry: ModelEntry,
    split: str | None,
    val_split: str | None,
    classes: Sequence[str] | None,
    *,
    from_pretrained: bool,
) -> _Chosen:
    """The splits, their usable rows and the classes (see `train`); clear errors for data that cannot train."""
    split, val_split = _choose_splits(manifest, split, val_split)
    where = f" in split {split!r}" if split else ""
    train_rows = _usable(manifest, split)
    if not train_rows:
        raise DatasetError(f"{manifest.path}: the dataset is empty: no labelled, downloaded clips{where} to train on")
    found = sorted({r.label for r in train_rows if r.label})
    if classes is None:
        classes = entry.classes if from_pretrained and set(found) == set(entry.classes) else found
    classes = tuple(classes)
    if len(classes) < 2:
        raise DatasetError(
            f"{manifest.path}: only one class ({classes[0]!r}){where}; a classifier needs at least two classes"
        )
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise TrainError(f"labels {', '.join(unknown)} are in the data but not in classes={list(classes)}")
    val_rows = [r for r in _usable(manifest, val_split) if r.label in classes] if val_split else []
    return _Chosen(split, val_split, train_rows, val_rows, classes)


@dataclass(frozen=True)
class _Clips:
    """The clips a run uses (those that could not be cached left out) and why each left-out one failed."""

    train: list[TrainClip]
    val: list[TrainClip]
    failed: dict[str, str]


def _make_clips(manifest: Manifest, chosen: _Chosen, recipe: Recipe, cache_root: Path | None, workers: int) -> _Clips:
    """The chosen rows as clips; with a `cache_root`, every clip decoded into the cache first."""
    train_clips = make_clips(manifest, chosen.train_rows, chosen.classes, recipe, cache_root)
    val_clips = make_clips(manifest, chosen.val_rows, chosen.classes, recipe, cache_root)
    if cache_root is None:
        return _Clips(train_clips, val_clips, {})
    failed = fill_cache(train_clips + val_clips, recipe, workers)
    train_clips = [c for c in train_clips if c.key not in failed]
    val_clips = [c for c in val_clips if c.key not in failed]
    if len({c.label for c in train_clips}) < 2:
        reasons = "; ".join(f"{k}: {v}" for k, v in list(failed.items())[:3])
        raise DatasetError(f"{manifest.path}: too few clips could be decoded to train on ({reasons})")
    return _Clips(train_clips, val_clips, failed)


# =============================================================================================== epochs


class _Training:
    """The epochs of one run: the network, its optimizer and schedule, the loaders, and where it checkpoints.

    Every setting comes from the run's `config`, which a checkpoint must match to be resumed.
    """

    def __init__(
        self, net: nn.Module, clips: _Clips, recipe: Recipe, config: dict[str, Any], out: Path, *, workers: int
    ) -> None:
        self.net, self.recipe, self.config, self.out = net, recipe, config, out
        self.seed, self.epochs, self.num_classes = config["seed"], config["epochs"], len(config["classes"])
        batch = config["batch"]
        self.loader, self.sampler = train_loader(
            clips.train, recipe, batch=batch, workers=workers, flip=config["flip"], seed=self.seed
        )
        self.val_loader = (
            val_loader(clips.val, recipe, batch=batch, workers=0 if config["cached"] else workers, seed=self.seed)
            if clips.val
            else None
        )
        self.optimizer = make_optimizer(net, config["lr"], config["weight_decay"])
        self.steps_per_epoch = len(self.loader)
        self.total_steps = self.steps_per_epoch * self.epochs
        warmup_steps = round(config["warmup_epochs"] * self.steps_per_epoch)
        self.scheduler = make_scheduler(self.optimizer, self.total_steps, warmup_steps)
        self.checkpoint = out / CHECKPOINT_NAME

    def resume(self) -> tuple[list[dict[str, float]], int]:
        """(history, epochs done) from the checkpoint, its state loaded; ([], 0) without one."""
        if not self.checkpoint.is_file():
            return [], 0
        state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        previous = state["config"]
        differ = [k for k in _RESUME_KEYS if previous.get(k) != self.config.get(k)]
        if differ:
            shown = "; ".join(f"{k}: {previous.get(k)!r} there, {self.config.get(k)!r} now" for k in differ)
            raise TrainError(
                f"{self.out}: holds a checkpoint of a run with other settings ({shown}); "
                "use another --out, or --overwrite to start over"
            )
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        return list(state["history"]), int(state["epoch"])

    def run_epochs(
        self,
        history: list[dict[str, float]],
        start_epoch: int,
        progress: Progress | None,
        on_epoch: Callable[[dict[str, float]], None] | None,
    ) -> None:
        """Epochs `start_epoch` to the last, each appended to `history`, written to metrics.csv and checkpointed."""
        if progress is not None:
            progress(start_epoch * self.steps_per_epoch, self.total_steps)
        for epoch in range(start_epoch, self.epochs):
            row = self.epoch(epoch, progress)
            history.append(row)
            _write_metrics(self.out / METRICS_NAME, history)
            self.save(epoch + 1, history)
            if on_epoch is not None:
                on_epoch(row)

    def epoch(self, epoch: int, progress: Progress | None) -> dict[str, float]:
        """Train one epoch (then validate): its metrics row."""
        epoch_start = time.perf_counter()
        self.sampler.epoch = epoch
        torch.manual_seed(self.seed * 100_003 + epoch)  # dropout and anything else drawing from torch

        def on_step(step: int) -> None:
            if progress is not None:
                progress(epoch * self.steps_per_epoch + step, self.total_steps)

        train_loss, train_top1 = train_epoch(
            self.net, self.loader, self.optimizer, self.scheduler, self.recipe, on_step
        )
        row: dict[str, float] = {
            "epoch": epoch + 1,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": train_loss,
            "train_top1": train_top1,
        }
        if self.val_loader is not None:
            val_loss, val_top1, val_top5 = validate(self.net, self.val_loader, self.recipe, self.num_classes)
            row.update(val_loss=val_loss, val_top1=val_top1, val_top5=val_top5)
        row["seconds"] = time.perf_counter() - epoch_start
        return row

    def save(self, epochs_done: int, history: list[dict[str, float]]) -> None:
        """The checkpoint a killed run resumes from (atomic)."""
        state = {
            "epoch": epochs_done,
            "config": self.config,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": history,
        }
        with atomic_path(self.checkpoint) as tmp:
            torch.save(state, tmp)


def _write_metrics(path: Path, history: Sequence[dict[str, float]]) -> None:
    columns = list(history[0]) if history else ["epoch"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, buffer.getvalue())


# =============================================================================================== model card


def _card(
    config: dict[str, Any],
    recipe: Recipe,
    prepared: PreparedModel,
    manifest: Manifest,
    clips: _Clips,
    total_steps: int,
    history: list[dict[str, float]],
    model_path: Path,
) -> dict[str, Any]:
    """The model card: how the model was made and how it did (`models/trained.py` reads it back)."""
    classes = config["classes"]
    per_class = Counter(classes[c.label] for c in clips.train)
    return {
        "format": CARD_FORMAT,
        "format_version": CARD_VERSION,
        "base_model": config["model"],
        "classes": list(classes),
        "recipe": recipe_to_card(recipe),
        "weights": {"file": MODEL_NAME, "sha256": sha256_file(model_path)},
        "init": {
            "from_pretrained": config["from_pretrained"],
            "pretrained_weights": str(prepared.pretrained_weights) if prepared.pretrained_weights else None,
            "head_replaced": prepared.head_replaced,
            "head_classes_kept": list(prepared.head_classes_kept),
        },
        "data": {
            "manifest": config["manifest"],
            "root": str(manifest.root),
            "split": config["split"],
            "val_split": config["val_split"],
            "train_clips": len(clips.train),
            "val_clips": len(clips.val),
            "train_clips_per_class": {c: per_class.get(c, 0) for c in classes},
            "failed": clips.failed,
        },
        "training": {
            "epochs": config["epochs"],
            "batch": config["batch"],
            "optimizer": "AdamW",
            "lr": config["lr"],
            "weight_decay": config["weight_decay"],
            "schedule": "linear warm-up then cosine decay to 0, per step",
            "warmup_epochs": config["warmup_epochs"],
            "steps": total_steps,
            "seed": config["seed"],
            "augmentation": {
                "temporal": "random offset of the clip inside the video",
                "spatial": f"random resized crop, area {list(CROP_SCALE)}, aspect x{list(CROP_RATIO)}",
                "horizontal_flip": config["flip"],
            },
            "frame_cache": config["cached"],
            "seconds": round(sum(row["seconds"] for row in history), 1),  # summed over epochs, resumes included
        },
        "metrics": history[-1] if history else {},
        "history": history,
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    import torchvision

    from forwardlab import __version__

    versions = {
        "forwardlab": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
    }
    try:
        import av

        versions["av"] = av.__version__
    except ImportError:  # pragma: no cover - av is part of the video extra
        pass
    return versions


__all__ = ["CACHE_DIR", "CHECKPOINT_NAME", "METRICS_NAME", "TrainResult", "compute_threads", "train"]
