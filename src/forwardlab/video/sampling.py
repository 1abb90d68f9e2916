"""Which presentation timestamps to read from a video.

Timestamps are exact `Fraction` seconds on the stream's clock (they include `VideoInfo.start_s`), so a
frame rate like 30000/1001 or a stream starting at 1.4 s gives the same frames every time. `read_frames`
shows, for each timestamp, the frame on screen at that moment.

Conventions:
- uniform N: N times evenly spaced from the first to the last frame, both included (the prototype's
  `np.linspace(0, n_frames - 1, N)` resampling, expressed in time so variable frame rates work).
- clip: T frames at a target rate R (torchvision / PySlowFast), i.e. times `start + j / R`.
- multi-view: K such clips with evenly spaced starts, the first at the video's start and the last ending
  at its last frame; one clip is centred.
- Too short: a video shorter than a clip gets every clip starting at its first frame, and the times past
  its end show the last frame again (repeat-last padding; `Frames.padded` counts them). Never an error.
- whole video: every time at a rate R from the first frame to the last (`all@R`), one view whose length
  follows the video.
- random clip (training): one clip starting anywhere in the video, drawn from the caller's generator
  (`RandomClipSampler`), cut by time from the video or by index from a resampling of it (a frame cache).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the CLI reads SAMPLE_SPEC_HELP without loading the decoder (PyAV)
    import numpy as np

    from forwardlab.video.io import VideoInfo

Timestamps = list[Fraction]


def _frac(x: float) -> Fraction:
    return Fraction(x).limit_denominator(1_000_000)


def _first_last(info: VideoInfo) -> tuple[Fraction, Fraction]:
    """Times of the first and last frame, from the probe's duration and rate."""
    start = _frac(info.start_s)
    frame = 1 / _frac(info.fps) if info.fps > 0 else Fraction(0)
    return start, start + max(Fraction(0), _frac(info.duration_s) - frame)


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def uniform_timestamps(info: VideoInfo, n: int) -> Timestamps:
    """N times spread evenly over the whole video; one frame is the middle one."""
    _check_positive(n=n)
    first, last = _first_last(info)
    if n == 1:
        return [first + (last - first) / 2]
    return [first + (last - first) * i / (n - 1) for i in range(n)]


def clip_timestamps(info: VideoInfo, frames_per_clip: int, fps: float, start_s: float | Fraction) -> Timestamps:
    """T frames at `fps` from `start_s`; times past the end are served by the last frame."""
    _check_positive(frames_per_clip=frames_per_clip, fps=fps)
    start = Fraction(start_s) if isinstance(start_s, Fraction) else _frac(start_s)
    step = 1 / _frac(fps)
    return [start + j * step for j in range(frames_per_clip)]


def multiview_timestamps(info: VideoInfo, n_clips: int, frames_per_clip: int, fps: float) -> list[Timestamps]:
    """K clips of T frames at `fps`, evenly spaced over the video (multi-view testing)."""
    _check_positive(n_clips=n_clips, frames_per_clip=frames_per_clip, fps=fps)
    first, last = _first_last(info)
    span = (frames_per_clip - 1) / _frac(fps)
    room = max(Fraction(0), last - first - span)
    starts = [first + room / 2] if n_clips == 1 else [first + room * i / (n_clips - 1) for i in range(n_clips)]
    return [clip_timestamps(info, frames_per_clip, fps, s) for s in starts]


