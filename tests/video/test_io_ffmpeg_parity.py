"""Our frames against an independent decoder: the `ffmpeg` CLI, at native resolution."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from forwardlab.video.io import probe, read_frames
from tests.support.clips import write_video

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI (make system-deps)")


def ffmpeg_frames(path: Path, indices: list[int], width: int, height: int) -> np.ndarray:
    """Frames by display index, selected with ffmpeg's `select` filter (autorotation on, as by default)."""
    expr = "+".join(f"eq(n\\,{i})" for i in indices)
    raw = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-vf",
            f"select={expr}",
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(indices), height, width, 3)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("h264_bframes.mp4", {"width": 320, "height": 180, "n_frames": 75, "options": {"bf": "3"}}),
        ("vp9.webm", {"width": 320, "height": 180, "n_frames": 40, "codec": "libvpx-vp9"}),
        ("rotated.mp4", {"width": 160, "height": 96, "n_frames": 20, "rotation": 90}),
    ],
)
def test_frames_match_the_ffmpeg_cli(tmp_path: Path, name: str, kwargs: dict) -> None:
    path = write_video(tmp_path / name, fps=25, **kwargs)
    info = probe(path)
    wanted = sorted({0, 3, 7, 12, info.n_frames // 2, info.n_frames - 1})
    ours = read_frames(path, [i / 25 for i in wanted]).data.permute(0, 2, 3, 1).numpy()
    theirs = ffmpeg_frames(path, wanted, info.width, info.height)
    assert ours.shape == theirs.shape
    mad = np.abs(ours.astype(np.int16) - theirs.astype(np.int16)).mean(axis=(1, 2, 3))
    assert mad.max() < 2.0, f"mean absolute differences per frame: {mad.round(2).tolist()}"
