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
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

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
class Sampler:
    """A sampling rule parsed from a spec string; calling it on a video gives one timestamp list per view."""

    spec: str
    views: Callable[[VideoInfo], list[Timestamps]]

    def __call__(self, info: VideoInfo) -> list[Timestamps]:
        return self.views(info)


_SPECS: dict[str, tuple[str, Callable[[re.Match[str]], Callable[[VideoInfo], list[Timestamps]]]]] = {
    "uniform": (
        r"uniform:(\d+)",
        lambda m: lambda info: [uniform_timestamps(info, int(m[1]))],
    ),
    "clip": (
        r"clip:(\d+)@(\d+(?:\.\d+)?)",
        lambda m: lambda info: multiview_timestamps(info, 1, int(m[1]), float(m[2])),
    ),
    "multiview": (
        r"multiview:(\d+)x(\d+)@(\d+(?:\.\d+)?)",
        lambda m: lambda info: multiview_timestamps(info, int(m[1]), int(m[2]), float(m[3])),
    ),
}
SAMPLE_SPEC_HELP = "uniform:N | clip:T@FPS (one centred clip) | multiview:KxT@FPS (K clips)"


def make_sampler(spec: str) -> Sampler:
    """Parse 'uniform:16', 'clip:16@15' or 'multiview:10x16@15' into a sampler."""
    for pattern, build in _SPECS.values():
        match = re.fullmatch(pattern, spec.strip())
        if match:
            sampler = Sampler(spec, build(match))
            if any(int(g) == 0 for g in match.groups() if g.isdigit()):
                raise ValueError(f"sample spec {spec!r}: counts and rates must be positive")
            return sampler
    raise ValueError(f"unknown sample spec {spec!r}; expected {SAMPLE_SPEC_HELP}")
