"""Train or fine-tune any registry model on a dataset in our layout; resumable, seeded, with a model card.

The run, in one picture::

    manifest rows (split `train`, else all) -> labels from the data (sorted) -> model: registry builder,
    optionally its pretrained weights, classifier head replaced when the classes differ
      -> frame cache: every clip decoded once, at twice the recipe's frame rate and the recipe's decode
         size, into out/cache/*.npy (worker processes; skipped when it would exceed `cache_limit_gb`,
         then every step decodes its frames instead)
      -> each epoch: a seeded shuffle; worker processes cut one augmented clip per video (random
         temporal offset, random resized crop, horizontal flip when the classes allow it), uint8
      -> main process: normalize, AdamW step, linear warm-up then cosine learning rate (per step)
      -> end of epoch: validation (split `val`, if any), metrics.csv rewritten, checkpoint.pt (atomic)
    -> model.pt (state dict) + model_card.json; the cache and the checkpoint are removed.

Determinism and resume: the model is initialised from `seed`; the shuffle of epoch `e` and every clip's
augmentation come from generators seeded with `(seed, e[, index])`, and torch's generator (dropout) is
reseeded at the start of each epoch. So a run killed at any point and started again with the same
arguments resumes from its last checkpoint and ends with the same weights as an uninterrupted run.

Horizontal flips: a mirrored clip of "moving left" is a clip of "moving right". Flipping is therefore on
only when no class name mentions a direction (`left`, `right`, `clockwise`, anywhere in the name, case
ignored, so `counterclockwise` and `rightward` count; a false alarm such as `bright` only costs the
augmentation). `flip=True`/`False` overrides the rule.

A trained model folder (`model.pt` + `model_card.json`) is usable wherever a registry model is:
`load_trained(path)` returns a `LoadedModel` for `predict`; `trained_entry(path)` builds its registry
entry (the base model's builder and recipe, the card's classes), and `register_trained(path)` adds it
to the registry under the path so `evaluate(data, str(path))` works.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import platform
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from forwardlab.download import sha256_file
from forwardlab.fileio import atomic_path, write_text_atomic
from forwardlab.video.data.folder import open_dataset
from forwardlab.video.data.manifest import MANIFEST_NAME, ClipRecord, Manifest
from forwardlab.video.errors import DatasetError, VideoDecodeError, VideoError
from forwardlab.video.models.registry import (
    REGISTRY,
    LoadedModel,
    ModelEntry,
    ModelError,
    Recipe,
    Weights,
    get_entry,
    load_model,
    register,
)

if TYPE_CHECKING:
    from forwardlab.video.io import VideoInfo

Progress = Callable[[int, int], None]

MODEL_NAME = "model.pt"
CARD_NAME = "model_card.json"
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.csv"
CACHE_DIR = "cache"
CARD_FORMAT = "forwardlab-trained-model"
CARD_VERSION = 1

# Class names that make a horizontal flip change the label (see the module docstring).
DIRECTION_WORDS = re.compile(r"left|right|clockwise", re.IGNORECASE)
# Random resized crop: the share of the frame's area kept, and the aspect jitter around the crop's own.
CROP_SCALE = (0.6, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
# The cache holds frames at this multiple of the recipe's rate, so temporal offsets are finer than a step.
CACHE_RATE_FACTOR = 2
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


class TrainError(VideoError):
    """A training run that cannot start: bad data, a bad setting, an output folder already used."""


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


# =============================================================================================== model


def flip_allowed(classes: Sequence[str]) -> bool:
    """True when no class name suggests a left/right or rotation direction (see the module docstring)."""
    return not any(DIRECTION_WORDS.search(name) for name in classes)


def find_head(model: nn.Module, num_classes: int) -> tuple[str, nn.Module]:
    """The classifier: the last `Linear` or `Conv3d` (in registration order) producing `num_classes`."""
    found: tuple[str, nn.Module] | None = None
    for name, module in model.named_modules():
        if (isinstance(module, nn.Linear) and module.out_features == num_classes) or (
            isinstance(module, nn.Conv3d) and module.out_channels == num_classes
        ):
            found = (name, module)
    if found is None:
        raise ModelError(f"{type(model).__name__}: no Linear or Conv3d layer with {num_classes} outputs to replace")
    return found


def replace_head(
    model: nn.Module, old_classes: Sequence[str], new_classes: Sequence[str], *, seed: int = 0
) -> list[str]:
    """Swap the classifier for one with `len(new_classes)` outputs; the rest of the network is untouched.

    Rows of classes the old head already knew (same name) are copied from it; the others start from the
    layer's default initialisation, drawn with `seed`. Returns the classes that were carried over.
    """
    name, old = find_head(model, len(old_classes))
    generator_state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        new: nn.Module
        if isinstance(old, nn.Linear):
            new = nn.Linear(old.in_features, len(new_classes), bias=old.bias is not None)
        else:
            assert isinstance(old, nn.Conv3d)
            new = nn.Conv3d(
                old.in_channels,
                len(new_classes),
                old.kernel_size,  # type: ignore[arg-type]
                stride=old.stride,  # type: ignore[arg-type]
                padding=old.padding,  # type: ignore[arg-type]
                bias=old.bias is not None,
            )
    finally:
        torch.set_rng_state(generator_state)
    index = {c: i for i, c in enumerate(old_classes)}
    kept = [c for c in new_classes if c in index]
    with torch.no_grad():
        for row, c in enumerate(new_classes):
            if c in index:
                new.weight[row] = old.weight[index[c]]
                if new.bias is not None and old.bias is not None:
                    new.bias[row] = old.bias[index[c]]
    new.to(dtype=old.weight.dtype)
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)
    return kept


@dataclass(frozen=True)
class PreparedModel:
    """A model ready to train: the network, the classes its outputs mean, and how it got there."""

    model: nn.Module
    entry: ModelEntry
    classes: tuple[str, ...]
    pretrained_weights: Path | None
    head_replaced: bool
    head_classes_kept: tuple[str, ...]


def prepare_model(name: str, classes: Sequence[str], *, from_pretrained: bool = False, seed: int = 0) -> PreparedModel:
    """Build registry model `name` for `classes`, from its pretrained weights if asked.

    From scratch the network gets `len(classes)` outputs directly. From pretrained weights it is built
    as published, loaded, and its head replaced when `classes` differ from the published ones.
    """
    entry = get_entry(name)
    classes = tuple(classes)
    torch.manual_seed(seed)
    if not from_pretrained:
        return PreparedModel(entry.builder(len(classes)), entry, classes, None, False, ())
    loaded = load_model(name, pretrained=True)
    model = loaded.model
    if classes == entry.classes:
        return PreparedModel(model, entry, classes, loaded.weights_path, False, classes)
    kept = replace_head(model, entry.classes, classes, seed=seed)
    return PreparedModel(model, entry, classes, loaded.weights_path, True, tuple(kept))


# =============================================================================================== data


@dataclass(frozen=True)
class _Clip:
    """One training or validation video: where it is, its class index, and its cache file."""

    key: str
    path: str
    label: int
    cache: str | None


def _cache_timestamps(path: str, recipe: Recipe) -> list[Any]:
    """Every frame time at CACHE_RATE_FACTOR x the recipe's rate, over the whole video."""
    from fractions import Fraction

    from forwardlab.video.io import probe
    from forwardlab.video.sampling import _first_last, _frac

    info = probe(path)
    first, last = _first_last(info)
    step = 1 / (_frac(recipe.fps) * CACHE_RATE_FACTOR)
    n = int((last - first) / step) + 1
    return [first + Fraction(k) * step for k in range(max(1, n))]


