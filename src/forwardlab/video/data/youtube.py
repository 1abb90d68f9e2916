"""Fetch Kinetics clips from YouTube (or any URL yt-dlp understands) into the dataset layout.

Each clip is one yt-dlp run through its Python API (no shell): only the annotated range
`[time_start, time_end]` is fetched (`download_ranges`), and ffmpeg re-encodes it so the cut lands on
the exact requested time rather than the previous keyframe (`force_keyframes_at_cuts`). The result goes
to `clip_path(split_dir, label, key)`.

Decisions worth knowing:

- Resolution: formats are *sorted*, not filtered: the largest rendition whose smaller side is at most
  360 px (Kinetics' own clips are 340x256 / 360p), H.264 in MP4 with M4A audio preferred. A video that
  has nothing that small still downloads, in its smallest rendition above 360, rather than failing.
- Temporary files: yt-dlp writes only inside a private folder `.<clip>.mp4.partial/` beside the target,
  the result is probed there, then moved into place with one `os.replace`; the folder is removed on
  success and on failure. The name is fixed, so a folder left by a killed run is removed by the next
  attempt at the same clip. Two processes must not download the same split at once.
- Failures never raise: each becomes a `ClipOutcome` with a category (see `classify_error`) and the
  first line of yt-dlp's message. `network` failures are retried (`retries` more whole-clip attempts,
  with backoff); the others are permanent, so they are not.
- Throttling: `min_interval_s` spaces clip starts (retries included) across all workers, which is what
  keeps YouTube from answering "confirm you're not a bot". `rate_limit_bytes_s` goes to yt-dlp's
  `ratelimit`, which its own HTTP downloader honours; range downloads are streamed by ffmpeg, which has
  no byte-rate limit, so for those only the spacing applies.
- A downloaded file that does not probe is a failure (category `other`, file removed). One whose
  duration is more than `DURATION_TOLERANCE_S` away from the requested range is kept, with the
  difference in `reason` (sources that end before `time_end` are common).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import re
import shutil
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from forwardlab.fileio import atomic_path
from forwardlab.video.data.layout import ClipKey, clip_path
from forwardlab.video.errors import DatasetError, VideoDecodeError

Status = Literal["downloaded", "skipped", "failed"]
Category = Literal["unavailable", "private", "removed", "network", "other"]
Progress = Callable[[int, int], None]

DEFAULT_URL_TEMPLATE = "https://www.youtube.com/watch?v={youtube_id}"
# Smaller side of the preferred rendition, in pixels; see the module docstring.
MAX_SHORT_SIDE_PX = 360
FORMAT = "bv*+ba/b"
FORMAT_SORT = (f"res:{MAX_SHORT_SIDE_PX}", "vcodec:h264", "ext:mp4:m4a")
DURATION_TOLERANCE_S = 1.5
# Wait before retry n (1-based): RETRY_BACKOFF_S * 2**(n-1), capped at RETRY_BACKOFF_MAX_S.
RETRY_BACKOFF_S = 1.0
RETRY_BACKOFF_MAX_S = 30.0
FAILURE_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "category", "reason")

_log = logging.getLogger(__name__)
# Creating a label folder and removing it once empty must not interleave between workers.
_dir_lock = threading.Lock()


@dataclass(frozen=True)
class ClipRequest:
    """One clip to fetch; `url` overrides the URL template for this clip."""

    key: ClipKey
    label: str | None
    url: str | None = None


@dataclass(frozen=True)
class ClipOutcome:
    """What happened to one requested clip; `reason` is set for failures and for kept oddities."""

    key: ClipKey
    label: str | None
    status: Status
    path: Path | None
    reason: str | None
    category: Category | None
    seconds: float


# Checked in order; the first rule with a matching phrase wins. Phrases are matched case-insensitively
# against yt-dlp's whole message. Rate limiting and bot checks come first: they say nothing about the
# video ("Video unavailable. This content isn't available, try again later...") and clear up with time.
_RULES: tuple[tuple[Category, tuple[str, ...]], ...] = (
    (
        "network",
        (
            "try again later",
            "rate-limit",
            "rate limit",
            "too many requests",
            "http error 429",
            "not a bot",
        ),
    ),
    ("other", ("requested format is not available", "no video formats found")),
    (
        "removed",
        ("been removed", "been terminated", "copyright", "no longer available", "been deleted"),
    ),
    (
        "private",
        (
            "private video",
            "video is private",
            "granted access",
            "members-only",
            "members only",
            "premium members",
            "confirm your age",
            "age-restricted",
        ),
    ),
    (
        "unavailable",
        (
            "video unavailable",
            "not available",
            "available in your country",
            "does not exist",
            "http error 404",
            "http error 410",
        ),
    ),
    (
        "network",
        (
            "http error",
            "timed out",
            "timeout",
            "connection",
            "network",
            "name resolution",
            "name or service not known",
            "transporterror",
            "incomplete",
            "bytes read",
            "ssl",
            "errno",
            "unable to download",
            # ffmpeg streams range downloads and yt-dlp runs it quietly, so its own message is lost.
            # Extraction already succeeded by then, so a failing read is most likely the network.
            "ffmpeg exited with code",
        ),
    ),
)


def classify_error(message: str) -> tuple[Category, str]:
    """(category, reason) for a yt-dlp error message; reason is its first line without `ERROR: `.

    Categories: `removed` (taken down: uploader, terms of service, copyright, terminated account),
    `private` (needs an account: private, members-only, age-gated), `unavailable` (does not exist, not
    available here, HTTP 404/410), `network` (transport failures, HTTP errors, timeouts, rate limiting;
    retried), `other` (everything else: unsupported formats, broken files, tool failures).
    """
    text = message.strip()
    first = text.splitlines()[0].strip() if text else ""
    first = re.sub(r"^ERROR:\s*", "", first) or "unknown error"
    lowered = text.lower()
    for category, phrases in _RULES:
        if any(phrase in lowered for phrase in phrases):
            return category, first
    return "other", first


class _StartSpacer:
    """Spaces clip starts at least `interval_s` apart across threads."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = max(0.0, interval_s)
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        if self._interval_s <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval_s
        if start > now:
            time.sleep(start - now)


