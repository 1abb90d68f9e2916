"""Explore on a tiny dataset whose oddities are planted: short, few-frame, huge, variable-rate, corrupt."""

from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path

import pytest

from forwardlab.video.data.manifest import ClipRecord, Manifest
from forwardlab.video.errors import VideoDecodeError
from forwardlab.video.explore import ExploreResult, OutlierRules, RecipeSpan, compute_stats, explore, gallery_sample
from forwardlab.video.io import probe
from tests.support.browser import ARTIFACTS, open_page
from tests.support.cli_runner import run as run_cli
from tests.support.clips import write_video

BROKEN = b"\x00not a video at all" * 40


def _row(i: int, label: str | None, **fields: object) -> ClipRecord:
    known = {"status": "downloaded", "duration_s": 10.0, "fps": 30.0, "n_frames": 300, "width": 640, "height": 360,
             "codec": "h264", "has_audio": True, "variable_frame_rate": False}  # fmt: skip
    return ClipRecord(path=f"c{i}.mp4", label=label, split="val", source="test", **{**known, **fields})  # type: ignore[arg-type]


def test_statistics_from_rows_whose_metadata_is_known(tmp_path: Path) -> None:
    manifest = Manifest.create(tmp_path / "m.sqlite", tmp_path)
    records = [
        *(_row(i, "a") for i in range(3)),
        _row(3, "b", duration_s=1.0, n_frames=30),
        _row(4, "b", status="missing", reason="youtube private: gone", duration_s=None),
        _row(5, "b", status="missing", reason="youtube private: gone", duration_s=None),
        _row(6, None, width=3840, height=2160, variable_frame_rate=True, fps=120.0, is_cc=1),
    ]
    stats = compute_stats(manifest, records, recipes=[RecipeSpan(16, 8.0, ("tiny",)), RecipeSpan(32, 3.0, ("x",))])
    assert stats.classes == {"(no label)": {"val": 1}, "a": {"val": 3}, "b": {"val": 3}}
    assert stats.usable_per_class == {"(no label)": 1, "a": 3, "b": 1}
    assert stats.reasons == [("missing", "youtube private: gone", 2)]
    assert stats.probed == 5
    assert {(o.path, o.kind) for o in stats.outliers} == {
        ("c3.mp4", "too_short"),
        ("c6.mp4", "huge_resolution"),
        ("c6.mp4", "variable_frame_rate"),
        ("c6.mp4", "unusual_fps"),
    }
    assert [n for _, n in stats.recipes] == [1, 5]  # 2 s and 10.7 s spans
    assert stats.categories["is_cc"] == {"unknown": 6, "yes": 1}
    assert stats.to_dict()["distributions"]["duration_s"]["max"] == 10.0


