"""Clip downloads through yt-dlp against a real HTTP server on 127.0.0.1 (yt-dlp's generic extractor).

The source clip is 10 s at 25 fps with a keyframe every second, and every frame carries its index, so a
test can read which source frames a trimmed download holds.
"""

from __future__ import annotations

import csv
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from forwardlab.video.data import youtube
from forwardlab.video.data.layout import ClipKey, clip_path, parse_clip_name
from forwardlab.video.data.youtube import (
    ClipOutcome,
    ClipRequest,
    classify_error,
    download_clips,
    write_failures_csv,
)
from forwardlab.video.io import probe
from tests.support.clips import decode_all, frame_index, write_audio_only, write_video
from tests.support.http_server import FileServer, serve_directory, unused_url

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program")

FPS = 25
SOURCE_S = 10


@pytest.fixture(scope="module")
def source_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "source.mp4"
    return write_video(path, n_frames=FPS * SOURCE_S, fps=FPS, width=64, height=48, options={"g": str(FPS)})


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[FileServer, Path]]:
    root = tmp_path / "served"
    root.mkdir()
    with serve_directory(root) as server:
        yield server, root


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(youtube, "RETRY_BACKOFF_S", 0.05)


def publish(root: Path, source: Path, *ids: str) -> None:
    for youtube_id in ids:
        shutil.copyfile(source, root / f"{youtube_id}.mp4")


def template(server: FileServer) -> str:
    return server.url + "/{youtube_id}.mp4"


def leftovers(split_dir: Path) -> list[Path]:
    """Everything under the split that is not a finished clip or a label folder."""
    found = []
    for path in split_dir.rglob("*"):
        if path.is_dir() and path.parent == split_dir and not path.name.startswith("."):
            continue
        if path.is_file() and path.parent.parent == split_dir and parse_clip_name(path.name) is not None:
            continue
        found.append(path)
    return found


def by_id(outcomes: list[ClipOutcome]) -> dict[str, ClipOutcome]:
    return {o.key.youtube_id: o for o in outcomes}


def test_clip_is_downloaded_and_trimmed_into_the_layout(
    served: tuple[FileServer, Path], source_video: Path, tmp_path: Path
) -> None:
    server, root = served
    publish(root, source_video, "-vid_A1")  # YouTube ids may start with a dash
    split_dir = tmp_path / "kinetics400" / "val"
    key = ClipKey("-vid_A1", 3, 6)
    calls: list[tuple[int, int]] = []

    [outcome] = download_clips(
        [ClipRequest(key, "playing guitar")],
        split_dir,
        url_template=template(server),
        progress=lambda done, total: calls.append((done, total)),
    )

    assert outcome.status == "downloaded", outcome
    assert outcome.reason is None and outcome.category is None
    assert outcome.path == clip_path(split_dir, "playing guitar", key)
    assert outcome.path.is_file() and outcome.seconds > 0
    info = probe(outcome.path)
    assert info.duration_s == pytest.approx(3.0, abs=0.1)
    frames = decode_all(outcome.path)
    first, last = frame_index(frames[0][1]), frame_index(frames[-1][1])
    assert 3 * FPS - FPS <= first <= 3 * FPS  # at worst the keyframe before 3 s; re-encoding makes it exact
    assert last == pytest.approx(6 * FPS - 1, abs=2)
    assert calls[0] == (0, 1) and calls[-1] == (1, 1)
    assert leftovers(split_dir) == []


def test_existing_clips_are_skipped_and_stale_temporaries_cleared(
    served: tuple[FileServer, Path], source_video: Path, tmp_path: Path
) -> None:
    server, root = served
    publish(root, source_video, "have", "need")
    split_dir = tmp_path / "val"
    have, need = ClipKey("have", 0, 3), ClipKey("need", 0, 3)
    existing = clip_path(split_dir, "dancing", have)
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"already here")
    stale = existing.with_name(f".{existing.name}.partial")  # what a killed run leaves behind
    stale.mkdir()
    (stale / "clip.mp4.part").write_bytes(b"half")

    outcomes = by_id(
        download_clips(
            [ClipRequest(have, "dancing"), ClipRequest(need, "dancing")],
            split_dir,
            url_template=template(server),
        )
    )

    assert outcomes["have"].status == "skipped" and outcomes["have"].path == existing
    assert existing.read_bytes() == b"already here"
    assert server.requests_for("/have.mp4") == []
    assert outcomes["need"].status == "downloaded"
    assert leftovers(split_dir) == []


