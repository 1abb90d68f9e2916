"""probe / read_frames / read_views on videos the tests make, good and bad."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from forwardlab.video.errors import VideoDecodeError
from forwardlab.video.io import probe, read_frames, read_views
from forwardlab.video.sampling import multiview_timestamps, uniform_timestamps
from forwardlab.video.transforms import spatial_crops
from tests.support.clips import decode_all, frame_index, write_audio_only, write_video


def indices(frames: torch.Tensor) -> list[int]:
    return [frame_index(f.permute(1, 2, 0).numpy()) for f in frames]


@pytest.fixture(scope="module")
def bframes_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """H.264 with B-frames and a short GOP, so selective skipping and reordering both get exercised."""
    path = tmp_path_factory.mktemp("clips") / "bframes.mp4"
    return write_video(path, n_frames=120, fps=25, width=128, height=64, options={"bf": "3", "g": "48"})


def test_probe_reports_stream_facts(tmp_path: Path) -> None:
    path = write_video(tmp_path / "a.mp4", n_frames=30, fps=25, width=64, height=48, audio=True)
    info = probe(path)
    assert (info.width, info.height) == (64, 48)
    assert info.fps == pytest.approx(25)
    assert info.n_frames == 30 and info.n_frames_exact
    assert info.duration_s == pytest.approx(1.2, abs=0.05)
    assert info.codec == "h264" and info.pixel_format == "yuv420p"
    assert info.has_audio and not info.variable_frame_rate
    assert info.rotation_deg == 0 and info.start_s == pytest.approx(0)
    assert info.size_bytes == path.stat().st_size


def test_exact_mode_returns_the_frame_on_screen_at_each_time(bframes_clip: Path) -> None:
    info = probe(bframes_clip)
    ts = uniform_timestamps(info, 16)
    result = read_frames(bframes_clip, ts)
    expected = [int(np.floor(float(t) * 25 + 1e-9)) for t in ts]
    assert indices(result.data) == expected
    assert result.max_error_s == 0.0 and result.padded == 0


def test_exact_mode_is_pixel_identical_to_a_full_decode(bframes_clip: Path) -> None:
    reference = decode_all(bframes_clip)
    rng = np.random.default_rng(3)
    times = [*sorted(rng.uniform(0, 4.7, size=23).tolist()), 0.0, 2.0, 4.76]
    result = read_frames(bframes_clip, times)
    ref_times = np.array([t for t, _ in reference])
    for k, t in enumerate(times):
        i = int(np.searchsorted(ref_times, t + 1e-9, side="right") - 1)
        np.testing.assert_array_equal(result.data[k].permute(1, 2, 0).numpy(), reference[i][1])
        assert result.frame_s[k] == pytest.approx(ref_times[i])


def test_unsorted_and_repeated_timestamps_keep_their_order(bframes_clip: Path) -> None:
    result = read_frames(bframes_clip, [2.0, 0.0, 2.0, 1.0])
    assert indices(result.data) == [50, 0, 50, 25]


def test_fast_mode_reports_how_far_each_frame_is_from_exact(bframes_clip: Path) -> None:
    ts = [k / 25 for k in range(0, 120, 7)]
    fast = read_frames(bframes_clip, ts, mode="fast")
    got = indices(fast.data)
    exact_idx = [round(t * 25) for t in ts]
    errors = np.abs(np.array(got) - np.array(exact_idx)) / 25
    np.testing.assert_allclose(fast.errors_s, errors, atol=1e-6)
    assert fast.max_error_s == pytest.approx(errors.max(), abs=1e-6)
    assert fast.max_error_s > 0  # with B-frames some asked-for frames are non-reference
    assert fast.max_error_s <= 4 / 25  # never further than a mini-GOP


def test_past_the_end_repeats_the_last_frame(tmp_path: Path) -> None:
    path = write_video(tmp_path / "short.mp4", n_frames=10, fps=10)
    result = read_frames(path, [0.5, 0.95, 1.5, 3.0])
    assert indices(result.data) == [5, 9, 9, 9]
    assert result.padded == 2


def test_resizing_happens_to_the_requested_size(bframes_clip: Path) -> None:
    assert read_frames(bframes_clip, [0.0], size=32).data.shape == (1, 3, 32, 64)
    assert read_frames(bframes_clip, [0.0], size=(40, 50)).data.shape == (1, 3, 40, 50)
    assert read_frames(bframes_clip, [0.0]).data.dtype == torch.uint8


def test_variable_frame_rate_picks_frames_by_timestamp(tmp_path: Path) -> None:
    pts_ms = [0, 40, 80, 200, 240, 500, 520, 540, 900, 1000]
    path = write_video(
        tmp_path / "vfr.mkv",
        n_frames=len(pts_ms),
        fps=25,
        pts=pts_ms,
        time_base=Fraction(1, 1000),
        codec="libx264",
        options={"bf": "0"},
    )
    info = probe(path)
    assert info.variable_frame_rate
    result = read_frames(path, [0.0, 0.1, 0.21, 0.499, 0.5, 0.6, 0.95])
    assert indices(result.data) == [0, 2, 3, 4, 5, 7, 8]


def test_non_zero_start_time_is_on_the_timeline(tmp_path: Path) -> None:
    path = write_video(
        tmp_path / "late.mkv",
        n_frames=25,
        fps=25,
        pts=[1500 + 40 * i for i in range(25)],
        time_base=Fraction(1, 1000),
        options={"bf": "0"},
    )
    info = probe(path)
    assert info.start_s == pytest.approx(1.5)
    ts = uniform_timestamps(info, 5)
    assert float(ts[0]) == pytest.approx(info.start_s)
    assert indices(read_frames(path, ts).data) == [0, 6, 12, 18, 24]


def test_rotated_phone_video_is_returned_upright(tmp_path: Path) -> None:
    path = write_video(tmp_path / "rot.mp4", n_frames=5, width=64, height=48, rotation=90)
    info = probe(path)
    assert info.rotation_deg in (90, 270)
    assert (info.width, info.height) == (48, 64)
    frame = read_frames(path, [0.0]).data[0]
    assert frame.shape == (3, 64, 48)
    raw = decode_all(path)[0][1]
    k = info.rotation_deg // 90
    np.testing.assert_array_equal(frame.permute(1, 2, 0).numpy(), np.rot90(raw, k=k))


def test_multiview_decodes_once_and_equals_separate_reads(bframes_clip: Path) -> None:
    info = probe(bframes_clip)
    clips = multiview_timestamps(info, n_clips=4, frames_per_clip=8, fps=12)
    views = read_views(bframes_clip, clips, size=48, crop=40, spatial_crops=3)
    assert views.shape == (12, 8, 3, 40, 40)
    for k, clip in enumerate(clips):
        separate = spatial_crops(read_frames(bframes_clip, clip, size=48).data, 40, 3)
        for c in range(3):
            assert torch.equal(views[k * 3 + c], separate[c])


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt", "width", "height"),
    [
        ("ten_bit.mp4", "libx264", "yuv420p10le", 64, 48),
        ("yuv444.mp4", "libx264", "yuv444p", 64, 48),
        ("odd_size.mp4", "libx264", "yuv444p", 97, 61),
        ("odd_size.avi", "mpeg4", "yuv420p", 97, 61),
        ("alpha.mov", "png", "rgba", 64, 48),
        ("alpha.mkv", "ffv1", "yuva420p", 64, 48),
        ("hevc10.mp4", "libx265", "yuv420p10le", 64, 48),
    ],
)
def test_unusual_pixel_formats_and_sizes_decode_correctly(
    tmp_path: Path, name: str, codec: str, pix_fmt: str, width: int, height: int
) -> None:
    path = write_video(tmp_path / name, n_frames=12, width=width, height=height, codec=codec, pix_fmt=pix_fmt)
    info = probe(path)
    assert (info.width, info.height) == (width, height)
    result = read_frames(path, [0.0, 0.2, 0.44])
    assert result.data.shape == (3, 3, height, width)
    assert indices(result.data) == [0, 5, 11]


def test_single_frame_video_serves_every_request(tmp_path: Path) -> None:
    path = write_video(tmp_path / "one.mp4", n_frames=1)
    info = probe(path)
    assert info.n_frames == 1
    result = read_frames(path, uniform_timestamps(info, 4))
    assert indices(result.data) == [0, 0, 0, 0]


@pytest.mark.slow
def test_4k_video_is_decoded_in_bounded_memory(tmp_path: Path) -> None:
    path = write_video(tmp_path / "uhd.mp4", n_frames=6, width=3840, height=2160, options={"preset": "ultrafast"})
    info = probe(path)
    assert (info.width, info.height) == (3840, 2160)
    result = read_frames(path, uniform_timestamps(info, 3), size=112)
    assert result.data.shape == (3, 3, 112, 199)
    assert indices(result.data) == [0, 2, 5]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VideoDecodeError, match=r"nope\.mp4: file does not exist"):
        probe(tmp_path / "nope.mp4")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(VideoDecodeError, match=r"empty\.mp4: file is empty"):
        read_frames(path, [0.0])


def test_text_file_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoDecodeError, match=r"notes\.mp4: not a readable video container"):
        probe(path)


def test_audio_only_file(tmp_path: Path) -> None:
    path = write_audio_only(tmp_path / "song.m4a")
    with pytest.raises(VideoDecodeError, match=r"song\.m4a: no video stream \(streams: audio\)"):
        probe(path)
    with pytest.raises(VideoDecodeError, match="no video stream"):
        read_frames(path, [0.0])


def test_truncated_file_without_index(tmp_path: Path) -> None:
    path = write_video(tmp_path / "full.mp4", n_frames=50)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # the index (moov) is at the end
    with pytest.raises(VideoDecodeError, match=r"cut\.mp4: not a readable video container"):
        probe(cut)


def test_truncated_file_with_index_refuses_missing_frames(tmp_path: Path) -> None:
    path = write_video(
        tmp_path / "full.mp4",
        n_frames=100,
        width=128,
        height=96,
        container_options={"movflags": "+faststart"},
        options={"g": "10"},
    )
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.5)])
    info = probe(cut)  # the header still declares 100 frames
    assert info.n_frames == 100
    assert indices(read_frames(cut, [0.0, 0.4]).data) == [0, 10]
    with pytest.raises(VideoDecodeError, match=r"cut\.mp4: truncated"):
        read_frames(cut, [0.0, 3.9])


def test_bad_arguments_are_rejected_before_decoding(bframes_clip: Path) -> None:
    with pytest.raises(ValueError, match="timestamps is empty"):
        read_frames(bframes_clip, [])
    with pytest.raises(ValueError, match="mode must be"):
        read_frames(bframes_clip, [0.0], mode="turbo")  # type: ignore[arg-type]


def test_directory_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(VideoDecodeError, match="not a regular file"):
        probe(tmp_path)