class _YdlLogger:
    """Routes yt-dlp's messages to `logging` at debug level: outcomes carry what users need."""

    def __init__(self, key: ClipKey) -> None:
        self._prefix = key.file_name

    def debug(self, msg: str) -> None:
        _log.debug("%s: %s", self._prefix, msg)

    def info(self, msg: str) -> None:
        _log.debug("%s: %s", self._prefix, msg)

    def warning(self, msg: str) -> None:
        _log.debug("%s: %s", self._prefix, msg)

    def error(self, msg: str) -> None:
        _log.debug("%s: %s", self._prefix, msg)


@dataclass(frozen=True)
class _Settings:
    url_template: str
    rate_limit_bytes_s: int | None
    retries: int
    timeout_s: float
    ffmpeg: str
    spacer: _StartSpacer


def _import_yt_dlp() -> Any:
    try:
        import yt_dlp
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise DatasetError(
            "downloading clips from YouTube needs yt-dlp; install the video extra: pip install 'forwardlab[video]'"
        ) from exc
    return yt_dlp


def _format_url(template: str, key: ClipKey) -> str:
    # Ids come from annotation files: quote them so one cannot add path segments or query parameters.
    return template.format(
        youtube_id=urllib.parse.quote(key.youtube_id, safe="-_"),
        time_start=key.time_start,
        time_end=key.time_end,
    )


def _check_template(template: str) -> None:
    try:
        _format_url(template, ClipKey("x", 0, 1))
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"url_template {template!r} is not valid: use the fields {{youtube_id}}, {{time_start}}, "
            f"{{time_end}} and double any other brace ({exc})"
        ) from exc
    if "{youtube_id}" not in template:
        raise ValueError(f"url_template {template!r} does not contain {{youtube_id}}")


