"""Sampling rules in time: uniform, clips at a rate, multi-view, and the padding rule."""

from __future__ import annotations

import itertools
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from forwardlab.video.io import VideoInfo
from forwardlab.video.sampling import (
    RandomClipSampler,
    clip_timestamps,
    make_sampler,
    multiview_timestamps,
    uniform_timestamps,
)

INFO = VideoInfo(
    path="x.mp4",
    size_bytes=1,
    container="mp4",
    codec="h264",
    pixel_format="yuv420p",
    width=320,
    height=240,
    coded_width=320,
    coded_height=240,
    rotation_deg=0,
    duration_s=10.0,
    start_s=0.0,
    fps=25.0,
    variable_frame_rate=False,
    n_frames=250,
    n_frames_exact=True,
    has_audio=False,
)


def frame_of(t: Fraction, fps: int = 25) -> int:
    return int(t * fps)  # exact: the frame on screen at t


def test_uniform_matches_the_prototypes_linspace_over_frame_indices() -> None:
    for n in (1, 2, 8, 16, 32, 64):
        got = [frame_of(t) for t in uniform_timestamps(INFO, n)]
        expected = np.linspace(0, 249, n).astype(int).tolist() if n > 1 else [124]
        assert got == expected


def test_timestamps_are_exact_fractions_on_the_stream_clock() -> None:
    late = replace(INFO, start_s=1.4, fps=30000 / 1001, duration_s=5.0)
    ts = uniform_timestamps(late, 4)
    assert all(isinstance(t, Fraction) for t in ts)
    assert ts[0] == Fraction(7, 5)
    assert ts[-1] == Fraction(7, 5) + Fraction(5) - Fraction(1001, 30000)


def test_clip_at_a_target_rate_steps_by_its_period() -> None:
    ts = clip_timestamps(INFO, 16, 15, Fraction(2))
    assert ts[0] == 2 and ts[1] - ts[0] == Fraction(1, 15) and len(ts) == 16


def test_multiview_spreads_clips_from_first_to_last_frame() -> None:
    clips = multiview_timestamps(INFO, n_clips=10, frames_per_clip=16, fps=15)
    assert len(clips) == 10 and all(len(c) == 16 for c in clips)
    assert clips[0][0] == 0
    assert clips[-1][-1] == Fraction(249, 25)  # the last clip ends on the last frame
    starts = [c[0] for c in clips]
    assert len({b - a for a, b in itertools.pairwise(starts)}) == 1


def test_one_view_is_centred() -> None:
    (clip,) = multiview_timestamps(INFO, n_clips=1, frames_per_clip=16, fps=15)
    room = Fraction(249, 25) - Fraction(15, 15)
    assert clip[0] == room / 2


def test_short_video_starts_every_clip_at_zero_and_runs_past_the_end() -> None:
    short = replace(INFO, duration_s=0.5, n_frames=12)
    clips = multiview_timestamps(short, n_clips=3, frames_per_clip=16, fps=15)
    assert all(c[0] == 0 for c in clips)
    assert clips[0][-1] > Fraction(1, 2)  # read_frames serves these with the last frame


@pytest.mark.parametrize(
    ("spec", "views", "frames"),
    [
        ("uniform:16", 1, 16),
        ("clip:8@15", 1, 8),
        ("multiview:10x16@15", 10, 16),
        (" uniform:4 ", 1, 4),
        ("all@25", 1, 250),
        ("all@12.5", 1, 125),
    ],
)
def test_spec_strings(spec: str, views: int, frames: int) -> None:
    sampler = make_sampler(spec)
    out = sampler(INFO)
    assert len(out) == views == sampler.n_views and all(len(v) == frames for v in out)
    assert sampler.spec == spec.strip()


def test_whole_video_is_every_time_at_the_rate_from_first_to_last_frame() -> None:
    started = replace(INFO, start_s=1.4, duration_s=2.0)
    [times] = make_sampler("all@10")(started)
    assert times[0] == Fraction(7, 5) and times[-1] <= Fraction(7, 5) + Fraction(2) - Fraction(1, 25)
    assert set(np.diff(times)) == {Fraction(1, 10)} and len(times) == 20
    [short] = make_sampler("all@10", min_frames=64)(started)  # a model's shortest clip: repeat-last padding
    assert len(short) == 64 and short[:20] == times
    assert make_sampler("multiview:2x8@10", min_frames=64)(started) == multiview_timestamps(started, 2, 8, 10)


