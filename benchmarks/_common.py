"""What the benchmarks share: reading a process's peak memory and running a worker in a fresh subprocess.

Each benchmark runs every approach in its own process so that its peak RSS is its own; the worker prints
one `RESULT_TAG` line of JSON, which `run_tagged` picks out of its output.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

RESULT_TAG = "@@RESULT "


def status_kib(pid: int | str, key: str) -> int | None:
    """A `/proc/<pid>/status` field in KiB (e.g. VmHWM, VmRSS); None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mib() -> float:
    """Peak RSS of this process so far, MiB.

    VmHWM, not ru_maxrss: after fork+exec Linux carries the parent's peak into the child's ru_maxrss,
    so a worker started by a big parent would report the parent's size.
    """
    kib = status_kib("self", "VmHWM")
    if kib is not None:
        return kib / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux KiB; macOS bytes


def print_result(result: dict[str, Any]) -> None:
    """The worker side: the one line `run_tagged` reads."""
    print(RESULT_TAG + json.dumps(result), flush=True)


def run_tagged(cmd: list[str], *, timeout: float) -> dict[str, Any]:
    """Run a worker and return the JSON it printed after `RESULT_TAG`, plus `wall_s`; a worker that timed
    out, crashed or printed no result gives `{"ok": False, "error": ...}` instead of raising."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f}s"}
    wall = time.perf_counter() - t0
    for line in p.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return {**json.loads(line[len(RESULT_TAG) :]), "wall_s": wall}
    tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"ok": False, "error": f"worker exited {p.returncode}: {tail[0][:300]}", "wall_s": wall}
