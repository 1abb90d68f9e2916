"""Resumable, verified HTTP(S) downloads shared by every part of the product.

Datasets arrive as multi-GiB tarballs over connections that drop; a download that restarts from zero
after every cut may never finish. So bytes go to a `.NAME.partial` file beside the destination (the
`fileio.atomic_path` convention), a retry continues it with a `Range` request, and only a complete,
verified file is renamed into place: whoever sees `dest` sees a whole file.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from forwardlab.errors import DownloadError

if TYPE_CHECKING:  # httpx is imported by the calls that use it: the CLI loads this module at start
    import httpx

Progress = Callable[[int, int], None]
"""`progress(bytes_done, bytes_total)`; `bytes_total` is 0 while the size is unknown."""

_CHUNK_BYTES = 1 << 20
_MAX_BACKOFF_S = 60.0
_FATAL_STATUSES = frozenset({401, 403, 404, 410})
_CONTENT_RANGE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$")


def cache_dir() -> Path:
    """Where downloads and caches live: `$FORWARDLAB_HOME`, else `~/.cache/forwardlab` (created)."""
    path = Path(os.environ.get("FORWARDLAB_HOME") or "~/.cache/forwardlab").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def partial_path(dest: Path) -> Path:
    """The in-progress file for `dest`, named as `fileio.atomic_path` names its temporaries."""
    return dest.with_name(f".{dest.name}.partial")


class _Transient(Exception):
    """A failure worth retrying: the network or the server may do better next time."""

    def __init__(self, reason: str, retry_after_s: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class _Request:
    """What one attempt needs to know and carries between attempts."""

    url: str
    partial: Path
    expected_size: int | None
    timeout_s: float
    progress: Progress | None


def fetch(
    url: str,
    dest: str | Path,
    *,
    expected_size: int | None = None,
    sha256: str | None = None,
    retries: int = 5,
    backoff_s: float = 0.5,
    timeout_s: float = 30.0,
    progress: Progress | None = None,
    client: httpx.Client | None = None,
) -> Path:
    """Download `url` to `dest`, resuming a previous partial download, and return `dest`.

    An existing `dest` that passes the given checks is kept without touching the network: it can only
    exist complete, because it is written by rename. Transient failures (connection errors, timeouts,
    429, 5xx) are retried `retries` times with exponential backoff and jitter; an attempt that made
    progress does not use up a retry, so a long download over a connection that keeps dropping still
    finishes. 401/403/404/410 and size or checksum mismatches raise `DownloadError` at once.
    """
    dest = Path(dest)
    if dest.is_file() and _verified(dest, expected_size, sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = _Request(url, partial_path(dest), expected_size, timeout_s, progress)
    owned = client is None
    if client is None:
        import httpx

        client = httpx.Client(follow_redirects=True)
    try:
        _download(client, request, retries, backoff_s)
    finally:
        if owned:
            client.close()
    _check_digest(request, sha256)
    os.replace(request.partial, dest)
    return dest


def _verified(path: Path, expected_size: int | None, sha256: str | None) -> bool:
    if expected_size is not None and path.stat().st_size != expected_size:
        return False
    return sha256 is None or sha256_file(path) == sha256.lower()


def _download(client: httpx.Client, request: _Request, retries: int, backoff_s: float) -> None:
    failures = 0
    while True:
        before = _size(request.partial)
        try:
            _attempt(client, request)
            return
        except _Transient as error:
            if _size(request.partial) > before:
                failures = 0
            failures += 1
            if failures > retries:
                raise DownloadError(
                    request.url, f"gave up after {failures} failed attempts; last: {error.reason}"
                ) from error
            time.sleep(max(_backoff(backoff_s, failures), error.retry_after_s))


def _backoff(base_s: float, failures: int) -> float:
    """Exponential delay with jitter, so many clients retrying one mirror do not arrive in step."""
    return min(_MAX_BACKOFF_S, base_s * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)


def _attempt(client: httpx.Client, request: _Request) -> None:
    """One GET that appends to the partial file; raises `_Transient` for what a retry may fix."""
    import httpx

    offset = _size(request.partial)
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        with client.stream(
            "GET", request.url, headers=headers, timeout=request.timeout_s, follow_redirects=True
        ) as response:
            total = _start_body(response, request, offset)
            if total is None:
                return
            _receive(response, request, total)
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:
        raise DownloadError(request.url, f"not a downloadable URL: {error}") from error
    except httpx.TransportError as error:
        raise _Transient(f"{type(error).__name__}: {error}") from error
    except httpx.HTTPError as error:
        raise DownloadError(request.url, f"{type(error).__name__}: {error}") from error


def _start_body(response: httpx.Response, request: _Request, offset: int) -> int | None:
    """Decide from the status where the body goes; the file's expected total size, or None when done."""
    status = response.status_code
    if status == 206:
        start, total = _content_range(response, request.url)
        if start != offset:
            request.partial.unlink(missing_ok=True)
            raise _Transient(f"server resumed at byte {start}, not {offset}; restarting from zero")
        return _agreed_total(request, total)
    if status == 200:
        if offset:
            request.partial.unlink(missing_ok=True)
        length = response.headers.get("Content-Length")
        return _agreed_total(request, int(length) if length is not None and length.isdigit() else None)
    if status == 416 and offset:
        _, total = _content_range(response, request.url)
        if offset == _agreed_total(request, total):
            return None
        request.partial.unlink(missing_ok=True)
        raise _Transient(f"HTTP 416 for a partial file of {offset} bytes; restarting from zero")
    if status in _FATAL_STATUSES:
        raise DownloadError(request.url, f"HTTP {status} {response.reason_phrase}")
    if status == 429 or status == 408 or status >= 500:
        raise _Transient(f"HTTP {status} {response.reason_phrase}", _retry_after(response))
    raise DownloadError(request.url, f"unexpected HTTP {status} {response.reason_phrase}")


