"""Simulation benchmark: the whole production replay, wall and CPU time, against the 60 s target.

Run by `make bench` as `.venv/bin/python benchmarks/simulate.py [--data CSV] [--sample 0.8] [--quick]`.

Each run is `forwardlab monitor simulate` in a fresh subprocess into a fresh folder, everything included
(imports, prepare, training, HTTP scoring of every house, labels, monitoring and all Evidently reports):
  ours        houses sent 32 a request, 8 requests in flight (the default)
  one-a-req   one house a request, 8 in flight: the prototype's request shape through our service
Wall time is what the target is about; CPU time (user + system, all processes) is steadier on a busy
machine. Ratios come from this one run; nothing asserts on time. --quick runs ours only.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED_CSV = HERE.parent.parent / "shared" / "data" / "kc_house_data.csv"
TARGET_WALL_S = 60.0
RUNS = {"ours": [], "one-a-req": ["--batch-size", "1"]}


def run(name: str, extra: list[str], data: str | None, sample: float) -> tuple[float, float]:
    """(wall s, CPU s) of one replay in a subprocess."""
    with tempfile.TemporaryDirectory(prefix=f"forwardlab-sim-{name}-") as out:
        args = [sys.executable, "-m", "forwardlab", "monitor", "simulate", "--sample", str(sample), "--out", out]
        args += ["--data", data] if data else []
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([*args, *extra], capture_output=True, text=True, env=os.environ | {"COLUMNS": "120"})
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{name}: forwardlab monitor simulate failed:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED_CSV) if SHARED_CSV.is_file() else None)
    parser.add_argument("--sample", type=float, default=0.8)
    parser.add_argument("--quick", action="store_true", help="run ours only")
    options = parser.parse_args()
    names = ["ours"] if options.quick else list(RUNS)
    times = {name: run(name, RUNS[name], options.data, options.sample) for name in names}
    load = os.getloadavg()[0]
    print(f"production replay, {options.data or 'King County (downloaded)'}, sample {options.sample}, "
          f"{os.cpu_count()} cores, load average {load:.1f}")  # fmt: skip
    print(f"{'run':<10} {'wall s':>8} {'CPU s':>8} {'wall vs ours':>13}")
    for name, (wall, cpu) in times.items():
        print(f"{name:<10} {wall:>8.1f} {cpu:>8.1f} {wall / times['ours'][0]:>12.2f}x")
    verdict = "PASS" if times["ours"][0] < TARGET_WALL_S else "MISS"
    print(f"{verdict}: whole replay in {times['ours'][0]:.1f} s wall (target < {TARGET_WALL_S:.0f} s)")


if __name__ == "__main__":
    main()