def test_missing_video_fails_with_a_category_and_the_others_succeed(
    served: tuple[FileServer, Path], source_video: Path, tmp_path: Path
) -> None:
    server, root = served
    publish(root, source_video, "good1", "good2")
    split_dir = tmp_path / "val"
    requests = [
        ClipRequest(ClipKey("good1", 0, 2), "a"),
        ClipRequest(ClipKey("gone", 0, 2), "ghost class"),
        ClipRequest(ClipKey("good2", 5, 7), "a"),
    ]

    outcomes = download_clips(requests, split_dir, url_template=template(server), workers=2, retries=2)

    assert [o.key for o in outcomes] == [r.key for r in requests]  # request order
    status = by_id(outcomes)
    assert status["good1"].status == status["good2"].status == "downloaded"
    gone = status["gone"]
    assert (gone.status, gone.category, gone.path) == ("failed", "unavailable", None)
    assert gone.reason is not None and "404" in gone.reason
    assert len(server.requests_for("/gone.mp4")) == 1  # permanent failures are not retried
    assert not (split_dir / "ghost class").exists()  # no empty label folder
    assert leftovers(split_dir) == []

    csv_path = tmp_path / "failures.csv"
    assert write_failures_csv(outcomes, csv_path) == 1
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [
        {
            "label": "ghost class",
            "youtube_id": "gone",
            "time_start": "0",
            "time_end": "2",
            "category": "unavailable",
            "reason": gone.reason,
        }
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failures.csv", "served", "val"]


@pytest.mark.parametrize("fault", ["status 500", "cut mid-body"])
def test_server_faults_are_network_failures_without_retries(
    served: tuple[FileServer, Path], source_video: Path, tmp_path: Path, fault: str
) -> None:
    server, root = served
    publish(root, source_video, "flaky")
    if fault == "status 500":
        server.fail("/flaky.mp4", 500)
    else:  # the extractor reads the first 512 bytes; ffmpeg's read of the media is then cut
        server.cut_after("/flaky.mp4", 4000, times=2)
    split_dir = tmp_path / "val"

    [outcome] = download_clips(
        [ClipRequest(ClipKey("flaky", 1, 4), "x")], split_dir, url_template=template(server), retries=0
    )

    assert (outcome.status, outcome.category) == ("failed", "network"), outcome
    assert outcome.reason and "\n" not in outcome.reason
    assert outcome.path is None
    assert leftovers(split_dir) == []
    assert not clip_path(split_dir, "x", outcome.key).exists()


@pytest.mark.parametrize("fault", ["status 503", "cut mid-body"])
def test_network_failures_are_retried_to_success(
    served: tuple[FileServer, Path], source_video: Path, tmp_path: Path, fault: str
) -> None:
    server, root = served
    publish(root, source_video, "flaky")
    if fault == "status 503":
        server.fail("/flaky.mp4", 503)
    else:
        server.cut_after("/flaky.mp4", 4000, times=2)
    split_dir = tmp_path / "val"

    [outcome] = download_clips(
        [ClipRequest(ClipKey("flaky", 1, 4), "x")], split_dir, url_template=template(server), retries=1
    )

    assert outcome.status == "downloaded", outcome
    assert probe(outcome.path or Path()).duration_s == pytest.approx(3.0, abs=0.1)
    if fault == "status 503":
        assert server.requests_for("/flaky.mp4")[0].status == 503
    assert leftovers(split_dir) == []


def test_refused_connection_is_a_network_failure(tmp_path: Path) -> None:
    split_dir = tmp_path / "val"
    [outcome] = download_clips(
        [ClipRequest(ClipKey("nobody", 0, 2), "x")],
        split_dir,
        url_template=unused_url() + "/{youtube_id}.mp4",
        retries=0,
    )
    assert (outcome.status, outcome.category) == ("failed", "network")
    assert "Connection refused" in (outcome.reason or "")
    assert leftovers(split_dir) == []


def test_unresponsive_server_times_out_as_a_network_failure(
    served: tuple[FileServer, Path], source_video: Path, tmp_path: Path
) -> None:
    server, root = served
    publish(root, source_video, "slow")
    server.delay("/slow.mp4", 5.0)
    split_dir = tmp_path / "val"

    started = time.monotonic()
    [outcome] = download_clips(
        [ClipRequest(ClipKey("slow", 0, 2), "x")],
        split_dir,
        url_template=template(server),
        retries=0,
        timeout_s=0.3,
    )

    assert time.monotonic() - started < 4.0  # gave up long before the server answered
    assert (outcome.status, outcome.category) == ("failed", "network"), outcome
    assert "timed out" in (outcome.reason or "")
    assert leftovers(split_dir) == []


def test_result_without_video_stream_fails_and_is_removed(served: tuple[FileServer, Path], tmp_path: Path) -> None:
    server, root = served
    write_audio_only(root / "voice.mp4")
    split_dir = tmp_path / "val"

    [outcome] = download_clips([ClipRequest(ClipKey("voice", 0, 1), "x")], split_dir, url_template=template(server))

    assert (outcome.status, outcome.category) == ("failed", "other"), outcome
    assert "not a readable video" in (outcome.reason or "")
    assert not clip_path(split_dir, "x", outcome.key).exists()
    assert leftovers(split_dir) == []


def test_short_source_is_kept_with_the_duration_in_the_reason(
    served: tuple[FileServer, Path], source_video: Path, tmp_path: Path
) -> None:
    server, root = served
    publish(root, source_video, "short")
    split_dir = tmp_path / "val"

    [outcome] = download_clips([ClipRequest(ClipKey("short", 7, 12), "x")], split_dir, url_template=template(server))

    assert outcome.status == "downloaded", outcome
    assert outcome.reason is not None and "duration" in outcome.reason
    assert probe(outcome.path or Path()).duration_s == pytest.approx(3.0, abs=0.1)


def test_explicit_url_overrides_the_template_and_duplicates_are_fetched_once(
    served: tuple[FileServer, Path], source_video: Path, tmp_path: Path
) -> None:
    server, root = served
    publish(root, source_video, "elsewhere")
    key = ClipKey("someid", 0, 2)
    request = ClipRequest(key, "x", url=f"{server.url}/elsewhere.mp4")

    outcomes = download_clips(
        [request, request], tmp_path / "val", url_template="http://127.0.0.1:9/never/{youtube_id}"
    )

    assert [o.status for o in outcomes] == ["downloaded", "skipped"]
    assert outcomes[1].reason == "duplicate request"
    assert len([r for r in server.requests if r.range is None]) == 1  # one extraction


def test_min_interval_spaces_clip_starts_across_workers(
    served: tuple[FileServer, Path], source_video: Path, tmp_path: Path
) -> None:
    server, root = served
    publish(root, source_video, "s1", "s2", "s3")
    requests = [ClipRequest(ClipKey(i, 0, 1), "x") for i in ("s1", "s2", "s3")]

    started = time.monotonic()
    outcomes = download_clips(requests, tmp_path / "val", url_template=template(server), workers=3, min_interval_s=0.6)

    assert time.monotonic() - started >= 1.2
    assert {o.status for o in outcomes} == {"downloaded"}


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="youtube_id"):
        download_clips([], Path("unused"), url_template="http://host/{id}.mp4")
    with pytest.raises(ValueError, match="youtube_id"):
        download_clips([], Path("unused"), url_template="http://host/video.mp4")
    with pytest.raises(ValueError, match="workers"):
        download_clips([], Path("unused"), workers=0)


