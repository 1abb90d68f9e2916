"""Multivariate drift benchmark: ours against NannyML's DataReconstructionDriftCalculator and
DomainClassifierCalculator on every built-in scenario, with the same reference and the same monthly windows.

Run as `.venv/bin/python benchmarks/multivariate.py [--rows-per-month 1200] [--scenarios a,b] [--out DIR]`
(about 3 minutes on 2 cores; `--out` defaults to benchmarks/output/multivariate).

Data: each scenario's synthetic market through `data.prepare`; the reference is its training period (sales to
2014-10-31), production the twelve months after. Windows are calendar months of the SALE date (NannyML:
`chunk_period="M"` on date_sold): the market's changes start on a sale date, so no window mixes rows from
before and after the onset (by listing month, which is 0-59 days earlier, the onset's month would). Both
approaches fit on the same reference frame and see the same twelve windows; NannyML's thresholds come from
its six monthly reference chunks (mean +- 3 sd for reconstruction, a fixed 0.45-0.65 for the classifier), ours
as `forwardlab.monitor.drift.multivariate` says. Columns: the nine house features; NannyML gets the
categorical ones as pandas categories (its reconstruction calculator picks categorical columns by dtype) and
named in `treat_as_categorical`.

NannyML's classifier keeps its default LightGBM settings except `n_jobs=1` (and `verbosity=-1`): with its
default (-1) each fit took 4.5 s instead of 0.1 s on this 2-core machine (threads spinning against each
other), which would time the machine, not the method; ours also trains in one thread.

Each approach runs in its own subprocess over all scenarios (neither imports the other's calculators; both
build the market with forwardlab), timed per scenario: fit plus the twelve windows (PCA: best of 3). Scores
per scenario and method: detected = an alert in any month from the onset on; delay = months from the onset's
to the first alert (0: caught in the month it began); false alarms = alerted months before the onset (for
the control, all twelve). Ratios come from this one run; nothing asserts on time.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from _common import print_result, run_tagged

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "output" / "multivariate"
METHODS = ("pca", "classifier")
NANNYML_COLUMNS = {"pca": "reconstruction_error", "classifier": "domain_classifier_auroc"}
WORKER_TIMEOUT_S = 900
REPEATS = {"pca": 3, "classifier": 1}  # PCA takes a fraction of a second: best of 3 steadies its time


# ============================================================================ workers (subprocesses)


def scenario_frames(name: str, rows_per_month: int) -> tuple[Any, Any, list[str], list[str]]:
    """The scenario's reference and production rows (features and sale date), and its onset month."""
    from forwardlab.monitor.data import prepare
    from forwardlab.monitor.features import HOUSE
    from forwardlab.monitor.scenarios import SCENARIOS

    prepared = prepare(SCENARIOS[name].sales(rows_per_month=rows_per_month))
    columns = [*HOUSE.names, "date_sold"]
    return prepared.train[columns], prepared.prod[columns], list(HOUSE.numerical), list(HOUSE.categorical)


def run_ours(reference: Any, production: Any, numerical: list[str], categorical: list[str]) -> dict[str, Any]:
    from forwardlab.monitor.drift.multivariate import DomainClassifierDrift, ReconstructionDrift

    months = production["date_sold"].dt.to_period("M")
    makers = {
        "pca": lambda: ReconstructionDrift(numerical, categorical),
        "classifier": lambda: DomainClassifierDrift(numerical, categorical, seed=0),
    }
    out: dict[str, Any] = {}
    for method, make in makers.items():
        times = []
        for _ in range(REPEATS[method]):
            started = time.perf_counter()
            calculator = make().fit(reference)
            windows = [
                {"month": str(month), **calculator.calculate(rows).to_dict()}
                for month, rows in production.groupby(months)
            ]
            times.append(time.perf_counter() - started)
        out[method] = {"seconds": min(times), "windows": windows}
    return out


