"""What training feeds the model: clips of the dataset, a frame cache, the epoch order and the batches.

* Frame cache: every clip decoded once, at `CACHE_RATE_FACTOR` x the recipe's frame rate and the recipe's
  decode size, into one `.npy` file per video (worker processes), so temporal offsets are finer than a
  step and no epoch decodes again. Without it, every step decodes its frames.
* `ClipDataset`: map-style, `(epoch, index)` -> one clip. In training, its temporal offset
  (`RandomClipSampler`), crop and flip (`TrainPreset`) come from a generator seeded with
  `(seed, epoch, index)`, so a clip does not depend on which worker makes it; in validation, the centred
  clip and centre crop (the evaluation recipe with one view). Clips stay uint8: the loop normalizes.
* `EpochSampler`: the seeded shuffle of each epoch, so a resumed run sees the same order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forwardlab.fileio import atomic_path
from forwardlab.video import io as video_io
from forwardlab.video.data.manifest import ClipRecord, Manifest
from forwardlab.video.errors import VideoDecodeError
from forwardlab.video.models.registry import Recipe

# The cache holds frames at this multiple of the recipe's rate, so temporal offsets are finer than a step.
CACHE_RATE_FACTOR = 2

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class TrainClip:
    """One training or validation video: where it is, its class index, and its cache file (None: no cache)."""

    key: str
    path: str
    label: int
    cache: str | None


def make_clips(
    manifest: Manifest, rows: Sequence[ClipRecord], classes: Sequence[str], recipe: Recipe, cache_root: Path | None
) -> list[TrainClip]:
    """The rows as clips; with a `cache_root`, each gets a cache file named for its video, decode size and rate."""
    index = {c: i for i, c in enumerate(classes)}
    tag = f"{recipe.decode_size}@{recipe.fps * CACHE_RATE_FACTOR:g}"
    clips = []
    for r in rows:
        assert r.label is not None
        path = str(manifest.absolute(r))
        key = hashlib.sha1(f"{path}|{tag}".encode()).hexdigest()[:16]
        clips.append(TrainClip(r.path, path, index[r.label], str(cache_root / f"{key}.npy") if cache_root else None))
    return clips


def cache_bytes(records: Sequence[ClipRecord], recipe: Recipe) -> float:
    """What the frame cache of `records` would take on disk (unknown durations count as 10 s)."""
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


def _write_cache(clip: TrainClip, recipe: Recipe) -> str | None:
    """Decode one video into its cache file (atomic); the reason when it cannot be decoded."""
    assert clip.cache is not None
    target = Path(clip.cache)
    if target.is_file():
        return None
    try:
        stamps = recipe.train_sampler().resampled(video_io.probe(clip.path), CACHE_RATE_FACTOR)
        frames = video_io.read_frames(clip.path, stamps, size=recipe.decode_size).data
    except VideoDecodeError as exc:
        return exc.reason
    except Exception as exc:  # PyAV raises many types for odd files: record, go on
        return f"{type(exc).__name__}: {exc}"
    with atomic_path(target) as tmp, tmp.open("wb") as f:
        np.save(f, frames.numpy())
    return None


class _CacheJob:
    """Map-style dataset whose items fill the cache: index -> (key, failure reason or None)."""

    def __init__(self, clips: Sequence[TrainClip], recipe: Recipe) -> None:
        self.clips, self.recipe = list(clips), recipe

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[str, str | None]:
        return self.clips[index].key, _write_cache(self.clips[index], self.recipe)


def _first(x: Any) -> Any:
    return x[0]


def fill_cache(clips: Sequence[TrainClip], recipe: Recipe, workers: int) -> dict[str, str]:
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


class ClipDataset:
    """Map-style dataset: `(epoch, index)` -> (`uint8 (T, C, h, w)` clip, label); see the module docstring."""

    def __init__(self, clips: Sequence[TrainClip], recipe: Recipe, *, train: bool, flip: bool, seed: int) -> None:
        self.clips, self.recipe, self.train, self.seed = list(clips), recipe, train, seed
        self.sampler = recipe.train_sampler()
        self.train_preset = recipe.train_preset(flip=flip)
        self.eval_preset = recipe.preset(spatial_views=1)
        self._infos: dict[str, video_io.VideoInfo] = {}  # probes of this process (a persistent worker keeps its own)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int] | None:
        """The clip, or None when it cannot be decoded (only without the cache, which filters those out)."""
        epoch, index = key
        clip = self.clips[index]
        rng = np.random.default_rng([self.seed, epoch, index])
        try:
            frames = self._frames(clip, rng if self.train else None)
        except VideoDecodeError:
            if clip.cache is not None:
                raise
            return None
        if self.train:
            return self.train_preset(frames, rng), clip.label
        return self.eval_preset.crops(frames)[0].contiguous(), clip.label

    def _frames(self, clip: TrainClip, rng: np.random.Generator | None) -> torch.Tensor:
        if clip.cache is not None:
            cached = np.load(clip.cache, mmap_mode="r")
            picked = self.sampler.indices(len(cached), CACHE_RATE_FACTOR, rng)
            return torch.from_numpy(np.ascontiguousarray(cached[picked]))
        info = self._infos.get(clip.path)
        if info is None:  # without the cache: probe each video once, not at every epoch
            info = self._infos[clip.path] = video_io.probe(clip.path)
        return video_io.read_frames(clip.path, self.sampler(info, rng), size=self.recipe.decode_size).data


class EpochSampler:
    """Yields `(epoch, index)` in the epoch's seeded order; the epoch is set by the training loop."""

    def __init__(self, n: int, seed: int, *, shuffle: bool) -> None:
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle else range(self.n)
        for i in order:
            yield self.epoch, int(i)


def collate(items: Sequence[tuple[torch.Tensor, int] | None]) -> Batch | None:
    """Stack a batch, leaving out clips that could not be decoded; None when none could."""
    kept = [item for item in items if item is not None]
    if not kept:
        return None
    return torch.stack([c for c, _ in kept]), torch.tensor([y for _, y in kept], dtype=torch.long)


def train_loader(
    clips: Sequence[TrainClip], recipe: Recipe, *, batch: int, workers: int, flip: bool, seed: int
) -> tuple[Any, EpochSampler]:
    """Batches of augmented training clips in each epoch's seeded order, and the sampler that sets the epoch."""
    sampler = EpochSampler(len(clips), seed, shuffle=True)
    loader: Any = torch.utils.data.DataLoader(
        ClipDataset(clips, recipe, train=True, flip=flip, seed=seed),  # type: ignore[arg-type]
        batch_size=batch,
        sampler=sampler,
        drop_last=len(clips) > batch,
        num_workers=workers,
        collate_fn=collate,
        persistent_workers=workers > 0,
        prefetch_factor=2 if workers > 0 else None,
        # its own generator: creating an iterator must not draw from torch's global one (dropout's), or a
        # resumed run, whose first iterator comes later, would see different dropout masks
        generator=torch.Generator().manual_seed(seed),
    )
    return loader, sampler


def val_loader(clips: Sequence[TrainClip], recipe: Recipe, *, batch: int, workers: int, seed: int) -> Any:
    """Batches of the validation clips (centred clip, centre crop), always in the same order."""
    return torch.utils.data.DataLoader(
        ClipDataset(clips, recipe, train=False, flip=False, seed=seed),  # type: ignore[arg-type]
        batch_size=batch,
        sampler=EpochSampler(len(clips), seed, shuffle=False),
        num_workers=workers,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed),
    )