def test_failures_csv_lists_only_failures_and_keeps_awkward_reasons(tmp_path: Path) -> None:
    def outcome(youtube_id: str, status: str, reason: str | None) -> ClipOutcome:
        category = "other" if status == "failed" else None
        return ClipOutcome(ClipKey(youtube_id, 1, 11), None, status, None, reason, category, 0.5)  # type: ignore[arg-type]

    outcomes = [
        outcome("ok", "downloaded", None),
        outcome("bad", "failed", 'says "no", with commas'),
        outcome("old", "skipped", None),
    ]
    path = tmp_path / "nested" / "failures.csv"
    assert write_failures_csv(outcomes, path) == 1
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["label", "youtube_id", "time_start", "time_end", "category", "reason"],
        ["", "bad", "1", "11", "other", 'says "no", with commas'],
    ]
    assert [p.name for p in path.parent.iterdir()] == ["failures.csv"]


# Messages as yt-dlp prints them (YouTube's texts and yt-dlp's own wrappers), the first line of each.
_COOKIES = (
    " Use --cookies-from-browser or --cookies for the authentication. See  "
    "https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to manually pass "
    "cookies. Also see  https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube-cookies  for "
    "tips on effectively exporting YouTube cookies"
)
REAL_MESSAGES = [
    ("ERROR: [youtube] 0123456789a: Video unavailable", "unavailable"),
    ("ERROR: [youtube] 0123456789a: Video unavailable. This video is not available", "unavailable"),
    (
        "ERROR: [youtube] 0123456789a: Video unavailable. The uploader has not made this video available "
        "in your country",
        "unavailable",
    ),
    (
        "ERROR: [generic] gone: Unable to download webpage: HTTP Error 404: Not Found "
        "(caused by <HTTPError 404: Not Found>)",
        "unavailable",
    ),
    (
        "ERROR: [youtube] 0123456789a: Private video. Sign in if you've been granted access to this video." + _COOKIES,
        "private",
    ),
    (
        "ERROR: [youtube] 0123456789a: Join this channel to get access to members-only content like this "
        "video, and other exclusive perks.",
        "private",
    ),
    (
        "ERROR: [youtube] 0123456789a: Sign in to confirm your age. This video may be inappropriate for "
        "some users." + _COOKIES,
        "private",
    ),
    ("ERROR: [youtube] 0123456789a: Video unavailable. This video has been removed by the uploader", "removed"),
    (
        "ERROR: [youtube] 0123456789a: Video unavailable. This video is no longer available because the "
        "YouTube account associated with this video has been terminated.",
        "removed",
    ),
    (
        "ERROR: [youtube] 0123456789a: Video unavailable. This video is no longer available due to a "
        "copyright claim by Some Label",
        "removed",
    ),
    (
        "ERROR: [youtube] 0123456789a: This video has been removed for violating YouTube's Terms of Service",
        "removed",
    ),
    (
        "ERROR: [youtube] 0123456789a: Video unavailable. This video contains content from SME, who has "
        "blocked it on copyright grounds",
        "removed",
    ),
    ("ERROR: [youtube] 0123456789a: Sign in to confirm you\u2019re not a bot." + _COOKIES, "network"),
    (
        "ERROR: [youtube] 0123456789a: Video unavailable. This content isn\u2019t available, try again "
        "later. The current session has been rate-limited by YouTube for up to an hour.",
        "network",
    ),
    ("ERROR: unable to download video data: HTTP Error 403: Forbidden", "network"),
    (
        "ERROR: [generic] flaky: Unable to download webpage: HTTP Error 500: Internal Server Error "
        "(caused by <HTTPError 500: Internal Server Error>)",
        "network",
    ),
    (
        "ERROR: [youtube] 0123456789a: Unable to download API page: [Errno -3] Temporary failure in name "
        "resolution (caused by TransportError('[Errno -3] Temporary failure in name resolution'))",
        "network",
    ),
    (
        "ERROR: [generic] x: Unable to download webpage: The read operation timed out "
        "(caused by TransportError('The read operation timed out'))",
        "network",
    ),
    (
        "ERROR: A network error has occurred. (caused by <IncompleteRead: 100 bytes read, 13859 more expected>)",
        "network",
    ),
    ("ERROR: ffmpeg exited with code 1", "network"),
    (
        "ERROR: [youtube] 0123456789a: Requested format is not available. Use --list-formats for a list "
        "of available formats",
        "other",
    ),
    ("ERROR: [youtube] 0123456789a: This live event will begin in 3 hours.", "other"),
    ("ERROR: [generic] x: Unsupported URL: http://example.com/page", "other"),
]


@pytest.mark.parametrize(("message", "category"), REAL_MESSAGES)
def test_classify_error_on_real_messages(message: str, category: str) -> None:
    got, reason = classify_error(message)
    assert got == category
    assert reason == message.removeprefix("ERROR: ")


def test_classify_error_reason_is_the_first_line() -> None:
    assert classify_error("ERROR: [youtube] id: Video unavailable\nTraceback (most recent call last):") == (
        "unavailable",
        "[youtube] id: Video unavailable",
    )
    assert classify_error("") == ("other", "unknown error")