def run_nannyml(reference: Any, production: Any, numerical: list[str], categorical: list[str]) -> dict[str, Any]:
    import nannyml
    from nannyml.drift.multivariate.domain_classifier.calculator import DEFAULT_LGBM_HYPERPARAMS

    features = [*numerical, *categorical]

    def typed(frame: Any) -> Any:
        return frame.astype(dict.fromkeys(categorical, "category"))

    reference, production = typed(reference), typed(production)
    hyperparameters = {k: v for k, v in DEFAULT_LGBM_HYPERPARAMS.items() if k != "silent"}  # LightGBM 4 lacks it
    makers = {
        "pca": lambda: nannyml.DataReconstructionDriftCalculator(
            column_names=features, timestamp_column_name="date_sold", chunk_period="M"
        ),
        "classifier": lambda: nannyml.DomainClassifierCalculator(
            feature_column_names=features,
            treat_as_categorical=categorical,
            timestamp_column_name="date_sold",
            chunk_period="M",
            hyperparameters=hyperparameters | {"n_jobs": 1, "verbosity": -1},
        ),
    }
    out: dict[str, Any] = {}
    for method, make in makers.items():
        times = []
        for _ in range(REPEATS[method]):
            started = time.perf_counter()
            frame = make().fit(reference).calculate(production).filter(period="analysis").to_df()
            times.append(time.perf_counter() - started)
        metric = NANNYML_COLUMNS[method]
        windows = []
        for _, row in frame.iterrows():
            lower = row.get((metric, "lower_threshold"))
            windows.append(
                {
                    "month": str(row[("chunk", "key")]),
                    "value": float(row[(metric, "value")]),
                    "lower": None if lower is None or math.isnan(lower) else float(lower),
                    "upper": float(row[(metric, "upper_threshold")]),
                    "alert": bool(row[(metric, "alert")]),
                }
            )
        out[method] = {"seconds": min(times), "windows": windows}
    return out


def worker(approach: str, names: list[str], rows_per_month: int) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    if approach == "nannyml":
        os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # no analytics calls home from a benchmark
        try:
            import nannyml

            version = nannyml.__version__
        except Exception as exc:  # any import failure is reported, not raised
            print_result({"ok": False, "error": f"nannyml does not import: {type(exc).__name__}: {exc}"})
            return
    else:
        version = "forwardlab"
    run = run_nannyml if approach == "nannyml" else run_ours
    scenarios = {}
    for name in names:
        scenarios[name] = run(*scenario_frames(name, rows_per_month))
    print_result({"ok": True, "version": version, "scenarios": scenarios})


# ============================================================================ parent


def score(windows: list[dict[str, Any]], onset: str | None) -> dict[str, Any]:
    """Detection delay (months from the onset's to the first alert) and false alarms before the onset."""
    before = [w for w in windows if onset is None or w["month"] < onset]
    after = windows[len(before) :]
    first = next((i for i, w in enumerate(after) if w["alert"]), None)
    values = [w["value"] for w in after if w["value"] is not None]
    return {
        "detected": None if onset is None else first is not None,
        "delay_months": first,
        "false_alarms": sum(bool(w["alert"]) for w in before),
        "months_before_onset": len(before),
        "mean_value_after_onset": sum(values) / len(values) if values else None,
    }


def verdict(scored: dict[str, Any] | None) -> tuple[str, str]:
    if scored is None:
        return "n/a", "n/a"
    detected = scored["detected"]
    delay = "-" if detected is None else str(scored["delay_months"]) if detected else "missed"
    return delay, f"{scored['false_alarms']}/{scored['months_before_onset']}"


