"""The real `forwardlab` entry point, run as a user runs it: exit codes, JSON, files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from forwardlab import __version__
from tests.support.cli_runner import run
from tests.support.clips import write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("cli") / "clip.mp4", n_frames=50, width=96, height=64)


def test_version_and_help() -> None:
    assert run("--version").stdout.strip() == f"forwardlab {__version__}"
    out = run("--help").stdout
    assert "video" in out and "monitor" in out
    video_help = run("video", "--help").stdout
    for command in ("probe", "frames", "synth", "demo"):
        assert command in video_help


def test_probe_json_reports_each_file_or_its_error(clip: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    result = run("video", "probe", str(clip), str(bad), "--json")
    assert result.returncode == 1
    good, broken = json.loads(result.stdout)
    assert good["n_frames"] == 50 and good["width"] == 96 and good["codec"] == "h264"
    assert broken["path"] == str(bad) and "not a readable video container" in broken["error"]


def test_frames_writes_a_contact_sheet(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    result = run("video", "frames", str(clip), "--sample", "uniform:8", "--size", "48", "--out", str(out))
    assert result.returncode == 0, result.stderr
    image = Image.open(out)
    assert image.width > 8 * 48 and image.height > 48


def test_frames_with_multiview_draws_a_row_per_view(clip: Path, tmp_path: Path) -> None:
    one, many = tmp_path / "one.png", tmp_path / "many.png"
    assert run("video", "frames", str(clip), "--sample", "uniform:4", "--out", str(one)).returncode == 0
    assert run("video", "frames", str(clip), "--sample", "multiview:3x4@10", "--out", str(many)).returncode == 0
    assert Image.open(many).height > 2.5 * Image.open(one).height


def test_user_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run("video", "frames", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "s.png"))
    assert result.returncode == 2
    assert "missing.mp4: file does not exist" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.png").exists()


def test_bad_sample_spec_is_a_usage_error(clip: Path) -> None:
    result = run("video", "frames", str(clip), "--sample", "random:3")
    assert result.returncode == 2
    assert "unknown sample spec 'random:3'" in result.stderr


def test_dataset_import_status_and_sample(tmp_path: Path) -> None:
    root = tmp_path / "data"
    assert run("video", "synth", "--root", str(root), "--per-class", "1", "--seed", "2").returncode == 0
    imported = run("video", "dataset", "import", str(root))
    assert imported.returncode == 0, imported.stderr
    assert (root / "manifest.sqlite").is_file()
    status = run("video", "dataset", "status", str(root), "--json")
    counts = json.loads(status.stdout)
    assert counts["val"]["downloaded"] == 12 and counts["val"]["missing"] == 0
    out = tmp_path / "small.sqlite"
    sampled = run("video", "dataset", "sample", str(root), "--limit", "3", "--out", str(out))
    assert sampled.returncode == 0 and "3 clips" in sampled.stdout
    missing = run("video", "dataset", "status", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no manifest here" in missing.stderr
