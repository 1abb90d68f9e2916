"""Kinetics annotations, label maps and CVDF downloads, against the real annotation files and a local mirror.

Downloads run over real sockets against `tests.support.http_server`, which cuts connections and fails requests
on cue; the request log shows how each recovery happened (a Range request, no request at all, ...).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import os
import shutil
import tarfile
from collections import namedtuple
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from forwardlab.download import cache_dir, fetch
from forwardlab.video.data.kinetics import (
    STATE_FILE,
    CvdfResult,
    download_cvdf,
    load_annotations,
    load_label_map,
)
from forwardlab.video.data.layout import UNLABELLED, clip_path, dataset_dir, parse_clip_name
from forwardlab.video.errors import DatasetError, DownloadError
from forwardlab.video.io import probe
from tests.support.fake_cvdf import LABELS, OFFICIAL, FakeCvdf, build_fake_cvdf, make_videos, write_tarball
from tests.support.http_server import FileServer, serve_directory, unused_url
from tests.support.kinetics_files import (
    SPLITS,
    VERSIONS,
    AnnotationFile,
    kinetics400_classes,
    write_stand_in,
)

SHARED = Path(
    os.environ.get("FORWARDLAB_SHARED_DATA") or Path(__file__).resolve().parents[3].parent / "shared" / "data"
)
KINETICS = SHARED / "kinetics"


@pytest.fixture(autouse=True)
def forwardlab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("FORWARDLAB_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    return make_videos(tmp_path_factory.mktemp("videos"), 10)


@dataclass(frozen=True)
class Mirror:
    fake: FakeCvdf
    server: FileServer
    url: str


DiskUsage = namedtuple("DiskUsage", "total used free")


@pytest.fixture
def mirror(tmp_path: Path, videos: list[bytes]) -> Iterator[Mirror]:
    """A served fake CVDF tree whose tarball list points at the local server itself."""
    fake = build_fake_cvdf(tmp_path / "s3", videos)
    with serve_directory(fake.root) as server:
        fake.write_list(server.url)
        yield Mirror(fake, server, f"{server.url}/kinetics")


def download(mirror: Mirror, root: Path, **kwargs: object) -> CvdfResult:
    annotations = load_annotations("400", "val", source=mirror.fake.annotations)
    return download_cvdf(root, "400", "val", annotations=annotations, mirror=mirror.url, **kwargs)  # type: ignore[arg-type]


def clip_files(split_dir: Path) -> list[Path]:
    return sorted(p for p in split_dir.rglob("*") if p.is_file() and not _hidden(p, split_dir))


def _hidden(path: Path, top: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(top).parts)


def assert_layout_holds(fake: FakeCvdf, split_dir: Path, partitions: list[str]) -> None:
    """Each clip of `partitions` is at its layout path exactly once, byte-identical; no partial files."""
    for clip in (c for c in fake.clips if c.partition in partitions):
        path = clip_path(split_dir, clip.label, clip.key)
        assert path.read_bytes() == clip.data
    names = [p.name for p in clip_files(split_dir)]
    assert len(names) == len(set(names))
    assert not [p for p in split_dir.rglob("*.partial") if ".cvdf" not in p.parts]


# ------------------------------------------------------------------------------------------------
# The annotation files (the official ones where ../shared has them)
# ------------------------------------------------------------------------------------------------

REAL_FILES = [
    AnnotationFile("400", "val", 19_906, 400),
    AnnotationFile("400", "test", 38_685, 0),
    AnnotationFile("600", "val", 30_000, 600),
    AnnotationFile("600", "test", 72_924, 0),
    AnnotationFile("700", "val", 34_173, 700),
    AnnotationFile("700", "test", 67_714, 0),
]


@pytest.fixture(scope="module")
def annotations(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[tuple[str, str], AnnotationFile]]:
    """The official files and their published counts; on a clone without them, seeded stand-ins in their formats."""
    if KINETICS.is_dir():
        return KINETICS, {(f.version, f.split): f for f in REAL_FILES}
    root = tmp_path_factory.mktemp("kinetics")
    return root, {(f.version, f.split): f for f in write_stand_in(root)}


@pytest.mark.parametrize(("version", "split"), [(v, s) for v in VERSIONS for s in SPLITS])
def test_annotation_files_parse_to_their_counts(
    annotations: tuple[Path, dict[tuple[str, str], AnnotationFile]], version: str, split: str
) -> None:
    source, expected = annotations
    rows, classes = expected[version, split].rows, expected[version, split].classes
    frame = load_annotations(version, split, source=source)
    assert len(frame) == rows
    assert frame["label"].nunique() == classes
    assert set(frame["split"]) == {split}  # K700's 'validate' arrives as 'val'
    assert (frame["time_end"] > frame["time_start"]).all()
    assert frame["youtube_id"].str.len().min() > 0
    if classes:
        assert set(frame["label"]) <= set(load_label_map(version, source=source))
    else:
        assert frame["label"].isna().all()


def test_k400_val_keeps_the_creative_commons_flag(
    annotations: tuple[Path, dict[tuple[str, str], AnnotationFile]],
) -> None:
    frame = load_annotations("400", "val", source=annotations[0] / "kinetics-400_val.csv")
    assert str(frame["is_cc"].dtype) == "Int8"
    assert set(frame["is_cc"]) == {0, 1}
    assert "passing American football (in game)" in set(frame["label"])


@pytest.mark.parametrize("version", VERSIONS)
def test_label_maps_are_sorted_and_complete(
    annotations: tuple[Path, dict[tuple[str, str], AnnotationFile]], version: str
) -> None:
    labels = load_label_map(version, source=annotations[0])
    assert len(labels) == int(version) == len(set(labels))
    assert labels == sorted(labels)
    if version == "400":  # DeepMind's list is torchvision's: I3D's logits and the zoo's share one index
        assert labels == kinetics400_classes()


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------


def test_unknown_version_or_split_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"'500'.*400, 600, 700"):
        load_annotations("500", "val", source=tmp_path)
    with pytest.raises(DatasetError, match=r"'validate'.*train, val, test"):
        load_annotations("400", "validate", source=tmp_path)
    with pytest.raises(DatasetError, match="'700_2020'"):
        load_label_map("700_2020")
    with pytest.raises(DatasetError, match="'dev'"):
        download_cvdf(tmp_path, "400", "dev", annotations=pd.DataFrame())


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_malformed_rows_are_reported_with_line_numbers(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "val.csv",
        "label,youtube_id,time_start,time_end,split\n"
        "a,abcdefghijk,0,10,val\n"
        "a,abcdefghijk,1O,10,val\n"  # line 3: not a number
        "a,abcdefghijk,20,20,val\n"  # line 4: empty range
        "a,,0,10,val\n"  # line 5: no id
        "a,abcdefghijk,0,10,train\n",  # line 6: another split's row
    )
    with pytest.raises(DatasetError) as caught:
        load_annotations("400", "val", source=path)
    message = str(caught.value)
    assert str(path) in message and "4 malformed row(s)" in message
    for fragment in ("line 3: time_start '1O'", "line 4: time_end '20' is not after", "line 5: youtube_id", "line 6"):
        assert fragment in message


def test_many_malformed_rows_are_summarised_after_five(tmp_path: Path) -> None:
    rows = "".join(f"a,id{i},{i + 5},{i},val\n" for i in range(9))
    path = write_csv(tmp_path / "val.csv", "label,youtube_id,time_start,time_end,split\n" + rows)
    with pytest.raises(DatasetError, match=r"9 malformed row\(s\): line 2: .*line 6: .*\(and 4 more\)"):
        load_annotations("400", "val", source=path)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "val.csv", "label,youtube_id,time_start,split\na,abcdefghijk,0,val\n")
    with pytest.raises(DatasetError, match=r"val\.csv: missing column\(s\) time_end"):
        load_annotations("400", "val", source=path)


def test_folder_source_finds_deepmind_names_and_unlabelled_files(tmp_path: Path) -> None:
    write_csv(tmp_path / "validate.csv", "label,youtube_id,time_start,time_end,split\nx y,abcdefghijk,3,13,validate\n")
    write_csv(tmp_path / "test.csv", "youtube_id,time_start,time_end,split\n\nabcdefghijk,3,13,test\n")
    val = load_annotations("700", "val", source=tmp_path)
    assert val.to_dict("records") == [
        {"label": "x y", "youtube_id": "abcdefghijk", "time_start": 3, "time_end": 13, "split": "val"}
    ]
    test = load_annotations("700", "test", source=tmp_path)
    assert test["label"].isna().all() and len(test) == 1
    with pytest.raises(DatasetError, match=r"no Kinetics-700 train annotations.*train\.csv"):
        load_annotations("700", "train", source=tmp_path)


# ------------------------------------------------------------------------------------------------
# Annotation downloads, cache and offline use
# ------------------------------------------------------------------------------------------------


def serve_cvdf_annotations(folder: Path, csv: Path) -> None:
    target = folder / "kinetics" / "400" / "annotations" / "val.csv"
    target.parent.mkdir(parents=True)
    shutil.copy(csv, target)


def test_annotations_are_cached_then_used_without_network(mirror: Mirror, forwardlab_home: Path) -> None:
    serve_cvdf_annotations(mirror.fake.root, mirror.fake.annotations)
    fetched = load_annotations("400", "val", mirror=mirror.url)
    assert (forwardlab_home / "kinetics" / "400" / "annotations" / "val.csv").is_file()
    assert mirror.server.requests_for("/kinetics/400/annotations/val.csv")
    closed = unused_url()
    pd.testing.assert_frame_equal(load_annotations("400", "val", mirror=closed, archive=None, retries=0), fetched)
    pd.testing.assert_frame_equal(load_annotations("400", "val", offline=True), fetched)
    assert len(fetched) == len(mirror.fake.annotated()) + 1


def test_no_network_and_no_cache_explains_how_to_provide_the_file(forwardlab_home: Path) -> None:
    closed = unused_url()
    with pytest.raises(DatasetError) as caught:
        load_annotations("400", "val", mirror=closed, archive=f"{closed}/kinetics{{segment}}.tar.gz", retries=0)
    message = str(caught.value)
    assert f"{closed}/400/annotations/val.csv" in message
    assert f"{closed}/kinetics400.tar.gz" in message
    assert "--annotations PATH" in message
    with pytest.raises(DatasetError, match=r"offline and not cached at .*val\.csv.*--annotations"):
        load_annotations("400", "val", offline=True)


def test_deepmind_archive_is_the_fallback(tmp_path: Path, forwardlab_home: Path) -> None:
    header = "label,youtube_id,time_start,time_end,split\n"
    write_tarball(
        tmp_path / "dm" / "kinetics700_2020.tar.gz",
        [
            ("kinetics700_2020/validate.csv", (header + "a,abcdefghijk,0,10,validate\n").encode()),
            ("kinetics700_2020/train.csv", (header + "b,bcdefghijkl,5,15,train\n").encode()),
            ("kinetics700_2020/validate.json", b"{}"),
        ],
    )
    with serve_directory(tmp_path) as server:
        val = load_annotations("700", "val", mirror=server.url, archive=f"{server.url}/dm/kinetics{{segment}}.tar.gz")
        assert [r.status for r in server.requests_for("/700_2020/annotations/val.csv")] == [404]
    assert list(val["label"]) == ["a"] and list(val["split"]) == ["val"]
    cached = forwardlab_home / "kinetics" / "700" / "annotations"
    assert sorted(p.name for p in cached.iterdir()) == ["train.csv", "val.csv"]
    assert list(load_annotations("700", "train", offline=True)["label"]) == ["b"]


def test_label_map_is_fetched_cached_and_checked(tmp_path: Path, forwardlab_home: Path) -> None:
    labels = [f"class {i:03d}" for i in range(400)]
    (tmp_path / "label_map.txt").write_text("\n".join(labels) + "\n")
    (tmp_path / "short.txt").write_text("a\nb\n")
    with serve_directory(tmp_path) as server:
        assert load_label_map("400", url=f"{server.url}/label_map.txt") == labels
        assert load_label_map("400", offline=True) == labels
        with pytest.raises(DatasetError, match=r"short\.txt: not a Kinetics-600 label map: 2 classes"):
            load_label_map("600", source=tmp_path / "short.txt")


def test_label_map_falls_back_to_sorted_annotation_labels(mirror: Mirror, caplog: pytest.LogCaptureFixture) -> None:
    serve_cvdf_annotations(mirror.fake.root, mirror.fake.annotations)
    with caplog.at_level(logging.WARNING):
        labels = load_label_map("400", url=f"{mirror.server.url}/nowhere.txt", mirror=mirror.url, archive=None)
    assert labels == sorted(LABELS)
    assert "404" in caplog.text and "3 labels of the val annotations" in caplog.text


def test_label_map_unavailable_everywhere_is_an_error() -> None:
    with pytest.raises(DatasetError, match="label map unavailable: offline"):
        load_label_map("600", offline=True)


# ------------------------------------------------------------------------------------------------
# fetch
# ------------------------------------------------------------------------------------------------

BLOB = bytes(range(256)) * 800  # 200 KiB


@pytest.fixture
def blob_server(tmp_path: Path) -> Iterator[FileServer]:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "blob.bin").write_bytes(BLOB)
    with serve_directory(tmp_path / "www") as server:
        yield server


def test_cache_dir_follows_forwardlab_home(forwardlab_home: Path) -> None:
    assert cache_dir() == forwardlab_home and forwardlab_home.is_dir()


def test_fetch_resumes_a_cut_connection_with_range(blob_server: FileServer, tmp_path: Path) -> None:
    blob_server.cut_after("/blob.bin", 50_000)
    seen: list[tuple[int, int]] = []
    dest = fetch(
        f"{blob_server.url}/blob.bin",
        tmp_path / "out" / "blob.bin",
        backoff_s=0.01,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert dest.read_bytes() == BLOB
    first, second = blob_server.requests_for("/blob.bin")
    assert first.range is None and second.status == 206
    assert second.range is not None and int(second.range.removeprefix("bytes=").rstrip("-")) > 0
    assert seen[-1] == (len(BLOB), len(BLOB))
    assert not (tmp_path / "out" / ".blob.bin.partial").exists()


def test_fetch_restarts_when_the_server_ignores_range(blob_server: FileServer, tmp_path: Path) -> None:
    blob_server.ignore_range("/blob.bin")
    (tmp_path / ".blob.bin.partial").write_bytes(b"stale bytes from another file")
    assert fetch(f"{blob_server.url}/blob.bin", tmp_path / "blob.bin").read_bytes() == BLOB
    assert [r.status for r in blob_server.requests] == [200]


def test_fetch_treats_416_on_a_complete_partial_as_done(blob_server: FileServer, tmp_path: Path) -> None:
    (tmp_path / ".blob.bin.partial").write_bytes(BLOB)
    assert fetch(f"{blob_server.url}/blob.bin", tmp_path / "blob.bin").read_bytes() == BLOB
    assert [(r.range, r.status) for r in blob_server.requests] == [(f"bytes={len(BLOB)}-", 416)]


def test_fetch_retries_5xx_and_429(blob_server: FileServer, tmp_path: Path) -> None:
    blob_server.fail("/blob.bin", 503, times=2)
    blob_server.fail("/blob.bin", 429)
    assert fetch(f"{blob_server.url}/blob.bin", tmp_path / "blob.bin", backoff_s=0.01).read_bytes() == BLOB
    assert [r.status for r in blob_server.requests] == [503, 503, 429, 200]


def test_fetch_gives_up_after_its_retries(blob_server: FileServer, tmp_path: Path) -> None:
    blob_server.fail("/blob.bin", 500, times=10)
    with pytest.raises(DownloadError, match=r"gave up after 3 failed attempts; last: HTTP 500"):
        fetch(f"{blob_server.url}/blob.bin", tmp_path / "blob.bin", retries=2, backoff_s=0.01)
    assert len(blob_server.requests) == 3


def test_fetch_retries_a_server_that_times_out(blob_server: FileServer, tmp_path: Path) -> None:
    blob_server.delay("/blob.bin", 0.5)
    with pytest.raises(DownloadError, match=r"gave up after 2 failed attempts; last: ReadTimeout"):
        fetch(f"{blob_server.url}/blob.bin", tmp_path / "blob.bin", retries=1, backoff_s=0.01, timeout_s=0.05)


@pytest.mark.parametrize("status", [404, 403, 401])
def test_fetch_does_not_retry_client_errors(blob_server: FileServer, tmp_path: Path, status: int) -> None:
    blob_server.fail("/blob.bin", status)
    url = f"{blob_server.url}/blob.bin"
    with pytest.raises(DownloadError, match=rf"^{url}: HTTP {status}") as caught:
        fetch(url, tmp_path / "blob.bin", backoff_s=0.01)
    assert caught.value.url == url
    assert len(blob_server.requests) == 1


def test_fetch_checks_sha256_and_size(blob_server: FileServer, tmp_path: Path) -> None:
    url, dest = f"{blob_server.url}/blob.bin", tmp_path / "out" / "blob.bin"
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fetch(url, dest, sha256="0" * 64)
    with pytest.raises(DownloadError, match=r"size mismatch: server has 204800 bytes, expected 10"):
        fetch(url, dest, expected_size=10)
    assert list(dest.parent.iterdir()) == []
    digest = hashlib.sha256(BLOB).hexdigest()
    assert fetch(url, dest, sha256=digest, expected_size=len(BLOB)).read_bytes() == BLOB


def test_fetch_keeps_a_complete_destination_without_network(tmp_path: Path) -> None:
    dest = tmp_path / "blob.bin"
    dest.write_bytes(BLOB)
    digest = hashlib.sha256(BLOB).hexdigest()
    assert fetch(f"{unused_url()}/blob.bin", dest, sha256=digest, retries=0) == dest


# ------------------------------------------------------------------------------------------------
# CVDF downloads
# ------------------------------------------------------------------------------------------------


def test_full_download_puts_every_clip_in_the_layout(mirror: Mirror, tmp_path: Path) -> None:
    fake, root = mirror.fake, tmp_path / "data"
    progress: list[tuple[int, int]] = []
    result = download(mirror, root, progress=lambda done, total: progress.append((done, total)))
    split_dir = dataset_dir(root, "400") / "val"
    assert result.complete and sorted(result.done) == list(fake.partitions) and not result.failed
    assert result.n_extracted == len(fake.clips) and result.already_present == 0
    assert_layout_holds(fake, split_dir, list(fake.partitions))
    for clip in fake.annotated():
        assert probe(clip_path(split_dir, clip.label, clip.key)).n_frames > 0
    [stray] = result.unannotated
    assert stray.path.parent.name == UNLABELLED and stray.label is None
    assert len(clip_files(split_dir)) == len(fake.clips)
    assert json.loads((split_dir / STATE_FILE).read_text())["completed"] == list(fake.partitions)
    assert not list((split_dir / ".cvdf").glob("*.tar.gz"))
    assert progress[-1] == (3, 3)


def test_rerun_after_completion_downloads_nothing(mirror: Mirror, tmp_path: Path) -> None:
    download(mirror, tmp_path)
    mirror.server.clear_log()
    result = download(mirror, tmp_path)
    assert result.skipped == list(mirror.fake.partitions) and result.complete and not result.extracted
    assert not [r for r in mirror.server.requests if r.path.endswith(".tar.gz")]


def test_cut_connection_mid_tarball_resumes_with_range(mirror: Mirror, tmp_path: Path) -> None:
    fake, path = mirror.fake, mirror.fake.url_path("part_1.tar.gz")
    mirror.server.cut_after(path, fake.tarball("part_1.tar.gz").stat().st_size // 2)
    result = download(mirror, tmp_path, keep_tarballs=True)
    assert result.complete and not result.failed
    first, second = mirror.server.requests_for(path)
    assert first.range is None and second.range is not None and second.status == 206
    kept = dataset_dir(tmp_path, "400") / "val" / ".cvdf" / "part_1.tar.gz"
    assert kept.read_bytes() == fake.tarball("part_1.tar.gz").read_bytes()
    assert_layout_holds(fake, dataset_dir(tmp_path, "400") / "val", list(fake.partitions))


def test_resume_after_a_killed_run(mirror: Mirror, tmp_path: Path) -> None:
    """State says part_0 is done; part_1 was half extracted (one clip whole, one half-written); part_2's
    tarball was half downloaded. The rerun finishes everything without duplicates or leftovers."""
    fake = mirror.fake
    split_dir = dataset_dir(tmp_path, "400") / "val"
    for clip in fake.in_partition("part_0.tar.gz"):
        target = clip_path(split_dir, clip.label, clip.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(clip.data)
    (split_dir / STATE_FILE).write_text(json.dumps({"completed": ["part_0.tar.gz"]}))
    whole, half = fake.in_partition("part_1.tar.gz")[:2]
    clip_path(split_dir, whole.label, whole.key).write_bytes(whole.data)
    half_target = clip_path(split_dir, half.label, half.key)
    half_target.with_name(f".{half_target.name}.partial").write_bytes(half.data[:100])
    tarball = fake.tarball("part_2.tar.gz").read_bytes()
    (split_dir / ".cvdf").mkdir()
    (split_dir / ".cvdf" / ".part_2.tar.gz.partial").write_bytes(tarball[:1000])

    result = download(mirror, tmp_path)

    assert result.skipped == ["part_0.tar.gz"] and sorted(result.done) == ["part_1.tar.gz", "part_2.tar.gz"]
    assert not mirror.server.requests_for(fake.url_path("part_0.tar.gz"))
    assert [r.range for r in mirror.server.requests_for(fake.url_path("part_2.tar.gz"))] == ["bytes=1000-"]
    assert result.already_present == 1
    assert_layout_holds(fake, split_dir, list(fake.partitions))
    assert len(clip_files(split_dir)) == len(fake.clips)
    assert not list(split_dir.rglob("*.partial"))


def test_interrupted_run_leaves_a_consistent_layout(mirror: Mirror, tmp_path: Path) -> None:
    """An exception in the caller's thread (Ctrl-C, say) stops the workers; whatever they left is resumable."""

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download(mirror, tmp_path, workers=3, progress=interrupt)
    split_dir = dataset_dir(tmp_path, "400") / "val"
    assert len(json.loads((split_dir / STATE_FILE).read_text())["completed"]) == 1
    result = download(mirror, tmp_path)
    assert result.complete and len(result.skipped) == 1
    assert_layout_holds(mirror.fake, split_dir, list(mirror.fake.partitions))
    assert not list(split_dir.rglob("*.partial"))