def value(scored: dict[str, Any] | None) -> str:
    mean = None if scored is None else scored["mean_value_after_onset"]
    return "-" if mean is None else f"{mean:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-month", type=int, default=1200, help="sales a month (the market's default)")
    parser.add_argument("--scenarios", help="comma-separated scenario names (default: all built-in)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for results.json and results.csv")
    parser.add_argument("--worker", choices=["ours", "nannyml"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "src"))
    from forwardlab.monitor.scenarios import SCENARIOS

    names = args.scenarios.split(",") if args.scenarios else list(SCENARIOS)
    if args.worker:
        worker(args.worker, names, args.rows_per_month)
        return

    env_path = os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"] = env_path
    command = [sys.executable, str(Path(__file__).resolve()), "--rows-per-month", str(args.rows_per_month)]
    command += ["--scenarios", ",".join(names)]
    print(
        f"multivariate drift on {len(names)} scenarios, {args.rows_per_month} sales a month, monthly windows by "
        f"sale date; each approach in its own subprocess; cpus: {os.cpu_count()}"
    )
    ours = run_tagged([*command, "--worker", "ours"], timeout=WORKER_TIMEOUT_S)
    if not ours.get("ok"):
        raise SystemExit(f"ours failed: {ours.get('error')}")
    theirs = run_tagged([*command, "--worker", "nannyml"], timeout=WORKER_TIMEOUT_S)
    if not theirs.get("ok"):
        print(f"NannyML not compared: {theirs.get('error')}")

    header = (
        f"{'scenario':<25}{'onset':<9}{'method':<12}{'delay ours':>11}{'NannyML':>9}"
        f"{'false alarms ours':>19}{'NannyML':>9}{'value ours':>12}{'NannyML':>9}"
        f"{'ours s':>8}{'NannyML s':>11}{'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for name in names:
        onset = SCENARIOS[name].onset
        onset_month = None if onset is None else f"{onset:%Y-%m}"
        for method in METHODS:
            mine = ours["scenarios"][name][method]
            other = theirs["scenarios"][name][method] if theirs.get("ok") else None
            mine_score = score(mine["windows"], onset_month)
            other_score = None if other is None else score(other["windows"], onset_month)
            ratio = None if other is None else mine["seconds"] / other["seconds"]
            row = {
                "scenario": name,
                "onset": onset_month,
                "method": method,
                "ours": mine_score | {"seconds": mine["seconds"]},
                "nannyml": None if other is None else other_score | {"seconds": other["seconds"]},
                "time_ratio_ours_to_nannyml": ratio,
            }
            rows.append(row)
            delay_ours, fa_ours = verdict(mine_score)
            delay_theirs, fa_theirs = verdict(other_score)
            print(
                f"{name:<25}{onset_month or '-':<9}{method:<12}{delay_ours:>11}{delay_theirs:>9}"
                f"{fa_ours:>19}{fa_theirs:>9}{value(mine_score):>12}{value(other_score):>9}"
                f"{mine['seconds']:>8.2f}{'n/a' if other is None else format(other['seconds'], '.2f'):>11}"
                f"{'n/a' if ratio is None else format(ratio, '.2f'):>7}"
            )
    for method in METHODS:
        mine_s = sum(r["ours"]["seconds"] for r in rows if r["method"] == method)
        if theirs.get("ok"):
            other_s = sum(r["nannyml"]["seconds"] for r in rows if r["method"] == method)
            print(f"{method}: ours {mine_s:.1f} s, NannyML {other_s:.1f} s in all: ours/NannyML {mine_s / other_s:.2f}")
    print(
        "delay: months from the onset's to the first alert ('missed': none after it, '-': no onset); false alarms:"
        " alerted months before the onset; value: mean after the onset (pca: reconstruction error, each side's own"
        " scale; classifier: AUC); s: fit + 12 windows"
    )
    write_outputs(args.out, rows, ours, theirs)


def write_outputs(out: Path, rows: list[dict[str, Any]], ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    everything = {"table": rows, "ours": ours, "nannyml": theirs}
    (out / "results.json").write_text(json.dumps(everything, indent=2))
    with (out / "results.csv").open("w", newline="", encoding="utf-8") as handle:
        fields = ["scenario", "onset", "method", "time_ratio_ours_to_nannyml"]
        sides = ["detected", "delay_months", "false_alarms", "months_before_onset", "mean_value_after_onset"]
        sides.append("seconds")
        header = fields + [f"{side}_{field}" for side in ("ours", "nannyml") for field in sides]
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        for row in rows:
            flat = {k: row[k] for k in fields}
            for side in ("ours", "nannyml"):
                for field in sides:
                    flat[f"{side}_{field}"] = None if row[side] is None else row[side][field]
            writer.writerow(flat)
    print(f"wrote {out / 'results.json'} and {out / 'results.csv'}")


if __name__ == "__main__":
    main()