def _content_range(response: httpx.Response, url: str) -> tuple[int | None, int | None]:
    """(first byte, total size) from `Content-Range`; either is None where the server says `*`."""
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "").strip())
    if match is None:
        raise DownloadError(url, f"HTTP {response.status_code} without a valid Content-Range header")
    start = int(match[1]) if match[1] is not None else None
    total = int(match[3]) if match[3] != "*" else None
    return start, total


def _agreed_total(request: _Request, server_total: int | None) -> int | None:
    """The size the file must reach: the server's and the caller's, which must agree when both are known."""
    expected = request.expected_size
    if server_total is not None and expected is not None and server_total != expected:
        request.partial.unlink(missing_ok=True)
        raise DownloadError(request.url, f"size mismatch: server has {server_total} bytes, expected {expected}")
    return server_total if server_total is not None else expected


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("Retry-After", "")
    return min(float(value), _MAX_BACKOFF_S) if value.isdigit() else 0.0


def _receive(response: httpx.Response, request: _Request, total: int | None) -> None:
    """Append the body to the partial file, then check the size it must have."""
    request.partial.parent.mkdir(parents=True, exist_ok=True)
    with request.partial.open("ab") as out:
        done = out.tell()
        for chunk in response.iter_raw():
            out.write(chunk)
            done += len(chunk)
            if request.progress is not None:
                request.progress(done, total or 0)
    if total is None:
        return
    if done < total:
        raise _Transient(f"connection ended after {done} of {total} bytes")
    if done > total:
        request.partial.unlink(missing_ok=True)
        raise DownloadError(request.url, f"size mismatch: received {done} bytes, expected {total}")


def _check_digest(request: _Request, sha256: str | None) -> None:
    if sha256 is None:
        return
    actual = sha256_file(request.partial)
    if actual != sha256.lower():
        request.partial.unlink(missing_ok=True)
        raise DownloadError(request.url, f"sha256 mismatch: expected {sha256.lower()}, got {actual}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
