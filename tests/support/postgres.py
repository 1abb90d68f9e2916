"""A throwaway PostgreSQL cluster for the store and service tests, started from Debian's binaries.

The store has to behave the same on PostgreSQL as on SQLite, so those tests must run wherever the server
binaries exist (`make system-deps` installs them), not only where someone exported a URL. The cluster lives
in a temporary folder, listens on a free loopback port and a private socket folder, runs with fsync off
(crash safety is worth nothing here) and is removed afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SERVER_USER = "postgres"  # initdb refuses to run as root; Debian's package creates this user


def bin_dir() -> Path:
    """The folder holding initdb (on PATH, else the newest /usr/lib/postgresql/N/bin), or skip the calling
    test with a reason; under CI, which installs the server, fail instead."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    reason = "the PostgreSQL server (initdb) is not installed (make system-deps installs Debian's postgresql)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user() -> tuple[list[str], str | None]:
    """The command prefix that runs a server binary, and who must own its files (None: us)."""
    if os.geteuid() != 0:
        return [], None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError as exc:
        raise RuntimeError(f"running as root, but there is no {SERVER_USER!r} user to run PostgreSQL as") from exc
    return ["runuser", "-u", SERVER_USER, "--"], SERVER_USER


def _run(command: list[str], root: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        log = root / "server.log"
        tail = log.read_text()[-2000:] if log.is_file() else ""
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}{tail}")


@contextmanager
def throwaway_postgres(bin_dir: Path, *, database: str = "forwardlab_test") -> Iterator[str]:
    """Start a cluster, create `database`, yield its SQLAlchemy URL (psycopg 3), stop and delete it."""
    as_user, owner = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="forwardlab-pg-"))
    data, password, port = root / "data", secrets.token_hex(16), _free_port()
    pg_ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        if owner is not None:
            shutil.chown(root, owner)
            shutil.chown(pwfile, owner)
        _run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
              "--auth=scram-sha-256", f"--pwfile={pwfile}"], root)  # fmt: skip
        pwfile.unlink()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200"
        _run([*pg_ctl, "-l", str(root / "server.log"), "-w", "start", "-o", options], root)
        try:
            _run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database],
                 root, env={**os.environ, "PGPASSWORD": password})  # fmt: skip
            yield f"postgresql+psycopg://postgres:{password}@127.0.0.1:{port}/{database}"
        finally:
            subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
