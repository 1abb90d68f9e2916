"""Drift benchmark: our engine against Evidently's DataDriftPreset on the same frames, 10k to 1M rows a side.

Run by `make bench` as `.venv/bin/python benchmarks/drift.py [--sizes 10000,100000,1000000] [--out DIR]`.

Frames: 9 columns shaped like the house features (3 numerical, 6 categorical: binary, small integer
scales, half-step floats, 70 zip-code strings), reference and current drawn with the same seed in every
process, the current one shifted in some columns so both verdicts occur. Each approach runs in its own
fresh subprocess per size, so its peak RSS (VmHWM) is its own, and neither imports the other's library:
  evidently    Report([DataDriftPreset()], include_tests=True).run(current, reference): its verdicts need
               the tests (a column's drift flag is its test's status)
  forwardlab   DriftCalculator(config).fit(reference).calculate(current)
At up to 100k rows each is timed best of 3; at 1M once. We also time `calculate` alone on a fitted
reference: the cost of each further window in a monitoring run. Verdicts (test, score within 1e-9,
flag; drifted count and dataset drift) are compared column by column. Ratios come from this one run;
nothing asserts on time. Evidently at 1M rows takes about 20 s and 1 GB here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import peak_rss_mib

HERE = Path(__file__).resolve().parent
NUMERICAL = ["sqft_living", "sqft_lot", "sqft_above"]
CATEGORICAL = ["bedrooms", "bathrooms", "waterfront", "zipcode", "condition", "view"]
SIZES = (10_000, 100_000, 1_000_000)
REPEATS_UP_TO = 100_000
TOLERANCE = 1e-9
TARGET_SPEEDUP, TARGET_MEMORY = 10.0, 0.6


# ============================================================================ workers (subprocesses)


def make_frames(rows: int) -> tuple[Any, Any]:
    """Reference and current frames, identical in every process for a given size."""
    import numpy as np
    import pandas as pd

    zips = np.array([f"98{i:03d}" for i in range(70)], dtype=object)

    def frame(seed: int, shift: float) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        living = rng.lognormal(7.5 + shift, 0.4, rows).round()
        zip_weights = np.linspace(1.0, 1.0 + 4 * shift, 70)
        return pd.DataFrame(
            {
                "sqft_living": living,
                "sqft_lot": rng.lognormal(8.9, 0.8, rows).round(),
                "sqft_above": (living * rng.uniform(0.6, 1.0, rows)).round(),
                "bedrooms": rng.choice(np.arange(1, 9), rows, p=[0.01, 0.12, 0.45, 0.3, 0.08, 0.02, 0.01, 0.01]),
                "bathrooms": rng.choice(np.arange(0.5, 5.0, 0.25), rows),
                "waterfront": (rng.random(rows) < 0.008 + shift / 10).astype(np.int64),
                "zipcode": zips[rng.choice(70, rows, p=zip_weights / zip_weights.sum())],  # shared str objects
                "condition": rng.choice(np.arange(1, 6), rows, p=[0.01, 0.01, 0.65 - shift, 0.26 + shift, 0.07]),
                "view": rng.choice(np.arange(0, 5), rows, p=[0.9, 0.02, 0.04, 0.02, 0.02]),
            }
        )

    return frame(1, 0.0), frame(2, 0.05)


def run_evidently(reference: Any, current: Any) -> tuple[dict[str, Any], float]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    started = time.perf_counter()
    definition = DataDefinition(numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    elapsed = time.perf_counter() - started
    result = snapshot.dict()
    failed = {t["name"]: t["status"] == "FAIL" for t in result["tests"]}
    columns, drifted = {}, 0
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            name = config["column"]
            columns[name] = {
                "test": config["method"],
                "score": float(metric["value"]),
                "drift": failed[f"Value Drift for column {name}"],
            }
        elif config["type"].endswith(":DriftedColumnsCount"):
            drifted = int(metric["value"]["count"])
    dataset_drift = next(v for k, v in failed.items() if k.startswith("Share of Drifted Columns"))
    return {"columns": columns, "drifted": drifted, "dataset_drift": dataset_drift}, elapsed


def run_forwardlab(reference: Any, current: Any) -> tuple[dict[str, Any], float, float]:
    from forwardlab.monitor.drift.calculator import DriftCalculator
    from forwardlab.monitor.drift.config import drift_config

    started = time.perf_counter()
    calculator = DriftCalculator(drift_config(numerical=NUMERICAL, categorical=CATEGORICAL)).fit(reference)
    result = calculator.calculate(current)
    elapsed = time.perf_counter() - started
    started = time.perf_counter()
    calculator.calculate(current)  # a further window on the same reference: its statistics are reused
    window_s = time.perf_counter() - started
    # Evidently names a test it chose by its display name
    columns = {c.column: {"test": c.test_name, "score": c.score, "drift": c.drift} for c in result.columns}
    verdicts = {"columns": columns, "drifted": result.drifted_columns, "dataset_drift": result.dataset_drift}
    return verdicts, elapsed, window_s


def worker(approach: str, rows: int, result_path: Path) -> None:
    reference, current = make_frames(rows)
    data_mib = peak_rss_mib()
    repeats = 3 if rows <= REPEATS_UP_TO else 1
    times, window_s = [], None
    for _ in range(repeats):
        if approach == "evidently":
            verdicts, elapsed = run_evidently(reference, current)
        else:
            verdicts, elapsed, window_s = run_forwardlab(reference, current)
        times.append(elapsed)
    out = {
        "approach": approach,
        "rows": rows,
        "best_s": min(times),
        "times_s": times,
        "window_s": window_s,
        "data_peak_mib": data_mib,
        "peak_mib": peak_rss_mib(),
        "verdicts": verdicts,
    }
    result_path.write_text(json.dumps(out))


# ============================================================================ parent


def measure(approach: str, rows: int, scratch: Path) -> dict[str, Any]:
    path = scratch / f"{approach}-{rows}.json"
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", approach, "--rows", str(rows)]
    done = subprocess.run([*command, "--result", str(path)], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{approach} at {rows} rows failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def same_verdicts(ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[bool, str]:
    problems = []
    for column, expected in theirs["columns"].items():
        got = ours["columns"].get(column)
        if got is None:
            problems.append(f"{column}: missing")
        elif got["test"] != expected["test"] or got["drift"] != expected["drift"]:
            problems.append(f"{column}: {got['test']}/{got['drift']} vs {expected['test']}/{expected['drift']}")
        elif abs(got["score"] - expected["score"]) > TOLERANCE:
            problems.append(f"{column}: score {got['score']!r} vs {expected['score']!r}")
    mine, other = (ours["drifted"], ours["dataset_drift"]), (theirs["drifted"], theirs["dataset_drift"])
    if mine != other:
        problems.append(f"dataset (drifted columns, flag): {mine} vs {other}")
    n = len(theirs["columns"])
    return (not problems, f"identical ({n}/{n})" if not problems else "; ".join(problems))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="rows per side, comma-separated")
    parser.add_argument("--out", type=Path, help="also write results.json here")
    parser.add_argument("--worker", choices=["evidently", "forwardlab"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.rows, args.result)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"drift of 9 columns (3 numerical, 6 categorical), each approach in its own subprocess; cpus: {os.cpu_count()}"
    )
    header = (
        f"{'rows/side':>10}{'Evidently s':>13}{'ours s':>9}{'speed-up':>10}{'next window s':>15}"
        f"{'Evidently MiB':>15}{'ours MiB':>10}{'memory':>8}  verdicts"
    )
    print(header)
    print("-" * len(header))
    rows_out, checks = [], []
    with tempfile.TemporaryDirectory(prefix="fl-bench-drift-") as scratch:
        for rows in sizes:
            theirs = measure("evidently", rows, Path(scratch))
            ours = measure("forwardlab", rows, Path(scratch))
            speedup = theirs["best_s"] / ours["best_s"]
            memory = ours["peak_mib"] / theirs["peak_mib"]
            identical, verdict_text = same_verdicts(ours["verdicts"], theirs["verdicts"])
            print(
                f"{rows:>10,}{theirs['best_s']:>13.3f}{ours['best_s']:>9.3f}{speedup:>9.1f}x{ours['window_s']:>15.3f}"
                f"{theirs['peak_mib']:>15.0f}{ours['peak_mib']:>10.0f}{memory:>7.2f}x  {verdict_text}"
            )
            result = {"rows": rows, "evidently": theirs, "forwardlab": ours, "speedup": speedup}
            rows_out.append(result | {"memory_ratio": memory, "identical": identical})
            checks.append((identical, f"{rows:,} rows: verdicts identical to Evidently's"))
            if rows == max(sizes):
                checks.append(
                    (speedup >= TARGET_SPEEDUP, f"{rows:,} rows: {speedup:.1f}x faster (>= {TARGET_SPEEDUP:g}x)")
                )
                checks.append(
                    (
                        memory <= TARGET_MEMORY,
                        f"{rows:,} rows: {memory:.2f}x Evidently's peak RSS (<= {TARGET_MEMORY:g}x)",
                    )
                )
    last = rows_out[-1]
    verdicts, theirs, ours = last["forwardlab"]["verdicts"], last["evidently"], last["forwardlab"]
    above_theirs = theirs["peak_mib"] - theirs["data_peak_mib"]
    above_ours = ours["peak_mib"] - ours["data_peak_mib"]
    print(
        f"\n{verdicts['drifted']} of 9 columns drift at {sizes[-1]:,} rows; dataset drift: {verdicts['dataset_drift']}"
    )
    print("peak MiB includes building the frames, the same in both processes; above that peak, at the largest size:")
    print(f"Evidently +{above_theirs:.0f} MiB, ours +{above_ours:.0f} MiB")
    print("'next window s': calculate() on the already fitted reference, the cost of each further window\n")
    for ok, text in checks:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(rows_out, indent=2))


if __name__ == "__main__":
    main()