def _write_cache(clip: _Clip, recipe: Recipe) -> str | None:
    """Decode one video into its cache file (atomic); the reason when it cannot be decoded."""
    from forwardlab.video.io import read_frames

    assert clip.cache is not None
    target = Path(clip.cache)
    if target.is_file():
        return None
    try:
        frames = read_frames(clip.path, _cache_timestamps(clip.path, recipe), size=recipe.decode_size).data
    except VideoDecodeError as exc:
        return exc.reason
    except Exception as exc:  # PyAV raises many types for odd files: record, go on
        return f"{type(exc).__name__}: {exc}"
    with atomic_path(target) as tmp, tmp.open("wb") as f:
        np.save(f, frames.numpy())
    return None


class _CacheJob:
    """Map-style dataset whose items fill the cache: index -> (key, failure reason or None)."""

    def __init__(self, clips: Sequence[_Clip], recipe: Recipe) -> None:
        self.clips, self.recipe = list(clips), recipe

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[str, str | None]:
        return self.clips[index].key, _write_cache(self.clips[index], self.recipe)


def _first(x: Any) -> Any:
    return x[0]


def _random_resized_crop(
    rng: np.random.Generator, height: int, width: int, target: tuple[int, int]
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a crop covering CROP_SCALE of the area, aspect near the target's."""
    area = height * width
    base = target[1] / target[0]
    for _ in range(10):
        scale = rng.uniform(*CROP_SCALE)
        ratio = base * math.exp(rng.uniform(math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])))
        w = round(math.sqrt(area * scale * ratio))
        h = round(math.sqrt(area * scale / ratio))
        if 0 < h <= height and 0 < w <= width:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return 0, 0, height, width


