"""Probe and decode videos with PyAV, reading only the frames a model will see.

Frames are picked by presentation timestamp, never by index, so variable frame rates and streams that
start after zero come out right. Decoding stops after the last requested frame, frames are converted and
resized by FFmpeg's scaler straight from the decoder's YUV buffers, and only the frames asked for are
ever converted: nothing holds a full-length, full-resolution video in memory.

Layout of returned frames: `torch.uint8` tensors shaped `(T, C, H, W)` with RGB channels, the
layout torchvision's `transforms.v2` treats as a video. Display rotation (phone videos) is applied.
"""

from __future__ import annotations

import bisect
import math
import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from forwardlab.video.errors import VideoDecodeError

if TYPE_CHECKING:
    import torch

DecodeMode = Literal["exact", "fast"]
Size = int | tuple[int, int] | None

# How many packets the demuxer runs ahead of the decoder. H.264/HEVC reorder at most 16 frames, so a
# frame's presentation successor is always among the next 32 packets; planning is conservative anyway
# (an unknown successor means "decode it").
_LOOKAHEAD_PACKETS = 32
# How many packets probe() demuxes to tell a constant from a variable frame rate, without decoding.
_VFR_PROBE_PACKETS = 240
# Seek instead of decoding from the start when the first wanted frame is this far into the stream.
_SEEK_MIN_S = 4.0
# A target a hair before a frame's timestamp (float rounding) still selects that frame.
_TICK_TOLERANCE = 1e-6


@dataclass(frozen=True)
class VideoInfo:
    """What a video is, read from its headers, a short demux and one decoded frame."""

    path: str
    size_bytes: int
    container: str
    codec: str
    pixel_format: str
    width: int
    height: int
    coded_width: int
    coded_height: int
    rotation_deg: int
    duration_s: float
    start_s: float
    fps: float
    variable_frame_rate: bool
    n_frames: int
    n_frames_exact: bool
    has_audio: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Frames:
    """Decoded frames plus where on the timeline they came from.

    `frame_s[i]` is the timestamp of the frame returned for `requested_s[i]`; `exact_frame_s[i]` is the
    one an exact decode shows at that moment. They differ only in fast mode, which is why the errors are
    reported rather than assumed zero. `padded` counts requests past the end, served by the last frame.
    """

    data: torch.Tensor
    requested_s: tuple[float, ...]
    frame_s: tuple[float, ...]
    exact_frame_s: tuple[float, ...]
    padded: int

    @property
    def errors_s(self) -> np.ndarray:
        return np.abs(np.asarray(self.frame_s) - np.asarray(self.exact_frame_s))

    @property
    def max_error_s(self) -> float:
        return float(self.errors_s.max()) if self.frame_s else 0.0

    @property
    def mean_error_s(self) -> float:
        return float(self.errors_s.mean()) if self.frame_s else 0.0


def _open(path: str | Path) -> av.container.InputContainer:
    p = Path(path)
    if not p.exists():
        raise VideoDecodeError(p, "file does not exist")
    if not p.is_file():
        raise VideoDecodeError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise VideoDecodeError(p, "file is empty (0 bytes)")
    try:
        return av.open(str(p), mode="r")
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(p, f"not a readable video container ({exc.strerror or exc})") from exc