def test_gallery_sample_spreads_over_the_classes() -> None:
    records = [_row(i, f"class{i % 40:02d}") for i in range(400)]
    picked = gallery_sample(records, 20, seed=1)
    assert len(picked) == 20 and len({r.label for r in picked}) == 20
    few = gallery_sample(records[:6], 4)
    assert len(few) == 4 and len({r.label for r in few}) == 4
    assert gallery_sample([_row(0, "a", status="corrupt")], 5) == []


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<split>/<class>/<clip>: 2 train clips per class, 1 val clip per class, each odd in its own way."""
    root = tmp_path_factory.mktemp("odd") / "odd"
    for folder in ("train/alpha", "train/beta", "val/alpha", "val/beta"):
        (root / folder).mkdir(parents=True)
    write_video(root / "train/alpha/short.mp4", n_frames=30, fps=25)  # 1.2 s: too short
    write_video(root / "train/alpha/fine.mp4", n_frames=60, fps=25, audio=True)  # 2.4 s, nothing odd
    pts_ms = [0, 40, 80, 200, 240, 500, 520, 540, 900, 1000, 1040, 1080, 1500, 1540, 1580, 1620, 2000, 2400]
    write_video(root / "train/beta/vfr.mkv", n_frames=len(pts_ms), fps=25, pts=pts_ms, time_base=Fraction(1, 1000),
                options={"bf": "0"})  # fmt: skip
    write_video(root / "train/beta/tiny.mp4", n_frames=8, fps=25)  # 8 frames: too few, too short
    write_video(root / "val/beta/huge.mp4", n_frames=60, fps=25, width=1936, height=1096,
                options={"preset": "ultrafast"})  # fmt: skip
    (root / "val/alpha/broken.mp4").write_bytes(BROKEN)
    return root


@pytest.fixture(scope="module")
def explored(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> ExploreResult:
    return explore(dataset, tmp_path_factory.mktemp("explore"), workers=2, gallery_clips=10)


@pytest.mark.slow
def test_counts_per_class_and_split_and_the_corrupt_clip_with_its_reason(
    explored: ExploreResult, dataset: Path
) -> None:
    stats = explored.stats
    assert stats.n_clips == 6
    assert stats.classes == {"alpha": {"train": 2, "val": 1}, "beta": {"train": 2, "val": 1}}
    assert stats.usable_per_class == {"alpha": 2, "beta": 3}
    assert stats.splits["val"] == {"missing": 0, "downloaded": 1, "corrupt": 1}
    assert stats.splits["train"] == {"missing": 0, "downloaded": 4, "corrupt": 0}
    with pytest.raises(VideoDecodeError) as exc:
        probe(dataset / "val/alpha/broken.mp4")
    assert stats.reasons == [("corrupt", exc.value.reason, 1)]
    figures = json.loads(explored.json.read_text())
    assert figures["clips"] == 6 and figures["splits"]["val"]["corrupt"] == 1
    assert figures["unusable_reasons"] == [{"status": "corrupt", "reason": exc.value.reason, "clips": 1}]
    assert exc.value.reason in explored.html.read_text()


@pytest.mark.slow
def test_planted_outliers_are_found_and_nothing_else(explored: ExploreResult) -> None:
    found = {(Path(o.path).name, o.kind) for o in explored.stats.outliers}
    assert found == {
        ("short.mp4", "too_short"),
        ("tiny.mp4", "too_short"),
        ("tiny.mp4", "too_few_frames"),
        ("vfr.mkv", "variable_frame_rate"),
        ("huge.mp4", "huge_resolution"),
    }
    with explored.outliers_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert {(Path(r["path"]).name, r["kind"]) for r in rows} == found
    assert explored.stats.categories["audio"] == {"no audio": 4, "audio": 1}
    assert explored.stats.categories["frame_rate_mode"] == {"constant": 4, "variable": 1}


@pytest.mark.slow
def test_thresholds_are_settings(dataset: Path, tmp_path: Path) -> None:
    result = explore(
        dataset, tmp_path, workers=2, gallery_clips=0, rules=OutlierRules(min_duration_s=0.1, max_short_side=2000)
    )
    kinds = {o.kind for o in result.stats.outliers}
    assert "too_short" not in kinds and "huge_resolution" not in kinds


@pytest.mark.slow
def test_recipe_spans_count_the_clips_a_model_would_pad(explored: ExploreResult) -> None:
    by_recipe = {(r.frames_per_clip, r.fps): n for r, n in explored.stats.recipes}
    durations = sorted(explored.stats.numeric["duration_s"])
    assert by_recipe[(16, 8.0)] == sum(d < 2.0 for d in durations) == 2  # tiny models: 2.0 s spans
    assert by_recipe[(128, 15.0)] == 5  # s3d needs 8.5 s: every clip is shorter


@pytest.mark.slow
def test_only_clips_without_metadata_are_probed_and_the_results_are_kept(dataset: Path, tmp_path: Path) -> None:
    manifest = Manifest.create(tmp_path / "m.sqlite", dataset)
    manifest.upsert(
        [
            ClipRecord(path="train/alpha/fine.mp4", label="alpha", split="train", source="test"),
            ClipRecord(path="val/alpha/broken.mp4", label="alpha", split="val", source="test"),
            # metadata known, file absent (a manifest from elsewhere): counted as it says, not re-checked
            ClipRecord(
                path="val/gamma/elsewhere.mp4",
                label="gamma",
                split="val",
                source="test",
                status="downloaded",
                duration_s=10.0,
                fps=30.0,
                n_frames=300,
                width=640,
                height=360,
                codec="h264",
                has_audio=True,
                variable_frame_rate=False,
            ),
        ]
    )
    first = explore(manifest, tmp_path / "out", workers=2, gallery_clips=5)
    assert first.probed_now == 2
    stored = {r.path: r for r in Manifest(tmp_path / "m.sqlite").records()}
    assert stored["train/alpha/fine.mp4"].status == "downloaded" and stored["train/alpha/fine.mp4"].n_frames == 60
    assert stored["val/alpha/broken.mp4"].status == "corrupt"
    assert stored["val/gamma/elsewhere.mp4"].status == "downloaded"
    again = explore(manifest, tmp_path / "out", workers=2, gallery_clips=5)
    assert again.probed_now == 0
    assert again.stats.usable_per_class == {"alpha": 1, "gamma": 1}
    page = again.html.read_text()
    assert "no thumbnail:" in page and "elsewhere.mp4" in page


@pytest.mark.slow
def test_explore_page_in_a_browser_and_its_class_filter(explored: ExploreResult) -> None:
    thumbs = list((explored.html.parent / "explore_files").glob("*.webp"))
    assert len(thumbs) == 5  # every decodable clip, the corrupt one has no row in the sample
    with open_page(explored.html, screenshot=ARTIFACTS / "explore.png") as page:
        assert page.locator("#gallery tbody tr:visible").count() == 5
        page.select_option("#gallery select.f-class", "alpha")
        assert page.locator("#gallery tbody tr:visible").count() == 2
        assert page.locator("#gallery .f-count").inner_text() == "2 of 5 clips shown"
        assert page.locator(".plots img").count() >= 8


@pytest.mark.slow
def test_cli_prints_the_summary_and_refuses_a_missing_dataset(dataset: Path, tmp_path: Path) -> None:
    done = run_cli("video", "explore", str(dataset), "--out", str(tmp_path / "x"), "--workers", "2", "--gallery", "2")
    assert done.returncode == 0, done.stderr
    assert "variable_frame_rate" in done.stdout and "huge_resolution" in done.stdout
    assert (tmp_path / "x" / "explore.html").is_file()
    missing = run_cli("video", "explore", str(tmp_path / "nope"), "--out", str(tmp_path / "y"))
    assert missing.returncode == 2
    assert "nope: no such manifest file or dataset folder" in missing.stderr
