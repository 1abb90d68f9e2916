"""Manifests: import a folder or CSV, status from disk, seeded samples, bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from forwardlab.video.data.folder import import_csv, import_folder
from forwardlab.video.data.manifest import Manifest, annotation_records
from forwardlab.video.data.synthetic import generate
from forwardlab.video.data.synthetic_classes import CLASSES
from forwardlab.video.errors import DatasetError
from tests.support.clips import write_video


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate(root, per_class=2, split="val", seed=1)
    return root


def test_synthetic_output_imports_with_split_and_class_from_folders(synthetic_root: Path, tmp_path: Path) -> None:
    manifest = import_folder(synthetic_root, manifest=tmp_path / "m.sqlite")
    records = manifest.records()
    assert len(records) == 2 * len(CLASSES)
    assert {r.label for r in records} == set(CLASSES)
    assert {r.split for r in records} == {"val"}
    assert all(r.status == "downloaded" and r.duration_s and r.codec == "h264" for r in records)
    assert all(r.youtube_id and r.time_end - r.time_start >= 2 for r in records)
    assert manifest.absolute(records[0]).is_file()


def test_ucf_style_folder_without_splits(tmp_path: Path) -> None:
    for label in ("ApplyEyeMakeup", "Archery"):
        (tmp_path / "ucf" / label).mkdir(parents=True)
        for g in range(2):
            write_video(tmp_path / "ucf" / label / f"v_{label}_g0{g}_c01.avi", codec="mpeg4", n_frames=5)
    (tmp_path / "ucf" / "Archery" / ".v_tmp.avi.partial").write_bytes(b"half")
    manifest = import_folder(tmp_path / "ucf")
    assert manifest.path == tmp_path / "ucf" / "manifest.sqlite"
    assert sorted((r.label, r.split) for r in manifest.records()) == [
        ("ApplyEyeMakeup", "all"), ("ApplyEyeMakeup", "all"), ("Archery", "all"), ("Archery", "all"),
    ]  # fmt: skip


def test_status_rebuilds_from_disk(synthetic_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    for src in synthetic_root.rglob("*.mp4"):
        dst = copy / src.relative_to(synthetic_root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
    manifest = import_folder(copy)
    first, second = manifest.records()[:2]
    manifest.absolute(first).unlink()
    manifest.absolute(second).write_bytes(b"\x00" * 500)
    tally = manifest.refresh()
    assert tally == {"missing": 1, "corrupt": 1, "downloaded": 2 * len(CLASSES) - 2}
    by_path = {r.path: r for r in manifest.records()}
    assert by_path[first.path].status == "missing"
    assert by_path[second.path].status == "corrupt" and "not a readable video" in (by_path[second.path].reason or "")


def test_csv_import_with_relative_paths(synthetic_root: Path, tmp_path: Path) -> None:
    clips = sorted(synthetic_root.rglob("*.mp4"))[:3]
    csv_path = tmp_path / "mine.csv"
    csv_path.write_text("path,label\n" + "".join(f"{c},custom_{i % 2}\n" for i, c in enumerate(clips)))
    manifest = import_csv(csv_path)
    assert [r.label for r in manifest.records()] == ["custom_0", "custom_0", "custom_1"]
    assert all(r.status == "downloaded" for r in manifest.records())


def test_stratified_and_limited_samples_are_seeded_manifests(synthetic_root: Path, tmp_path: Path) -> None:
    manifest = import_folder(synthetic_root, manifest=tmp_path / "all.sqlite")
    a = manifest.sample(tmp_path / "a.sqlite", per_class=1, seed=3)
    b = manifest.sample(tmp_path / "b.sqlite", per_class=1, seed=3)
    c = manifest.sample(tmp_path / "c.sqlite", per_class=1, seed=4)
    assert [r.path for r in a.records()] == [r.path for r in b.records()]
    assert [r.path for r in a.records()] != [r.path for r in c.records()]
    assert sorted(r.label for r in a.records()) == sorted(CLASSES)
    reopened = Manifest(tmp_path / "a.sqlite")
    assert reopened.root == manifest.root and reopened.absolute(reopened.records()[0]).is_file()
    limited = manifest.sample(tmp_path / "l.sqlite", limit=5, seed=0)
    assert len(limited) == 5


def test_annotations_become_expected_paths(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "label": ["abseiling", None],
            "youtube_id": ["abc123def45", "zzz"],
            "time_start": [10, 0],
            "time_end": [20, 10],
            "split": ["val", "test"],
            "is_cc": pd.array([1, pd.NA], dtype="Int8"),
        }
    )
    first, second = annotation_records(table, "kinetics400/val", source="cvdf")
    assert first.path == "kinetics400/val/abseiling/abc123def45_000010_000020.mp4" and first.is_cc == 1
    assert second.path == "kinetics400/val/unlabelled/zzz_000000_000010.mp4" and second.is_cc is None


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a folder"):
        import_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no video files"):
        import_folder(tmp_path / "empty")
    (tmp_path / "loose").mkdir()
    write_video(tmp_path / "loose" / "a.mp4", n_frames=2)
    with pytest.raises(DatasetError, match=r"not inside a class folder: a\.mp4"):
        import_folder(tmp_path / "loose")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("file,class\nx.mp4,a\n")
    with pytest.raises(DatasetError, match="missing column"):
        import_csv(bad_csv)
    bad_csv.write_text("path,label\nx.mp4,\n,b\n")
    with pytest.raises(DatasetError, match="line 2: empty label; line 3: empty path"):
        import_csv(bad_csv)
    not_db = tmp_path / "x.sqlite"
    not_db.write_text("hello")
    with pytest.raises(DatasetError, match="not a forwardlab manifest"):
        Manifest(not_db)
    with pytest.raises(DatasetError, match="no manifest here"):
        Manifest(tmp_path / "missing.sqlite")


def test_sample_refuses_empty_pools_and_bad_sizes(synthetic_root: Path, tmp_path: Path) -> None:
    manifest = import_folder(synthetic_root, manifest=tmp_path / "m.sqlite")
    with pytest.raises(DatasetError, match="--per-class K or --limit N"):
        manifest.sample(tmp_path / "s.sqlite")
    with pytest.raises(DatasetError, match="no clips to sample"):
        manifest.sample(tmp_path / "s.sqlite", per_class=1, split="train")
