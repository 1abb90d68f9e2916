"""The Kinetics commands end to end against a local fake CVDF mirror and a local 'YouTube'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forwardlab.video.data.manifest import Manifest
from tests.support.cli_runner import run
from tests.support.clips import write_video
from tests.support.fake_cvdf import LABELS, build_fake_cvdf, make_videos
from tests.support.http_server import serve_directory


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return {"FORWARDLAB_HOME": str(tmp_path / "home")}


def test_cvdf_then_youtube_then_status_and_sample(tmp_path: Path, home: dict[str, str]) -> None:
    fake = build_fake_cvdf(tmp_path / "s3", make_videos(tmp_path / "videos", 10))
    (tmp_path / "s3" / "yt").mkdir()
    write_video(tmp_path / "s3" / "yt" / "missingCLIP.mp4", n_frames=160, fps=10, options={"g": "10"})
    root = tmp_path / "data"
    common = ["--root", str(root), "-v", "400", "--split", "val", "--annotations", str(fake.annotations)]
    with serve_directory(fake.root) as server:
        fake.write_list(server.url)
        cvdf = run("video", "kinetics", "download", *common, "--mirror", f"{server.url}/kinetics", env=home)
        assert cvdf.returncode == 0, cvdf.stderr
        manifest = Manifest(root / "kinetics400" / "manifest.sqlite")
        assert manifest.counts()["val"] == {"missing": 1, "downloaded": 9, "corrupt": 0}
        assert {r.source for r in manifest.records(status="downloaded")} == {"cvdf"}

        template = f"{server.url}/yt/{{youtube_id}}.mp4"
        yt = run("video", "kinetics", "download", *common, "--source", "youtube", "--url-template", template, env=home)
        assert yt.returncode == 0, yt.stderr
    (fetched,) = [r for r in manifest.records() if r.youtube_id == "missingCLIP"]
    assert fetched.status == "downloaded" and fetched.source == "youtube"
    assert fetched.duration_s == pytest.approx(10, abs=1.0)
    assert manifest.counts()["val"]["downloaded"] == 10

    status = run("video", "dataset", "status", str(root / "kinetics400"), "--json", env=home)
    assert json.loads(status.stdout)["val"] == {"missing": 0, "downloaded": 10, "corrupt": 0}
    out = tmp_path / "small.sqlite"
    sample = run("video", "kinetics", "sample", *common, "--per-class", "1", "--out", str(out), env=home)
    assert sample.returncode == 0, sample.stderr
    assert sorted(r.label for r in Manifest(out).records()) == sorted(LABELS)


def test_youtube_failures_are_recorded_with_reasons(tmp_path: Path, home: dict[str, str]) -> None:
    fake = build_fake_cvdf(tmp_path / "s3", make_videos(tmp_path / "videos", 4), n_partitions=1, per_partition=3)
    root = tmp_path / "data"
    with serve_directory(tmp_path / "s3") as server:
        result = run(
            "video", "kinetics", "download", "--root", str(root), "--split", "val", "--annotations",
            str(fake.annotations), "--source", "youtube", "--limit", "2", "--url-template",
            f"{server.url}/nothing/{{youtube_id}}.mp4", env=home,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 failure(s)" in result.stdout
    failures = (root / "kinetics400" / "val" / "failures.csv").read_text().splitlines()
    assert failures[0].startswith("label,youtube_id,time_start,time_end,category,reason") and len(failures) == 3
    missing = Manifest(root / "kinetics400" / "manifest.sqlite").records(status="missing")
    assert sum((r.reason or "").startswith("youtube unavailable") for r in missing) == 2


def test_bad_arguments_are_one_line_errors(tmp_path: Path, home: dict[str, str]) -> None:
    bad_version = run("video", "kinetics", "annotations", "-v", "500", env=home)
    assert bad_version.returncode == 2 and "400, 600, 700" in bad_version.stderr
    bad_split = run("video", "kinetics", "annotations", "--split", "dev", env=home)
    assert bad_split.returncode == 2 and "train, val, test" in bad_split.stderr
    offline = run("video", "kinetics", "annotations", "--offline", env=home)
    assert offline.returncode == 2 and "--annotations PATH" in offline.stderr
    bad_source = run("video", "kinetics", "download", "--root", str(tmp_path), "--source", "ftp", env=home)
    assert bad_source.returncode == 2 and "unknown source 'ftp'" in bad_source.stderr