class _ClipData:
    """Map-style dataset: `(epoch, index)` -> (`uint8 (T, C, h, w)` clip, label).

    `train=True` draws the random temporal offset, crop and flip from `(seed, epoch, index)`, so the
    clip does not depend on which worker makes it; `train=False` gives the centred clip, centre crop
    (the evaluation recipe with one view).
    """

    def __init__(self, clips: Sequence[_Clip], recipe: Recipe, *, train: bool, flip: bool, seed: int) -> None:
        self.clips, self.recipe, self.train, self.flip, self.seed = list(clips), recipe, train, flip, seed
        self._infos: dict[str, VideoInfo] = {}  # probes of this process (a persistent worker keeps its own)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int] | None:
        """The clip, or None when it cannot be decoded (only without the cache, which filters those out)."""
        epoch, index = key
        clip = self.clips[index]
        rng = np.random.default_rng([self.seed, epoch, index])
        try:
            frames = self._frames(clip, rng)
        except VideoDecodeError:
            if clip.cache is not None:
                raise
            return None
        return self._spatial(frames, rng), clip.label

    def _frames(self, clip: _Clip, rng: np.random.Generator) -> torch.Tensor:
        t = self.recipe.frames_per_clip
        if clip.cache is not None:
            cached = np.load(clip.cache, mmap_mode="r")
            span = CACHE_RATE_FACTOR * (t - 1)
            room = max(0, len(cached) - 1 - span)
            start = int(rng.integers(0, room + 1)) if self.train else room // 2
            idx = np.minimum(start + CACHE_RATE_FACTOR * np.arange(t), len(cached) - 1)
            return torch.from_numpy(np.ascontiguousarray(cached[idx]))
        from fractions import Fraction

        from forwardlab.video.io import probe, read_frames
        from forwardlab.video.sampling import _first_last, clip_timestamps, multiview_timestamps

        info = self._infos.get(clip.path)
        if info is None:  # without the cache: probe each video once, not at every epoch
            info = self._infos[clip.path] = probe(clip.path)
        if self.train:
            first, last = _first_last(info)
            room_s = max(Fraction(0), last - first - Fraction(t - 1) / Fraction(self.recipe.fps).limit_denominator())
            start_s = first + room_s * Fraction(float(rng.random())).limit_denominator(10_000)
            stamps = clip_timestamps(info, t, self.recipe.fps, start_s)
        else:
            stamps = multiview_timestamps(info, 1, t, self.recipe.fps)[0]
        return read_frames(clip.path, stamps, size=self.recipe.decode_size).data

    def _spatial(self, frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        from forwardlab.video.transforms import _hw, resize, spatial_crops

        frames = resize(frames, self.recipe.resize_size, antialias=self.recipe.antialias)
        crop = _hw(self.recipe.crop_size)
        if not self.train:
            return spatial_crops(frames, crop, 1)[0].contiguous()
        h, w = frames.shape[-2:]
        top, left, ch, cw = _random_resized_crop(rng, h, w, crop)
        out = resize(frames[..., top : top + ch, left : left + cw], crop)
        if self.flip and rng.random() < 0.5:
            out = out.flip(-1)
        return out.contiguous()


class _EpochSampler:
    """Yields `(epoch, index)` in the epoch's seeded order; the epoch is set by the training loop."""

    def __init__(self, n: int, seed: int, *, shuffle: bool) -> None:
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle else range(self.n)
        for i in order:
            yield self.epoch, int(i)


def _collate(items: Sequence[tuple[torch.Tensor, int] | None]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Stack a batch, leaving out clips that could not be decoded; None when none could."""
    kept = [item for item in items if item is not None]
    if not kept:
        return None
    return torch.stack([c for c, _ in kept]), torch.tensor([y for _, y in kept], dtype=torch.long)


# =============================================================================================== schedule


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up from 1/warmup to 1 over `warmup_steps`, then cosine decay to 0 at `total_steps`."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; weight decay on weight matrices and kernels only, not on biases or norm parameters."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr)


# =============================================================================================== the run


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


def _cache_bytes(records: Sequence[ClipRecord], recipe: Recipe) -> float:
    size = recipe.decode_size
    total = 0.0
    for r in records:
        if isinstance(size, int):
            w, h = r.width or size, r.height or size
            scale = size / max(1, min(w, h))
            pixels = w * scale * h * scale
        else:
            pixels = size[0] * size[1]
        total += (r.duration_s or 10.0) * recipe.fps * CACHE_RATE_FACTOR * 3 * pixels
    return total


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


def _write_metrics(path: Path, history: Sequence[dict[str, float]]) -> None:
    columns = list(history[0]) if history else ["epoch"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, buffer.getvalue())


def _evaluate(model: nn.Module, loader: Any, recipe: Recipe, num_classes: int) -> tuple[float, float, float]:
    """(loss, top-1, top-5) of the centred clip of every validation video."""
    from forwardlab.video.transforms import to_model_input

    model.eval()
    losses, seen, top1, top5 = 0.0, 0, 0, 0
    k = min(5, num_classes)
    with torch.inference_mode():
        for batch_data in loader:
            if batch_data is None:
                continue
            clips, y = batch_data
            logits = model(to_model_input(clips, recipe.mean, recipe.std))
            losses += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            ranked = logits.topk(k, dim=1).indices
            top1 += int((ranked[:, 0] == y).sum())
            top5 += int((ranked == y[:, None]).any(dim=1).sum())
            seen += len(y)
    n = max(1, seen)
    return losses / n, top1 / n, top5 / n


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
        get_entry(model)  # an unknown name fails first, listing the known ones
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
        out = Path(out)
        _check_out(out, overwrite)
        out.mkdir(parents=True, exist_ok=True)

        manifest = open_dataset(data, import_into=out, workers=workers)
        split, val_split = _choose_splits(manifest, split, val_split)
        where = f" in split {split!r}" if split else ""
        train_rows = _usable(manifest, split)
        if not train_rows:
            raise DatasetError(
                f"{manifest.path}: the dataset is empty: no labelled, downloaded clips{where} to train on"
            )
        found = sorted({r.label for r in train_rows if r.label})
        if classes is None:
            entry = get_entry(model)
            classes = entry.classes if from_pretrained and set(found) == set(entry.classes) else found
        classes = tuple(classes)
        if len(classes) < 2:
            raise DatasetError(
                f"{manifest.path}: only one class ({classes[0]!r}){where}; a classifier needs at least two classes"
            )
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise TrainError(f"labels {', '.join(unknown)} are in the data but not in classes={list(classes)}")
        index = {c: i for i, c in enumerate(classes)}
        val_rows = [r for r in _usable(manifest, val_split) if r.label in index] if val_split else []

        recipe = get_entry(model).recipe
        use_flip = flip_allowed(classes) if flip is None else flip
        use_cache = (
            cache if cache is not None else _cache_bytes(train_rows + val_rows, recipe) <= cache_limit_gb * 2**30
        )
        keep_cache = cache_dir is not None
        cache_root = Path(cache_dir) if cache_dir is not None else out / CACHE_DIR
        cache_tag = f"{recipe.decode_size}@{recipe.fps * CACHE_RATE_FACTOR:g}"

        def clip(r: ClipRecord) -> _Clip:
            # the cache file depends on the video and on the decoded size and rate
            key = hashlib.sha1(f"{manifest.absolute(r)}|{cache_tag}".encode()).hexdigest()[:16]
            assert r.label is not None
            return _Clip(
                r.path, str(manifest.absolute(r)), index[r.label], str(cache_root / f"{key}.npy") if use_cache else None
            )

        train_clips, val_clips = [clip(r) for r in train_rows], [clip(r) for r in val_rows]
        config: dict[str, Any] = {
            "model": model,
            "from_pretrained": from_pretrained,
            "manifest": str(manifest.path.resolve()),
            "split": split,
            "val_split": val_split,
            "classes": list(classes),
            "epochs": epochs,
            "batch": batch,
            "lr": lr,
            "weight_decay": weight_decay,
            "warmup_epochs": warmup_epochs,
            "seed": seed,
            "flip": use_flip,
            "cached": use_cache,
        }

        failed: dict[str, str] = {}
        if use_cache:
            failed = _fill_cache(train_clips + val_clips, recipe, workers)
            train_clips = [c for c in train_clips if c.key not in failed]
            val_clips = [c for c in val_clips if c.key not in failed]
            if len({c.label for c in train_clips}) < 2:
                reasons = "; ".join(f"{k}: {v}" for k, v in list(failed.items())[:3])
                raise DatasetError(f"{manifest.path}: too few clips could be decoded to train on ({reasons})")

        prepared = prepare_model(model, classes, from_pretrained=from_pretrained, seed=seed)
        net = prepared.model
        optimizer = _optimizer(net, lr, weight_decay)
        drop_last = len(train_clips) > batch
        steps_per_epoch = len(train_clips) // batch if drop_last else 1
        total_steps = steps_per_epoch * epochs
        warmup_steps = round(warmup_epochs * steps_per_epoch)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total_steps, warmup_steps))

        history: list[dict[str, float]] = []
        start_epoch = 0
        checkpoint = out / CHECKPOINT_NAME
        if checkpoint.is_file():
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            previous = state["config"]
            differ = [k for k in _RESUME_KEYS if previous.get(k) != config.get(k)]
            if differ:
                shown = "; ".join(f"{k}: {previous.get(k)!r} there, {config.get(k)!r} now" for k in differ)
                raise TrainError(
                    f"{out}: holds a checkpoint of a run with other settings ({shown}); "
                    "use another --out, or --overwrite to start over"
                )
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            history = list(state["history"])
            start_epoch = int(state["epoch"])

        train_data = _ClipData(train_clips, recipe, train=True, flip=use_flip, seed=seed)
        sampler = _EpochSampler(len(train_clips), seed, shuffle=True)
        loader: Any = torch.utils.data.DataLoader(
            train_data,  # type: ignore[arg-type]
            batch_size=batch,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=workers,
            collate_fn=_collate,
            persistent_workers=workers > 0,
            prefetch_factor=2 if workers > 0 else None,
            # its own generator: creating an iterator must not draw from torch's global one (dropout's), or a
            # resumed run, whose first iterator comes later, would see different dropout masks
            generator=torch.Generator().manual_seed(seed),
        )
        val_loader: Any = None
        if val_clips:
            val_loader = torch.utils.data.DataLoader(
                _ClipData(val_clips, recipe, train=False, flip=False, seed=seed),  # type: ignore[arg-type]
                batch_size=batch,
                sampler=_EpochSampler(len(val_clips), seed, shuffle=False),
                num_workers=0 if use_cache else workers,
                collate_fn=_collate,
                generator=torch.Generator().manual_seed(seed),
            )

        from forwardlab.video.transforms import to_model_input

        if progress is not None:
            progress(start_epoch * steps_per_epoch, total_steps)
        for epoch in range(start_epoch, epochs):
            epoch_start = time.perf_counter()
            sampler.epoch = epoch
            torch.manual_seed(seed * 100_003 + epoch)  # dropout and anything else drawing from torch
            net.train()
            loss_sum, correct, seen = 0.0, 0, 0
            for step, batch_data in enumerate(loader, 1):
                if batch_data is None:  # every clip of the batch failed to decode (no cache): skip the step
                    scheduler.step()
                    continue
                clips, y = batch_data
                logits = net(to_model_input(clips, recipe.mean, recipe.std))
                loss = nn.functional.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.item() * len(y)
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
                if progress is not None:
                    progress(epoch * steps_per_epoch + step, total_steps)
            row: dict[str, float] = {
                "epoch": epoch + 1,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": loss_sum / max(1, seen),
                "train_top1": correct / max(1, seen),
            }
            if val_loader is not None:
                val_loss, val_top1, val_top5 = _evaluate(net, val_loader, recipe, len(classes))
                row.update(val_loss=val_loss, val_top1=val_top1, val_top5=val_top5)
            row["seconds"] = time.perf_counter() - epoch_start
            history.append(row)
            _write_metrics(out / METRICS_NAME, history)
            state = {
                "epoch": epoch + 1,
                "config": config,
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "history": history,
            }
            with atomic_path(checkpoint) as tmp:
                torch.save(state, tmp)
            if on_epoch is not None:
                on_epoch(row)

        model_path = out / MODEL_NAME
        with atomic_path(model_path) as tmp:
            torch.save(net.state_dict(), tmp)
        per_class = Counter(classes[c.label] for c in train_clips)
        card = {
            "format": CARD_FORMAT,
            "format_version": CARD_VERSION,
            "base_model": model,
            "classes": list(classes),
            "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(recipe).items()},
            "weights": {"file": MODEL_NAME, "sha256": sha256_file(model_path)},
            "init": {
                "from_pretrained": from_pretrained,
                "pretrained_weights": str(prepared.pretrained_weights) if prepared.pretrained_weights else None,
                "head_replaced": prepared.head_replaced,
                "head_classes_kept": list(prepared.head_classes_kept),
            },
            "data": {
                "manifest": config["manifest"],
                "root": str(manifest.root),
                "split": split,
                "val_split": val_split,
                "train_clips": len(train_clips),
                "val_clips": len(val_clips),
                "train_clips_per_class": {c: per_class.get(c, 0) for c in classes},
                "failed": failed,
            },
            "training": {
                "epochs": epochs,
                "batch": batch,
                "optimizer": "AdamW",
                "lr": lr,
                "weight_decay": weight_decay,
                "schedule": "linear warm-up then cosine decay to 0, per step",
                "warmup_epochs": warmup_epochs,
                "steps": total_steps,
                "seed": seed,
                "augmentation": {
                    "temporal": "random offset of the clip inside the video",
                    "spatial": f"random resized crop, area {list(CROP_SCALE)}, aspect x{list(CROP_RATIO)}",
                    "horizontal_flip": use_flip,
                },
                "frame_cache": use_cache,
                "seconds": round(sum(row["seconds"] for row in history), 1),  # summed over epochs, resumes included
            },
            "metrics": history[-1] if history else {},
            "history": history,
            "versions": _versions(),
        }
        write_text_atomic(out / CARD_NAME, json.dumps(card, indent=2) + "\n")
        checkpoint.unlink(missing_ok=True)
        if not keep_cache:
            shutil.rmtree(cache_root, ignore_errors=True)
        return TrainResult(
            out=out,
            model_path=model_path,
            card_path=out / CARD_NAME,
            metrics_path=out / METRICS_NAME,
            classes=classes,
            history=history,
            resumed_from_epoch=start_epoch,
            seconds=time.perf_counter() - started,
            failed=failed,
        )


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


def _fill_cache(clips: Sequence[_Clip], recipe: Recipe, workers: int) -> dict[str, str]:
    """Decode every clip not cached yet, in `workers` processes; {key: reason} of those that failed."""
    todo = [c for c in clips if c.cache is not None and not Path(c.cache).is_file()]
    if not todo:
        return {}
    Path(todo[0].cache or ".").parent.mkdir(parents=True, exist_ok=True)
    loader: Any = torch.utils.data.DataLoader(
        _CacheJob(todo, recipe),  # type: ignore[arg-type]
        batch_size=1,
        num_workers=workers,
        collate_fn=_first,
    )
    return {key: reason for key, reason in loader if reason is not None}


# =============================================================================================== trained models


def _card_path(path: str | Path) -> Path:
    p = Path(path)
    card = p / CARD_NAME if p.is_dir() else p.with_name(CARD_NAME) if p.suffix == ".pt" else p
    if not card.is_file():
        raise ModelError(
            f"{path}: not a trained model folder (no {CARD_NAME}; train one with `forwardlab video train`)"
        )
    return card


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


def _recipe(fields: dict[str, Any]) -> Recipe:
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
    )


def trained_entry(path: str | Path) -> ModelEntry:
    """A registry entry for a trained model folder: the base model's builder, the card's classes/recipe."""
    card_path = _card_path(path)
    card = read_card(card_path)
    base = get_entry(card["base_model"])
    weights = (card_path.parent / card["weights"]["file"]).resolve()
    if not weights.is_file():
        raise ModelError(f"{card_path.parent}: the weights file {card['weights']['file']} named by its card is missing")
    val = card.get("metrics", {})
    accuracy = {"acc@1": 100 * val["val_top1"], "acc@5": 100 * val["val_top5"]} if "val_top1" in val else {}
    classes = tuple(card["classes"])
    return ModelEntry(
        name=str(path),
        builder=base.builder,
        # an absolute file name: the registry's weight search finds it whatever folder it looks in
        weights=Weights(file_name=str(weights), url=None, install_hint="retrain it with `forwardlab video train`"),
        classes=classes,
        recipe=_recipe(card["recipe"]),
        params=base.params,
        gmacs=base.gmacs,
        accuracy=accuracy,
        family=f"trained from {base.name}",
    )


def register_trained(path: str | Path) -> ModelEntry:
    """Add a trained model folder to the registry under `str(path)`, so `evaluate` can use it by name."""
    return register(trained_entry(path))


def load_trained(path: str | Path) -> LoadedModel:
    """A trained model folder as a `LoadedModel` in eval mode (what `predict(model=...)` accepts)."""
    entry = trained_entry(path)
    net = entry.builder(entry.num_classes)
    assert entry.weights is not None
    weights = Path(entry.weights.file_name)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{weights}: does not fit {entry.family} ({str(exc).splitlines()[0]})") from exc
    return LoadedModel(entry, net.eval(), weights)


def is_trained_model(name: str) -> bool:
    """Whether `name` points at a trained model folder (or its card / weights) rather than a registry name."""
    if name in REGISTRY:
        return False
    p = Path(name)
    return (p / CARD_NAME).is_file() or (p.suffix in (".pt", ".json") and p.with_name(CARD_NAME).is_file())


__all__ = [
    "CARD_NAME",
    "MODEL_NAME",
    "PreparedModel",
    "TrainError",
    "TrainResult",
    "find_head",
    "flip_allowed",
    "is_trained_model",
    "load_trained",
    "lr_factor",
    "prepare_model",
    "read_card",
    "register_trained",
    "replace_head",
    "train",
    "trained_entry",
]
