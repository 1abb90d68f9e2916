"""Run the service with uvicorn: in a background thread of this process (tests, the simulation, the
benchmark) or in the foreground (`forwardlab monitor serve`).

The listening socket is bound before uvicorn starts, so port 0 picks a free port without a race and the
real address is known up front.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn

from forwardlab.monitor.errors import ServiceConfigError

STARTUP_TIMEOUT_S = 60.0


@dataclass
class RunningServer:
    """A service running in a background thread; `stop()` shuts it down gracefully."""

    base_url: str
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServiceConfigError(f"{host}:{port}: cannot listen there: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: Any, log_level: str) -> uvicorn.Server:
    # Access logs off: at thousands of requests a second, logging each one costs more than serving it.
    config = uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=10)
    return uvicorn.Server(config)


def start_server(app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> RunningServer:
    """Serve `app` from a background thread; return once it accepts connections.

    Example: `with start_server(create_app(...)) as server: httpx.get(server.base_url + "/healthz")`
    """
    sock = bind(host, port)
    server = _server(app, log_level)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="forwardlab-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise ServiceConfigError(f"{_url(sock)}: the service did not start (see the log above)")
        time.sleep(0.01)
    return RunningServer(_url(sock), server, thread)


def serve_forever(
    app: Any, *, host: str, port: int, log_level: str = "info", on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve `app` in the foreground until SIGINT/SIGTERM; `on_ready(base_url)` once it is listening."""
    sock = bind(host, port)
    server = _server(app, log_level)
    url = _url(sock)

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.01)
        if server.started and on_ready is not None:
            on_ready(url)

    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])