@dataclass(frozen=True)
class RandomClipSampler:
    """Training's temporal augmentation: one clip of `frames_per_clip` frames at `fps`, starting anywhere.

    As PyTorchVideo's `RandomClipSampler`, but the randomness is the caller's generator, so a clip depends
    only on its seed (not on which worker cuts it). `rng=None` gives the centred clip instead (validation:
    the evaluation's one-clip view). A video shorter than a clip starts at its first frame and repeats its
    last one. Two ways to cut the same clip:

    * `__call__(info, rng)`: the clip's timestamps, to decode from the video;
    * `resampled(info, factor)` is every time at `factor` x `fps` over the whole video (what a frame cache
      holds), and `indices(n, factor, rng)` picks a clip's frames from those `n` by index.
    """

    frames_per_clip: int
    fps: float

    def __post_init__(self) -> None:
        _check_positive(frames_per_clip=self.frames_per_clip, fps=self.fps)

    def __call__(self, info: VideoInfo, rng: np.random.Generator | None) -> Timestamps:
        """The clip's times: its start drawn uniformly (to 1/10000 of the room) between the first frame and
        the last start that still fits the whole clip."""
        if rng is None:
            return multiview_timestamps(info, 1, self.frames_per_clip, self.fps)[0]
        first, last = _first_last(info)
        room = max(Fraction(0), last - first - Fraction(self.frames_per_clip - 1) / _frac(self.fps))
        start = first + room * Fraction(float(rng.random())).limit_denominator(10_000)
        return clip_timestamps(info, self.frames_per_clip, self.fps, start)

    def resampled(self, info: VideoInfo, factor: int) -> Timestamps:
        """Every time at `factor` x `fps` from the first frame to the last (at least one)."""
        _check_positive(factor=factor)
        first, last = _first_last(info)
        step = 1 / (_frac(self.fps) * factor)
        n = int((last - first) / step) + 1
        return [first + Fraction(k) * step for k in range(max(1, n))]

    def indices(self, n_frames: int, factor: int, rng: np.random.Generator | None) -> list[int]:
        """Which of `n_frames` resampled frames (see `resampled`) make the clip: every `factor`-th from a start
        drawn uniformly among those that fit the whole clip (the middle one when `rng` is None)."""
        _check_positive(n_frames=n_frames, factor=factor)
        span = factor * (self.frames_per_clip - 1)
        room = max(0, n_frames - 1 - span)
        start = int(rng.integers(0, room + 1)) if rng is not None else room // 2
        return [min(start + factor * j, n_frames - 1) for j in range(self.frames_per_clip)]


def whole_video_timestamps(info: VideoInfo, fps: float, min_frames: int = 1) -> Timestamps:
    """Every time at `fps` from the first frame to the last: the whole video as one clip (a fully
    convolutional network's protocol, e.g. I3D's at 25 fps). At least `min_frames`, the last frame
    repeated on a video too short for them."""
    _check_positive(fps=fps, min_frames=min_frames)
    first, last = _first_last(info)
    n = int((last - first) * _frac(fps)) + 1
    return clip_timestamps(info, max(n, min_frames), fps, first)


@dataclass(frozen=True)
class Sampler:
    """A sampling rule parsed from a spec string; calling it on a video gives one timestamp list per view.

    `n_views` is how many lists every video gets, known before any video is probed (batch sizes need it).
    """

    spec: str
    views: Callable[[VideoInfo], list[Timestamps]]
    n_views: int

    def __call__(self, info: VideoInfo) -> list[Timestamps]:
        return self.views(info)


if TYPE_CHECKING:
    _Views = Callable[[VideoInfo], list[Timestamps]]
# name -> (pattern, views from the match and min_frames, the number of views from the match)
_SPECS: dict[str, tuple[str, Callable[[re.Match[str], int], _Views], Callable[[re.Match[str]], int]]] = {
    "uniform": (
        r"uniform:(\d+)",
        lambda m, _: lambda info: [uniform_timestamps(info, int(m[1]))],
        lambda m: 1,
    ),
    "clip": (
        r"clip:(\d+)@(\d+(?:\.\d+)?)",
        lambda m, _: lambda info: multiview_timestamps(info, 1, int(m[1]), float(m[2])),
        lambda m: 1,
    ),
    "multiview": (
        r"multiview:(\d+)x(\d+)@(\d+(?:\.\d+)?)",
        lambda m, _: lambda info: multiview_timestamps(info, int(m[1]), int(m[2]), float(m[3])),
        lambda m: int(m[1]),
    ),
    "all": (
        r"all@(\d+(?:\.\d+)?)",
        lambda m, least: lambda info: [whole_video_timestamps(info, float(m[1]), least)],
        lambda m: 1,
    ),
}
SAMPLE_SPEC_HELP = (
    "uniform:N | clip:T@FPS (one centred clip) | multiview:KxT@FPS (K clips) | all@FPS (the whole video at FPS)"
)


def make_sampler(spec: str, *, min_frames: int = 1) -> Sampler:
    """Parse 'uniform:16', 'clip:16@15', 'multiview:10x16@15' or 'all@25' into a sampler.

    `min_frames` applies to `all@FPS`, whose length follows the video: a model's smallest clip.
    """
    for pattern, build, count in _SPECS.values():
        match = re.fullmatch(pattern, spec.strip())
        if match:
            if any(float(g) == 0 for g in match.groups()):
                raise ValueError(f"sample spec {spec!r}: counts and rates must be positive")
            return Sampler(spec.strip(), build(match, min_frames), count(match))
    raise ValueError(f"unknown sample spec {spec!r}; expected {SAMPLE_SPEC_HELP}")
