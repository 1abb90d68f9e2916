"""A real webhook receiver on 127.0.0.1: records every POST and answers with statuses a test queues up.

with webhook_receiver() as hook:
    hook.answer(503, 503)          # the next two requests fail, then 200s again
    deliver(alerts, WebhookConfig(url=hook.url), run_id="r")
    assert [r.status for r in hook.received] == [503, 503, 200]
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    body: dict[str, Any]
    headers: dict[str, str]
    status: int


@dataclass
class WebhookReceiver:
    url: str
    received: list[Received] = field(default_factory=list)
    _answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        """Queue statuses for the next requests (with optional headers, e.g. Retry-After); then 200."""
        with self._lock:
            self._answers.extend((s, headers or {}) for s in statuses)

    def _next(self) -> tuple[int, dict[str, str]]:
        with self._lock:
            return self._answers.pop(0) if self._answers else (200, {})


@contextlib.contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    receiver = WebhookReceiver(f"http://127.0.0.1:{server.server_address[1]}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            status, headers = receiver._next()
            with receiver._lock:
                receiver.received.append(Received(body, {k.lower(): v for k, v in self.headers.items()}, status))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
