"""Test videos made on the spot with PyAV: every frame carries its own index as 8 black/white blocks.

Reading the blocks back tells exactly which source frame a decoder returned, whatever the codec, size
or rotation, so tests can check frame selection rather than trust it.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BITS = 8


def frame_image(index: int, width: int, height: int) -> np.ndarray:
    """RGB frame: top half = index in binary (MSB left), bottom half a moving gradient."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    block = width // BITS
    for bit in range(BITS):
        if index >> (BITS - 1 - bit) & 1:
            img[: height // 2, bit * block : (bit + 1) * block] = 255
    ramp = (np.arange(width, dtype=np.int32) * 4 + index * 8) % 256
    img[height // 2 :, :, 1] = ramp[None, :].astype(np.uint8)
    img[height // 2 :, :, 2] = 96
    return img


def frame_index(rgb_hwc: np.ndarray) -> int:
    """Inverse of `frame_image` on a decoded (possibly resized, lossy) RGB frame."""
    height, width = rgb_hwc.shape[:2]
    block = width / BITS
    top = rgb_hwc[: max(1, height // 2 - 1)].astype(np.float32).mean(axis=2)
    value = 0
    for bit in range(BITS):
        lo, hi = int(bit * block + block * 0.25), int((bit + 1) * block - block * 0.25)
        value = value << 1 | int(top[:, lo : max(hi, lo + 1)].mean() > 127)
    return value


def write_video(
    path: Path,
    *,
    n_frames: int = 30,
    fps: int = 25,
    width: int = 64,
    height: int = 48,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int = 0,
    audio: bool = False,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode `n_frames` index-coded frames; `pts` + `time_base` give any (variable) timing."""
    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if time_base is not None:
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        audio_stream = out.add_stream("aac", rate=16000) if audio else None
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(frame_image(i, width, height), format="rgb24").reformat(format=pix_fmt)
            frame.pts = pts[i] if pts is not None else i
            if time_base is not None:
                frame.time_base = time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if audio_stream is not None:
            write_audio_frames(out, audio_stream, seconds=n_frames / fps)
    return path


def write_audio_frames(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    samples = int(16000 * seconds)
    tone = (0.1 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 16000)).astype(np.float32)
    for start in range(0, samples, 1024):
        chunk = tone[start : start + 1024]
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        frame.sample_rate = 16000
        frame.pts = start
        out.mux(stream.encode(frame))
    out.mux(stream.encode())


def write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        write_audio_frames(out, out.add_stream("aac", rate=16000), seconds=1.0)
    return path


def decode_all(path: Path) -> list[tuple[float, np.ndarray]]:
    """Every frame with its time, by a plain PyAV decode: the reference our selective decode must equal."""
    with av.open(str(path)) as container:
        return [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
