"""Training data: seeded epoch order, clips that depend only on (seed, epoch, index), batches that skip
undecodable clips. Clips come from hand-made frame-cache files, so no video is decoded here."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from forwardlab.video.models.registry import Recipe
from forwardlab.video.training.data import CACHE_RATE_FACTOR, ClipDataset, EpochSampler, TrainClip, collate

RECIPE = Recipe(frames_per_clip=8, fps=8.0, resize_size=(40, 60), crop_size=(32, 48), mean=(0.5,) * 3, std=(0.25,) * 3)


@pytest.fixture
def cached_clips(tmp_path: Path) -> list[TrainClip]:
    """Three cache files whose frame k is filled with the value k (so a clip shows which frames it took)."""
    clips = []
    for i, n in enumerate((40, 25, 10)):  # the last is shorter than a clip (16 cached frames)
        frames = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 3, 40, 60)).copy()
        path = tmp_path / f"clip{i}.npy"
        np.save(path, frames)
        clips.append(TrainClip(key=f"k{i}", path=f"clip{i}.mp4", label=i, cache=str(path)))
    return clips


def frame_values(clip: torch.Tensor) -> list[int]:
    return [int(v) for v in clip[:, 0, 0, 0]]


def test_epoch_order_is_a_seeded_shuffle_of_every_index() -> None:
    sampler = EpochSampler(10, seed=4, shuffle=True)
    first = list(sampler)
    assert sorted(i for _, i in first) == list(range(10)) and {e for e, _ in first} == {0}
    assert list(sampler) == first
    sampler.epoch = 1
    second = list(sampler)
    assert {e for e, _ in second} == {1} and [i for _, i in second] != [i for _, i in first]
    assert list(EpochSampler(10, seed=4, shuffle=False)) == [(0, i) for i in range(10)]


def test_training_clips_depend_only_on_seed_epoch_and_index(cached_clips: list[TrainClip]) -> None:
    data = ClipDataset(cached_clips, RECIPE, train=True, flip=True, seed=3)
    other = ClipDataset(cached_clips, RECIPE, train=True, flip=True, seed=3)  # another worker's copy
    for key in [(0, 0), (0, 1), (1, 0), (2, 2)]:
        item, again = data[key], other[key]
        assert item is not None and again is not None
        assert torch.equal(item[0], again[0]) and item[1] == again[1] == key[1]
    starts = {frame_values(data[(e, 0)][0])[0] for e in range(20)}  # type: ignore[index]
    assert len(starts) > 5  # the temporal offset moves from epoch to epoch


def test_training_clips_are_uint8_at_the_crop_size_every_other_cached_frame(cached_clips: list[TrainClip]) -> None:
    data = ClipDataset(cached_clips, RECIPE, train=True, flip=True, seed=0)
    for epoch in range(10):
        item = data[(epoch, 0)]
        assert item is not None
        clip, label = item
        assert clip.shape == (8, 3, 32, 48) and clip.dtype == torch.uint8 and label == 0
        values = frame_values(clip)
        assert all(b - a == CACHE_RATE_FACTOR for a, b in itertools.pairwise(values))
        assert values[0] >= 0 and values[-1] <= 39


def test_validation_clips_are_the_centred_clip_and_centre_crop(cached_clips: list[TrainClip]) -> None:
    data = ClipDataset(cached_clips, RECIPE, train=False, flip=True, seed=0)
    item = data[(5, 0)]
    assert item is not None
    room = 40 - 1 - CACHE_RATE_FACTOR * 7
    assert frame_values(item[0]) == [room // 2 + CACHE_RATE_FACTOR * j for j in range(8)]
    assert torch.equal(item[0], data[(0, 0)][0])  # type: ignore[index]
    short = data[(0, 2)]
    assert short is not None and frame_values(short[0]) == [0, 2, 4, 6, 8, 9, 9, 9]  # repeat-last padding


def test_batches_leave_out_undecodable_clips() -> None:
    a, b = torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.ones(2, 3, 4, 4, dtype=torch.uint8)
    batch = collate([(a, 1), None, (b, 0)])
    assert batch is not None
    clips, labels = batch
    assert clips.shape == (2, 2, 3, 4, 4) and labels.tolist() == [1, 0] and labels.dtype == torch.long
    assert collate([None, None]) is None
