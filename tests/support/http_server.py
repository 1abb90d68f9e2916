"""A real HTTP server on 127.0.0.1 for download tests: serves a folder, honours Range, misbehaves on request.

Tests talk to it over real sockets, so resumption, retries and error handling are exercised the way a
flaky mirror would exercise them, with no mocked client. Faults are set per URL path and consumed as
requests arrive; `requests` logs every request (with its Range header) so a test can check *how* a
client recovered, not only that it did.

    with serve_directory(tmp_path) as server:
        server.fail("/data/a.bin", 503, times=2)
        server.cut_after("/data/b.bin", 1000)
        fetch(f"{server.url}/data/a.bin", dest)
        assert [r.status for r in server.requests_for("/data/a.bin")] == [503, 503, 200]
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it, and the status it answered."""

    method: str
    path: str
    range: str | None
    status: int


@dataclass
class _Faults:
    """Pending misbehaviour for one path; counters go down as requests consume them."""

    statuses: list[int] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    ignore_range: bool = False


class FileServer:
    """The running server: its base `url`, fault switches and request log."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._faults: dict[str, _Faults] = {}
        self._log: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="test-http", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def fail(self, path: str, status: int, times: int = 1) -> None:
        """Answer the next `times` requests for `path` with `status` and a short body."""
        with self._lock:
            self._fault(path).statuses.extend([status] * times)

    def cut_after(self, path: str, nbytes: int, times: int = 1) -> None:
        """Send full headers but close the connection after `nbytes` of body, `times` times."""
        with self._lock:
            self._fault(path).cuts.extend([nbytes] * times)

    def delay(self, path: str, seconds: float) -> None:
        """Wait `seconds` before answering every request for `path`."""
        with self._lock:
            self._fault(path).delay_s = seconds

    def ignore_range(self, path: str) -> None:
        """Answer Range requests for `path` with the whole file and 200, like servers without range support."""
        with self._lock:
            self._fault(path).ignore_range = True

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def requests_for(self, path: str) -> list[RequestRecord]:
        wanted = _normalise(path)
        return [r for r in self.requests if r.path == wanted]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _fault(self, path: str) -> _Faults:
        return self._faults.setdefault(_normalise(path), _Faults())

    def _take(self, path: str) -> tuple[int | None, int | None, float, bool]:
        """Consume the next fault for `path`: (status to fail with, bytes before a cut, delay, ignore range)."""
        with self._lock:
            faults = self._faults.get(path)
            if faults is None:
                return None, None, 0.0, False
            status = faults.statuses.pop(0) if faults.statuses else None
            cut = faults.cuts.pop(0) if faults.cuts and status is None else None
            return status, cut, faults.delay_s, faults.ignore_range

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)


def _normalise(path: str) -> str:
    return "/" + path.lstrip("/")


def _make_handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle(self) -> None:
            """Serve the connection; a client that hangs up early (as clients may) is not an error."""
            try:
                super().handle()
            except ConnectionError:
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            """Silence the default stderr access log; the request log replaces it."""

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, *, body: bool) -> None:
            path = _normalise(urllib.parse.unquote(urllib.parse.urlsplit(self.path).path))
            range_header = self.headers.get("Range")
            status, cut, delay_s, ignore_range = server._take(path)
            if delay_s:
                time.sleep(delay_s)
            file = (server.root / path.lstrip("/")).resolve()
            if status is not None:
                self._send_status(path, range_header, status)
            elif not file.is_relative_to(server.root) or not file.is_file():
                self._send_status(path, range_header, HTTPStatus.NOT_FOUND)
            else:
                self._send_file(path, range_header, file, cut, body=body, ignore_range=ignore_range)

        def _send_status(self, path: str, range_header: str | None, status: int) -> None:
            server._record(RequestRecord(self.command, path, range_header, status))
            payload = f"{status} {HTTPStatus(status).phrase}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _send_file(
            self,
            path: str,
            range_header: str | None,
            file: Path,
            cut: int | None,
            *,
            body: bool,
            ignore_range: bool,
        ) -> None:
            size = file.stat().st_size
            start, end = 0, size - 1
            status = HTTPStatus.OK
            match = _RANGE.match(range_header or "") if not ignore_range else None
            if match is not None:
                start = int(match[1])
                end = min(int(match[2]), size - 1) if match[2] else size - 1
                if start >= size or start > end:
                    server._record(RequestRecord(self.command, path, range_header, 416))
                    self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = HTTPStatus.PARTIAL_CONTENT
            server._record(RequestRecord(self.command, path, range_header, int(status)))
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if status == HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if body:
                self._write_body(file, start, end - start + 1, cut)

        def _write_body(self, file: Path, start: int, length: int, cut: int | None) -> None:
            limit = length if cut is None else min(cut, length)
            with file.open("rb") as handle:
                handle.seek(start)
                remaining = limit
                while remaining > 0:
                    chunk = handle.read(min(_CHUNK, remaining))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)
            if cut is not None:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

    return Handler


@contextlib.contextmanager
def serve_directory(root: str | Path) -> Iterator[FileServer]:
    """Serve `root` on a free 127.0.0.1 port for the duration of the block."""
    server = FileServer(Path(root))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def unused_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens: every connection is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