def _video_stream(container: av.container.InputContainer, path: str | Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        kinds = sorted({str(s.type) for s in container.streams}) or ["none"]
        raise VideoDecodeError(path, f"no video stream (streams: {', '.join(kinds)})")
    stream = container.streams.video[0]
    # Slice threading only: on 2 cores, frame threading measured 25-35% slower for our skip-heavy
    # decodes (benchmarks/decode.py), and one thread per file suits one decode worker per core.
    stream.thread_type = "SLICE"
    return stream


def _first_frame(container: av.container.InputContainer, stream: Any, path: str | Path) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(path, f"cannot decode video ({exc.strerror or exc})") from exc
    raise VideoDecodeError(path, "video stream has no decodable frames (truncated or empty)")


def _rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise display rotation in degrees, a multiple of 90 in [0, 360)."""
    return round((frame.rotation or 0) / 90.0) % 4 * 90


def _is_variable_rate(pts: list[int]) -> bool:
    if len(pts) < 3:
        return False
    ordered = np.sort(np.asarray(pts, dtype=np.int64))
    if len(pts) >= _VFR_PROBE_PACKETS:
        ordered = ordered[:-_LOOKAHEAD_PACKETS]  # successors of the last few may not be demuxed yet
    deltas = np.diff(ordered)
    deltas = deltas[deltas > 0]
    if deltas.size < 2:
        return False
    return bool(deltas.max() > 1.5 * deltas.min())


def _demux_pts(container: av.container.InputContainer, stream: Any, path: str | Path, limit: int) -> list[int]:
    pts: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                pts.append(packet.pts)
            if len(pts) >= limit:
                break
    except av.error.FFmpegError as exc:
        if not pts:
            raise VideoDecodeError(path, f"cannot read packets ({exc.strerror or exc})") from exc
    return pts


def _last_pts(container: av.container.InputContainer, stream: Any, path: str | Path) -> int | None:
    """The last packet's timestamp, read after one seek to near the end instead of a full demux."""
    if not container.duration:
        return None
    try:
        container.seek(container.duration, backward=True, any_frame=False)
    except av.error.FFmpegError:
        return None
    return max(_demux_pts(container, stream, path, limit=1 << 62), default=None)


def probe(path: str | Path) -> VideoInfo:
    """Describe a video without decoding it in full.

    Reads container headers, demuxes a few hundred packets (compressed, cheap) to judge the frame rate,
    and decodes one frame to confirm the stream is decodable and to read its display rotation.
    """
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        tb = stream.time_base or Fraction(1, 90000)
        pts = _demux_pts(container, stream, path, limit=_VFR_PROBE_PACKETS)
        last_pts = max(pts, default=None) if len(pts) < _VFR_PROBE_PACKETS else None
        if not stream.duration and last_pts is None:
            last_pts = _last_pts(container, stream, path)
        container.seek(0)
        frame = _first_frame(container, stream, path)
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        start_s = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        if stream.duration:
            duration_s = float(stream.duration * tb)
        elif last_pts is not None and fps:
            # Matroska and friends declare no stream duration and a container duration counted from
            # zero, not from the first frame: measure from the packets instead.
            duration_s = float((last_pts - (stream.start_time or 0)) * tb) + 1 / fps
        elif container.duration:
            duration_s = container.duration / av.time_base
        else:
            duration_s = 0.0
        if stream.frames > 0:
            n_frames, exact = int(stream.frames), True
        else:
            n_frames, exact = max(1, round(duration_s * fps)) if fps else len(pts), False
        if fps == 0.0 and duration_s > 0:
            fps = n_frames / duration_s
        rotation = _rotation(frame)
        coded_w, coded_h = frame.width, frame.height
        sar = stream.sample_aspect_ratio
        disp_w = round(coded_w * float(sar)) if sar and sar > 0 else coded_w
        width, height = (coded_h, disp_w) if rotation in (90, 270) else (disp_w, coded_h)
        return VideoInfo(
            path=str(path),
            size_bytes=os.path.getsize(path),
            container=container.format.name,
            codec=ctx.name,
            pixel_format=frame.format.name,
            width=width,
            height=height,
            coded_width=coded_w,
            coded_height=coded_h,
            rotation_deg=rotation,
            duration_s=duration_s,
            start_s=start_s,
            fps=fps,
            variable_frame_rate=_is_variable_rate(pts),
            n_frames=n_frames,
            n_frames_exact=exact,
            has_audio=bool(container.streams.audio),
        )
    finally:
        container.close()


def _to_pts(t: float | Fraction, tb: Fraction) -> int:
    if isinstance(t, Fraction | int):
        return math.floor(Fraction(t) / tb)
    return math.floor(float(t) / float(tb) + _TICK_TOLERANCE)


def _output_size(frame: av.VideoFrame, size: Size, rotation: int, sar: float) -> tuple[int, int]:
    """(width, height) to ask the scaler for, in coded orientation, so rotation comes after resizing."""
    disp_w, disp_h = round(frame.width * sar), frame.height
    if rotation in (90, 270):
        disp_w, disp_h = disp_h, disp_w
    if size is None:
        out_w, out_h = disp_w, disp_h
    elif isinstance(size, int):
        scale = size / min(disp_w, disp_h)
        out_w, out_h = max(1, round(disp_w * scale)), max(1, round(disp_h * scale))
    else:
        out_h, out_w = size
    return (out_h, out_w) if rotation in (90, 270) else (out_w, out_h)


class _Targets:
    """Requested presentation times, sorted, each remembering where its frame goes in the output."""

    def __init__(self, timestamps: Sequence[float | Fraction], tb: Fraction) -> None:
        order = sorted(range(len(timestamps)), key=lambda i: _to_pts(timestamps[i], tb))
        self.pts = [_to_pts(timestamps[i], tb) for i in order]
        self.slots = order
        self.next = 0

    def any_in(self, lo: int, hi: float) -> bool:
        i = bisect.bisect_left(self.pts, lo)
        return i < len(self.pts) and self.pts[i] < hi

    def pending_before(self, pts: float) -> Iterator[tuple[int, int]]:
        while self.next < len(self.pts) and self.pts[self.next] < pts:
            yield self.pts[self.next], self.slots[self.next]
            self.next += 1

    @property
    def done(self) -> bool:
        return self.next >= len(self.pts)


def read_frames(
    path: str | Path,
    timestamps: Sequence[float | Fraction],
    *,
    size: Size = None,
    mode: DecodeMode = "exact",
    interpolation: str = "BILINEAR",
) -> Frames:
    """Decode the frames shown at `timestamps` (seconds on the stream's clock, as `probe().start_s`).

    `size`: None keeps the display size, an int resizes the short side to it, `(h, w)` resizes exactly;
    resizing happens in FFmpeg's scaler. Timestamps past the end repeat the last frame (counted in
    `padded`). `mode="exact"` returns exactly the frame displayed at each time; it still lets the decoder
    skip non-reference frames nobody asked for, which is where its speed comes from. `mode="fast"` skips
    every non-reference frame and returns the nearest decoded one; `Frames.max_error_s` says how far off.
    """
    if mode not in ("exact", "fast"):
        raise ValueError(f"mode must be 'exact' or 'fast', got {mode!r}")
    if not timestamps:
        raise ValueError("timestamps is empty: ask for at least one frame")
    for allow_seek in (True, False):
        container = _open(path)
        try:
            stream = _video_stream(container, path)
            return _decode_selected(container, stream, path, timestamps, size, mode, interpolation, allow_seek)
        except _SeekOvershot:
            continue
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(path, f"decoding failed ({exc.strerror or exc})") from exc
        finally:
            container.close()
    raise AssertionError("unreachable: the second attempt never seeks")


class _SeekOvershot(Exception):
    """A seek landed after the first wanted frame (broken index); decode from the start instead."""


def _decode_selected(
    container: av.container.InputContainer,
    stream: Any,
    path: str | Path,
    timestamps: Sequence[float | Fraction],
    size: Size,
    mode: DecodeMode,
    interpolation: str,
    allow_seek: bool,
) -> Frames:
    import torch

    tb: Fraction = stream.time_base or Fraction(1, 90000)
    ctx = stream.codec_context
    targets = _Targets(timestamps, tb)
    n = len(timestamps)
    sar = float(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else 1.0
    start_pts = stream.start_time if stream.start_time is not None else 0
    seeked = allow_seek and (targets.pts[0] - start_pts) * tb > _SEEK_MIN_S
    if seeked:
        container.seek(targets.pts[0], backward=True, any_frame=False, stream=stream)

    seen_pts: list[int] = []
    window: deque[av.Packet] = deque()
    out: np.ndarray | None = None
    frame_pts = [0] * n
    exact_pts = [0] * n
    prev: av.VideoFrame | None = None
    prev_pts = 0
    converted: tuple[int, np.ndarray] | None = None
    nominal = Fraction(1, 25) / tb if not stream.average_rate else (1 / Fraction(stream.average_rate)) / tb
    out_size: tuple[int, int] | None = None
    rotation = 0
    # One scaler for the whole read: FFmpeg re-initialises a scaler per call otherwise (7x slower).
    scaler = VideoReformatter()

    def convert(frame: av.VideoFrame, pts: int) -> np.ndarray:
        nonlocal converted, out_size, rotation, out
        if converted is not None and converted[0] == pts:
            return converted[1]
        if out_size is None:
            rotation = _rotation(frame)
            out_size = _output_size(frame, size, rotation, sar)
        rgb = scaler.reformat(frame, out_size[0], out_size[1], "rgb24", interpolation=interpolation).to_ndarray()
        if rotation:
            rgb = np.rot90(rgb, k=rotation // 90)
        if out is None:
            out = np.empty((n, *rgb.shape), dtype=np.uint8)
        converted = (pts, rgb)
        return rgb

    def exact_for(t: int) -> int:
        i = bisect.bisect_right(seen_pts, t)
        return seen_pts[i - 1] if i else seen_pts[0]

    def place(slot: int, t: int, frame: av.VideoFrame, pts: int) -> None:
        rgb = convert(frame, pts)
        assert out is not None
        out[slot] = rgb
        frame_pts[slot] = pts
        exact_pts[slot] = exact_for(t) if seen_pts else pts

    def on_frame(frame: av.VideoFrame) -> bool:
        """Assign pending targets that end before this frame; True once every target is served."""
        nonlocal prev, prev_pts
        pts = frame.pts if frame.pts is not None else prev_pts + int(nominal)
        if prev is None and seeked and pts > targets.pts[0]:
            raise _SeekOvershot
        for t, slot in targets.pending_before(pts):
            if prev is None:
                place(slot, t, frame, pts)
            elif mode == "fast":
                e = exact_for(t)
                chosen = (prev, prev_pts) if abs(prev_pts - e) <= abs(pts - e) else (frame, pts)
                place(slot, t, *chosen)
            else:
                place(slot, t, prev, prev_pts)
        prev, prev_pts = frame, pts
        return targets.done

    def decode(packet: av.Packet | None) -> bool:
        if packet is not None and mode == "exact":
            wanted = True
            if packet.pts is not None:
                i = bisect.bisect_right(seen_pts, packet.pts)
                successor = seen_pts[i] if i < len(seen_pts) else math.inf
                wanted = targets.any_in(packet.pts, successor)
            ctx.skip_frame = "DEFAULT" if wanted else "NONREF"
        return any(on_frame(f) for f in ctx.decode(packet))

    ctx.skip_frame = "NONREF" if mode == "fast" else "DEFAULT"
    finished = False
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and not packet.is_discard:
                bisect.insort(seen_pts, packet.pts)
            elif packet.size == 0:
                continue
            window.append(packet)
            if len(window) > _LOOKAHEAD_PACKETS and decode(window.popleft()):
                finished = True
                break
        while not finished and window:
            finished = decode(window.popleft())
        if not finished:
            ctx.skip_frame = "DEFAULT"
            decode(None)
    except av.error.FFmpegError as exc:
        if prev is None:
            raise VideoDecodeError(path, f"corrupt video data ({exc.strerror or exc})") from exc
    if prev is None:
        raise VideoDecodeError(path, "video stream has no decodable frames (truncated or empty)")

    end_pts = prev_pts + int(prev.duration or nominal)
    declared_end = start_pts + stream.duration if stream.duration else None
    padded = 0
    for t, slot in targets.pending_before(math.inf):
        if declared_end is not None and end_pts + nominal <= t < declared_end - nominal:
            raise VideoDecodeError(
                path,
                f"truncated: frames end at {float(end_pts * tb):.3f}s but the container declares "
                f"{float(declared_end * tb):.3f}s and {float(t * tb):.3f}s was requested",
            )
        place(slot, t, prev, prev_pts)
        padded += t >= end_pts
    assert out is not None
    data = torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))
    return Frames(
        data=data,
        requested_s=tuple(float(t) for t in timestamps),
        frame_s=tuple(float(p * tb) for p in frame_pts),
        exact_frame_s=tuple(float(p * tb) for p in exact_pts),
        padded=padded,
    )


def read_views(
    path: str | Path,
    clips: Sequence[Sequence[float | Fraction]],
    *,
    size: Size = None,
    crop: int | tuple[int, int] | None = None,
    spatial_crops: int = 1,
    mode: DecodeMode = "exact",
) -> torch.Tensor:
    """Multi-view testing from one decode: K temporal clips x `spatial_crops` crops.

    The union of all clips' timestamps is decoded once, so 10 overlapping clips cost about one pass over
    the video instead of ten. Returns `uint8 (K * spatial_crops, T, C, h, w)`, clip-major: view
    `k * spatial_crops + c` is clip k, crop c.
    """
    return read_views_padded(path, clips, size=size, crop=crop, spatial_crops=spatial_crops, mode=mode)[0]


def read_views_padded(
    path: str | Path,
    clips: Sequence[Sequence[float | Fraction]],
    *,
    size: Size = None,
    crop: int | tuple[int, int] | None = None,
    spatial_crops: int = 1,
    mode: DecodeMode = "exact",
) -> tuple[torch.Tensor, int]:
    """`read_views` plus how many requested frames lay past the video's end (served by its last frame)."""
    import torch

    from forwardlab.video.transforms import spatial_crops as crops_of

    if not clips or any(len(c) != len(clips[0]) for c in clips) or not clips[0]:
        raise ValueError("clips must be a non-empty list of equally long, non-empty timestamp lists")
    frames = read_frames(path, [t for clip in clips for t in clip], size=size, mode=mode)
    t = len(clips[0])
    views: list[torch.Tensor] = []
    for k in range(len(clips)):
        clip = frames.data[k * t : (k + 1) * t]
        views.extend(crops_of(clip, crop, spatial_crops) if crop is not None else [clip])
    return torch.stack(views), frames.padded