@pytest.mark.parametrize(
    "spec", ["uniform", "uniform:x", "random:3", "multiview:10x16", "uniform:0", "clip:0@5", "all@0", "all:25"]
)
def test_bad_spec_names_the_spec_and_the_grammar(spec: str) -> None:
    with pytest.raises(ValueError, match="spec"):
        make_sampler(spec)


def test_non_positive_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="n must be positive"):
        uniform_timestamps(INFO, 0)
    with pytest.raises(ValueError, match="fps must be positive"):
        clip_timestamps(INFO, 4, 0, 0)


# ============================================================================= random clip (training)

SAMPLER = RandomClipSampler(frames_per_clip=16, fps=15)
LAST_FRAME = Fraction(249, 25)


def test_random_clips_fit_the_video_and_step_by_the_period() -> None:
    starts = set()
    for seed in range(200):
        ts = SAMPLER(INFO, np.random.default_rng(seed))
        assert len(ts) == 16 and all(isinstance(t, Fraction) for t in ts)
        assert {b - a for a, b in itertools.pairwise(ts)} == {Fraction(1, 15)}
        assert ts[0] >= 0 and ts[-1] <= LAST_FRAME  # the whole clip lies inside the video
        starts.add(ts[0])
    assert len(starts) > 150  # spread over the room, not a handful of positions
    assert min(starts) < 1 and max(starts) > LAST_FRAME - 1 - 1  # from near the start to near the last fit


def test_random_clips_are_a_function_of_the_seed() -> None:
    first = [SAMPLER(INFO, np.random.default_rng([7, e, i])) for e in range(3) for i in range(4)]
    again = [SAMPLER(INFO, np.random.default_rng([7, e, i])) for e in range(3) for i in range(4)]
    assert first == again
    assert len({ts[0] for ts in first}) == len(first)


def test_without_a_generator_the_clip_is_the_centred_view() -> None:
    assert SAMPLER(INFO, None) == multiview_timestamps(INFO, 1, 16, 15)[0]
    assert SAMPLER.indices(101, 2, None)[0] == (101 - 1 - 2 * 15) // 2


def test_a_video_shorter_than_a_clip_always_starts_at_its_first_frame() -> None:
    short = replace(INFO, duration_s=0.5, n_frames=12)
    for seed in range(20):
        assert SAMPLER(short, np.random.default_rng(seed))[0] == 0
    assert SAMPLER.indices(10, 2, np.random.default_rng(0)) == [0, 2, 4, 6, 8] + [9] * 11  # repeat-last padding


def test_resampled_times_cover_the_video_at_the_finer_rate() -> None:
    ts = SAMPLER.resampled(INFO, 2)
    assert ts[0] == 0 and {b - a for a, b in itertools.pairwise(ts)} == {Fraction(1, 30)}
    assert ts[-1] <= LAST_FRAME < ts[-1] + Fraction(1, 30)
    assert SAMPLER.resampled(replace(INFO, duration_s=0.01), 2) == [0]  # at least one frame


def test_clips_cut_by_index_from_the_resampled_video_are_clips_at_the_rate() -> None:
    resampled = SAMPLER.resampled(INFO, 2)
    for seed in range(50):
        picked = SAMPLER.indices(len(resampled), 2, np.random.default_rng(seed))
        assert picked[0] >= 0 and picked[-1] <= len(resampled) - 1
        times = [resampled[i] for i in picked]
        assert {b - a for a, b in itertools.pairwise(times)} == {Fraction(1, 15)}


def test_random_clip_sampler_rejects_non_positive_settings() -> None:
    with pytest.raises(ValueError, match="fps must be positive"):
        RandomClipSampler(frames_per_clip=8, fps=0)
    with pytest.raises(ValueError, match="factor must be positive"):
        SAMPLER.indices(10, 0, None)