def _ydl_options(key: ClipKey, work_dir: Path, settings: _Settings) -> dict[str, Any]:
    from yt_dlp.utils import download_range_func

    duration = key.time_end - key.time_start
    return {
        "format": FORMAT,
        "format_sort": list(FORMAT_SORT),
        "merge_output_format": "mp4",
        # Range downloads are re-encoded by ffmpeg into the container of the chosen format; this makes
        # the odd WebM-only video come out as MP4 too (a no-op for MP4).
        "postprocessors": [{"key": "FFmpegVideoRemuxer", "preferedformat": "mp4"}],
        "download_ranges": download_range_func(None, [(key.time_start, key.time_start + duration)]),
        "force_keyframes_at_cuts": True,
        "paths": {"home": str(work_dir), "temp": str(work_dir)},
        "outtmpl": {"default": "clip.%(ext)s"},
        "overwrites": True,
        "noplaylist": True,
        "ratelimit": settings.rate_limit_bytes_s,
        "retries": settings.retries,
        "fragment_retries": settings.retries,
        "extractor_retries": settings.retries,
        "socket_timeout": settings.timeout_s,
        # ffmpeg reads the media itself: give it the same stall timeout (microseconds).
        "external_downloader_args": {"ffmpeg_i": ["-rw_timeout", str(int(settings.timeout_s * 1e6))]},
        "ffmpeg_location": settings.ffmpeg,
        "quiet": True,
        "noprogress": True,
        "no_warnings": False,
        "color": "no_color",
        "logger": _YdlLogger(key),
    }


