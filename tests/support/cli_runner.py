"""Run the real `forwardlab` entry point in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    base = {"COLUMNS": "200", "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NO_COLOR": "1"}
    if "PYTHONPATH" in os.environ:  # a checkout run with PYTHONPATH=src tests its own code, not the installed one
        base["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [sys.executable, "-m", "forwardlab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
    )