def test_corrupt_tarball_is_recorded_and_the_rest_goes_on(mirror: Mirror, tmp_path: Path) -> None:
    fake = mirror.fake
    good = fake.tarball("part_1.tar.gz").read_bytes()
    fake.tarball("part_1.tar.gz").write_bytes(good[: len(good) // 2])
    result = download(mirror, tmp_path)
    [failure] = result.failed
    assert failure.partition == "part_1.tar.gz" and failure.reason.startswith("corrupt archive")
    assert failure.url == f"{mirror.server.url}{fake.url_path('part_1.tar.gz')}"
    assert sorted(result.done) == ["part_0.tar.gz", "part_2.tar.gz"] and not result.complete
    split_dir = dataset_dir(tmp_path, "400") / "val"
    assert_layout_holds(fake, split_dir, ["part_0.tar.gz", "part_2.tar.gz"])
    assert "part_1.tar.gz" not in json.loads((split_dir / STATE_FILE).read_text())["completed"]
    assert not (split_dir / ".cvdf" / "part_1.tar.gz").exists()

    fake.tarball("part_1.tar.gz").write_bytes(good)
    retry = download(mirror, tmp_path)
    assert retry.done == ["part_1.tar.gz"] and retry.complete
    assert_layout_holds(fake, split_dir, list(fake.partitions))


def test_missing_partition_is_recorded_and_not_retried(mirror: Mirror, tmp_path: Path) -> None:
    fake = mirror.fake
    fake.write_list(mirror.server.url, [*fake.partitions, "part_9.tar.gz"])
    result = download(mirror, tmp_path)
    [failure] = result.failed
    assert failure.partition == "part_9.tar.gz" and "HTTP 404" in failure.reason
    assert len(mirror.server.requests_for(fake.url_path("part_9.tar.gz"))) == 1
    assert sorted(result.done) == list(fake.partitions)


def test_limit_downloads_only_the_partitions_it_needs(mirror: Mirror, tmp_path: Path) -> None:
    fake = mirror.fake
    result = download(mirror, tmp_path, limit=4, workers=4)
    assert result.done == ["part_0.tar.gz", "part_1.tar.gz"] and result.not_started == ["part_2.tar.gz"]
    assert not mirror.server.requests_for(fake.url_path("part_2.tar.gz"))
    assert sum(not c.unannotated for c in result.extracted) == 6
    mirror.server.clear_log()
    again = download(mirror, tmp_path, limit=6)
    assert not again.done and again.not_started == ["part_2.tar.gz"]
    assert not [r for r in mirror.server.requests if r.path.endswith(".tar.gz")]


def test_mirror_override_rewrites_official_urls(mirror: Mirror, tmp_path: Path) -> None:
    fake = mirror.fake
    fake.write_list(OFFICIAL)
    result = download(mirror, tmp_path)
    assert result.complete
    assert {f.url for f in result.failed} == set()
    for name in fake.partitions:
        assert [r.status for r in mirror.server.requests_for(fake.url_path(name))] == [200]


def test_shortage_of_disk_space_stops_before_extracting(
    mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(10**9, 10**9, 0))
    result = download(mirror, tmp_path, workers=1)
    [failure] = result.failed
    assert failure.reason.startswith("not enough disk space") and failure.partition == "part_0.tar.gz"
    assert result.not_started == ["part_1.tar.gz", "part_2.tar.gz"] and not result.extracted
    assert (dataset_dir(tmp_path, "400") / "val" / ".cvdf" / "part_0.tar.gz").is_file()


def test_hostile_archive_members_stay_inside_the_layout(tmp_path: Path, videos: list[bytes]) -> None:
    site = tmp_path / "site" / "kinetics" / "400" / "val"
    site.mkdir(parents=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, kind in [
            ("link_000001_000011.mp4", tarfile.SYMTYPE),
            ("hard_000002_000012.mp4", tarfile.LNKTYPE),
            ("folder_000003_000013.mp4", tarfile.DIRTYPE),
        ]:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd" if kind != tarfile.DIRTYPE else ""
            archive.addfile(info)
        for name in ("../../escape_000004_000014.mp4", "/abs/absolute_000005_000015.mp4", "notes.txt"):
            info = tarfile.TarInfo(name)
            info.size = len(videos[0])
            archive.addfile(info, io.BytesIO(videos[0]))
    (site / "part_0.tar.gz").write_bytes(buffer.getvalue())
    root = tmp_path / "out" / "data"
    with serve_directory(tmp_path / "site") as server:
        (site / "k400_val_path.txt").write_text(f"{server.url}/kinetics/400/val/part_0.tar.gz\n")
        empty = pd.DataFrame({"label": [], "youtube_id": [], "time_start": [], "time_end": []})
        result = download_cvdf(root, "400", "val", annotations=empty, mirror=f"{server.url}/kinetics")
    split_dir = dataset_dir(root, "400") / "val"
    assert result.complete
    assert sorted(c.path.name for c in result.unannotated) == [
        "absolute_000005_000015.mp4",
        "escape_000004_000014.mp4",
    ]
    files = [p for p in (tmp_path / "out").rglob("*") if not p.is_dir()]
    assert all(not p.is_symlink() for p in files)
    assert sorted(p.relative_to(split_dir).as_posix() for p in files if not _hidden(p, split_dir)) == [
        f"{UNLABELLED}/absolute_000005_000015.mp4",
        f"{UNLABELLED}/escape_000004_000014.mp4",
    ]
    assert all(parse_clip_name(p.name) is not None for p in clip_files(split_dir))


def test_byte_progress_adds_up_every_tarball(mirror: Mirror, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    partitions: list[tuple[int, int]] = []
    download(mirror, tmp_path / "data", workers=2, byte_progress=lambda d, t: seen.append((d, t)),
             progress=lambda d, t: partitions.append((d, t)))  # fmt: skip
    expected = sum(mirror.fake.tarball(name).stat().st_size for name in mirror.fake.partitions)
    assert seen[-1] == (expected, expected)
    assert all(d2 >= d1 for (d1, _), (d2, _) in itertools.pairwise(seen))
    assert partitions[-1] == (len(mirror.fake.partitions), len(mirror.fake.partitions))