def _produced_file(info: dict[str, Any] | None, work_dir: Path) -> Path | None:
    for download in (info or {}).get("requested_downloads") or []:
        candidate = download.get("filepath")
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    files = [p for p in work_dir.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))]
    return files[0] if len(files) == 1 else None


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _work_dir(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial")


def _attempt(
    yt_dlp: Any, url: str, key: ClipKey, target: Path, settings: _Settings
) -> tuple[Category | None, str | None]:
    """One download of one clip into `target`; (None, note) on success, (category, reason) on failure."""
    work_dir = _work_dir(target)
    with _dir_lock:
        _remove_tree(work_dir)
        work_dir.mkdir(parents=True)
    try:
        try:
            with yt_dlp.YoutubeDL(_ydl_options(key, work_dir, settings)) as ydl:
                info = ydl.extract_info(url, download=True)
        except yt_dlp.utils.YoutubeDLError as exc:
            return classify_error(str(exc) or type(exc).__name__)
        produced = _produced_file(info, work_dir)
        if produced is None:
            return "other", "yt-dlp reported success but produced no file"
        from forwardlab.video.io import probe  # PyAV and numpy: not needed to start the CLI

        try:
            video = probe(produced)
        except VideoDecodeError as exc:
            return "other", f"downloaded file is not a readable video: {exc.reason}"
        os.replace(produced, target)
    finally:
        _remove_tree(work_dir)
    expected = key.time_end - key.time_start
    if abs(video.duration_s - expected) > DURATION_TOLERANCE_S:
        return None, f"duration {video.duration_s:.2f} s, requested {expected} s"
    return None, None


def _fetch(yt_dlp: Any, request: ClipRequest, split_dir: Path, settings: _Settings) -> ClipOutcome:
    started = time.monotonic()
    key, label = request.key, request.label
    target = clip_path(split_dir, label, key)

    def outcome(status: Status, path: Path | None, reason: str | None, category: Category | None) -> ClipOutcome:
        return ClipOutcome(key, label, status, path, reason, category, time.monotonic() - started)

    if target.is_file() and target.stat().st_size > 0:
        _remove_tree(_work_dir(target))  # a leftover from a killed run of an earlier download
        return outcome("skipped", target, None, None)
    url = request.url or _format_url(settings.url_template, key)
    category: Category | None = "other"
    reason: str | None = "not attempted"
    try:
        for attempt in range(settings.retries + 1):
            if attempt:
                time.sleep(min(RETRY_BACKOFF_S * 2 ** (attempt - 1), RETRY_BACKOFF_MAX_S))
            settings.spacer.wait()
            try:
                category, reason = _attempt(yt_dlp, url, key, target, settings)
            except Exception as exc:  # a per-clip failure must not stop the batch
                _log.debug("%s: unexpected error", key.file_name, exc_info=True)
                category, reason = "other", f"{type(exc).__name__}: {exc}".splitlines()[0]
            if category != "network":
                break
    finally:
        if not target.exists():
            with _dir_lock, contextlib.suppress(OSError):
                target.parent.rmdir()  # only succeeds when empty: no label folder without clips
    if category is None:
        return outcome("downloaded", target, reason, None)
    return outcome("failed", None, reason, category)


def download_clips(
    requests: Iterable[ClipRequest],
    split_dir: Path,
    *,
    url_template: str = DEFAULT_URL_TEMPLATE,
    workers: int = 4,
    rate_limit_bytes_s: int | None = None,
    min_interval_s: float = 0.0,
    retries: int = 3,
    timeout_s: float = 30.0,
    progress: Progress | None = None,
) -> list[ClipOutcome]:
    """Download and trim every requested clip into `split_dir/<label>/<id>_<start>_<end>.mp4`.

    Returns one outcome per request, in request order. Clips already on disk are `skipped` (so a rerun
    resumes), failures are recorded with a category and reason and never raised. `url_template` may use
    `{youtube_id}`, `{time_start}` and `{time_end}`. `workers` threads download at once; at least
    `min_interval_s` seconds separate any two clip starts; `rate_limit_bytes_s` caps yt-dlp's own HTTP
    downloads (not ffmpeg's range reads); a `network` failure is tried `retries` more times, and
    `timeout_s` is the stall timeout of every connection. `progress(done, total)` is called from the
    calling thread as clips finish. Raises only for bad arguments or when ffmpeg is missing.
    """
    _check_template(url_template)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if retries < 0:
        raise ValueError(f"retries must be 0 or more, got {retries}")
    yt_dlp = _import_yt_dlp()
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise DatasetError("downloading clips needs the ffmpeg program on PATH (it cuts the clip ranges)")
    settings = _Settings(url_template, rate_limit_bytes_s, retries, timeout_s, ffmpeg, _StartSpacer(min_interval_s))
    split_dir = Path(split_dir)
    todo = list(requests)
    results: list[ClipOutcome | None] = [None] * len(todo)
    first_of: dict[Path, int] = {}
    duplicates: list[tuple[int, int]] = []
    for index, request in enumerate(todo):
        target = clip_path(split_dir, request.label, request.key)
        if target in first_of:
            duplicates.append((index, first_of[target]))
        else:
            first_of[target] = index

    done = 0
    if progress is not None:
        progress(done, len(todo))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clip-download") as pool:
        futures = {pool.submit(_fetch, yt_dlp, todo[i], split_dir, settings): i for i in first_of.values()}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                done += 1
                if progress is not None:
                    progress(done, len(todo))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    for index, first in duplicates:
        original = results[first]
        assert original is not None
        if original.status == "failed":
            results[index] = original
        else:
            results[index] = ClipOutcome(
                original.key, original.label, "skipped", original.path, "duplicate request", None, 0.0
            )
        done += 1
    if duplicates and progress is not None:
        progress(done, len(todo))
    return [r for r in results if r is not None]


def write_failures_csv(outcomes: Sequence[ClipOutcome], path: str | Path) -> int:
    """Write the failed outcomes as CSV (atomically); returns how many rows were written.

    Columns start like a Kinetics annotation file (`label,youtube_id,time_start,time_end`), so the file
    can be fed back as a list of clips to retry, followed by `category,reason`.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FAILURE_COLUMNS)
    rows = 0
    for outcome in outcomes:
        if outcome.status != "failed":
            continue
        key = outcome.key
        writer.writerow(
            (outcome.label or "", key.youtube_id, key.time_start, key.time_end, outcome.category, outcome.reason)
        )
        rows += 1
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    return rows
