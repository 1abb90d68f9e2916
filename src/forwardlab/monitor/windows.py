"""The monitoring run: per time window, production compared with the training reference.

The caller names the columns and their roles (`columns.ColumnRoles`: features with their tests, target,
prediction, string-typed columns); this module knows no model. The price service's are
`house.house_columns()`.

Current rows of a window: the predictions whose ground truth arrived in it (`label_at` in [start, end),
the prototype's "newly sold"). Reference: the training predictions, found one of two ways
(`ReferenceSource`): the labelled predictions in the store whose ground truth arrived before a date
(`end`, e.g. the day after the model's training cut-off; the simulation scores the training set through
the service first), or a CSV/Parquet file of scored training rows (the features, the prediction and the
target). With `reference_sample="match"` each window is compared with a seeded sample of the
reference as large as the window (the prototype's way); with "all" (default) with the whole reference,
whose statistics are then computed once for every window.

Windows: calendar months, ISO weeks (Monday to Monday) or N-day spans from the start's midnight, all in
UTC and clipped to [start, end). By default they start at the reference's end (or the first ground
truth) and run through the window holding the last ground truth.

Per window: feature drift (`drift.calculator.DriftCalculator`), target and prediction drift, regression metrics in
USD (`performance.PerformanceCalculator`), the three Evidently reports (`reports`), alerts (`alerts`), and
the prediction-time view of the same window (`production`): the predictions made in it, labelled or not,
as the store held them at the run's end (coverage, label-free MAE estimate, multivariate drift, segments).
Output: `monitoring.json` and `reports/START_END/*.html` under `out_dir`, and the same
records as time series in the metrics store (`results`), saved in one transaction after everything was
computed. Reports and JSON are staged in `out_dir/.staging-RUN` and moved into place only after the store
committed, so a run that fails leaves the store, the JSON and the published reports as they were.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from forwardlab.fileio import write_text_atomic
from forwardlab.monitor import results
from forwardlab.monitor.alerts import Alert, AlertConfig, Delivery, WindowSummary, deliver, evaluate
from forwardlab.monitor.columns import ColumnRoles
from forwardlab.monitor.drift.calculator import INSUFFICIENT, ColumnDrift, DriftCalculator, DriftResult
from forwardlab.monitor.errors import AlertConfigError, FrameError, MonitoringRunError
from forwardlab.monitor.frames import require_columns
from forwardlab.monitor.performance import PERFORMANCE_METRICS, PerformanceCalculator, RegressionMetrics
from forwardlab.monitor.production import (
    ProductionCalculator,
    ProductionResult,
    known_at,
    production_metrics,
)
from forwardlab.monitor.store import Store
from forwardlab.progress import Advance

if TYPE_CHECKING:
    from forwardlab.monitor.reports import ReportJob

ReferenceSample = Literal["all", "match"]
JSON_FILE, REPORTS_DIR = "monitoring.json", "reports"
DEFAULT_SEED = 42
_DAYS = re.compile(r"^(\d+)[- ]?days?$")


# ============================================================================ windows


@dataclass(frozen=True)
class WindowSpec:
    """How time is cut: `month`, `week` or `N-days` (e.g. `14-days`)."""

    text: str
    unit: Literal["month", "week", "days"]
    days: int = 0

    @classmethod
    def parse(cls, text: str) -> WindowSpec:
        value = text.strip().lower()
        if value in ("month", "week"):
            return cls(value, value)  # type: ignore[arg-type]
        match = _DAYS.match(value)
        if match and int(match.group(1)) >= 1:
            days = int(match.group(1))
            return cls(f"{days}-days", "days", days)
        raise MonitoringRunError(f"window {text!r}: use month, week or N-days (e.g. 14-days)")

    def floor(self, t: pd.Timestamp) -> pd.Timestamp:
        day = t.normalize()
        if self.unit == "month":
            return day.replace(day=1)
        if self.unit == "week":
            return day - pd.Timedelta(days=day.weekday())
        return day

    def next(self, t: pd.Timestamp) -> pd.Timestamp:
        if self.unit == "month":
            return t + pd.DateOffset(months=1)
        return t + pd.Timedelta(days=7 if self.unit == "week" else self.days)

    def windows(self, start: pd.Timestamp, end: pd.Timestamp) -> list[tuple[datetime, datetime]]:
        """Consecutive windows covering [start, end), aligned to the unit and clipped to the range."""
        out = []
        edge = self._first_edge(start)
        while edge < end:
            following = self.next(edge)
            out.append((max(edge, start).to_pydatetime(), min(following, end).to_pydatetime()))
            edge = following
        return out

    def end_after(self, start: pd.Timestamp, last: pd.Timestamp) -> pd.Timestamp:
        """The end of the window (counted from `start`) that holds `last`: the default end of a run."""
        edge = self._first_edge(start)
        while edge <= last:
            edge = self.next(edge)
        return edge

    def _first_edge(self, start: pd.Timestamp) -> pd.Timestamp:
        return start if self.unit == "days" else self.floor(start)


# ============================================================================ reference


@dataclass(frozen=True)
class ReferenceSource:
    """Where the training predictions come from: a file (`path`), or the store's labels before `end`."""

    path: Path | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.end is None):
            raise MonitoringRunError("reference: give either a file of scored training rows or an end date")
        if self.path is not None and self.start is not None:
            raise MonitoringRunError("reference: a start date only applies to a reference taken from the store")

    def describe(self) -> str:
        if self.path is not None:
            return f"file {self.path}"
        since = f"{_iso(self.start)} to " if self.start else "before "
        return f"store predictions labelled {since}{_iso(self.end)}"

    def load(self, store: Store, *, string_columns: Sequence[str] = ()) -> pd.DataFrame:
        """The reference rows; `string_columns` stay strings when read from a CSV file."""
        if self.path is not None:
            return read_frame(self.path, string_columns=string_columns)
        return store.predictions(self.start, self.end, time_column="label_at")


def read_frame(path: str | Path, *, string_columns: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV or Parquet file as a frame; `string_columns` stay strings in a CSV (zip codes, ids)."""
    path = Path(path)
    if not path.is_file():
        raise FrameError(f"{path}: file does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        header = pd.read_csv(path, nrows=0).columns
        return pd.read_csv(path, dtype={c: str for c in string_columns if c in header})
    except (OSError, ValueError, ImportError, pd.errors.ParserError) as exc:
        raise FrameError(f"{path}: not a readable CSV or Parquet table: {exc}") from exc


# ============================================================================ results


@dataclass(frozen=True)
class WindowResult:
    """Everything computed for one window; `record()` is its `monitoring.json` entry."""

    start: datetime
    end: datetime
    status: str
    note: str | None
    n_current: int
    n_reference: int
    drift: DriftResult | None = None
    target_drift: ColumnDrift | None = None
    prediction_drift: ColumnDrift | None = None
    performance: RegressionMetrics | None = None
    production: ProductionResult | None = None
    reports: dict[str, str] = field(default_factory=dict)
    report_error: str | None = None

    @property
    def label(self) -> str:
        return f"{_stamp(self.start)}_{_stamp(self.end)}"

    def record(self) -> dict[str, Any]:
        drift = self.drift
        return results.finite(
            {
                "start": _iso(self.start),
                "end": _iso(self.end),
                "status": self.status,
                "note": self.note,
                "n_current": self.n_current,
                "n_reference": self.n_reference,
                "features": [c.to_dict() for c in drift.columns] if drift else [],
                "drift_share": drift.drift_share if drift else None,
                "drifted_features": drift.drifted_columns if drift else 0,
                "tested_features": drift.tested_columns if drift else 0,
                "dataset_drift": drift.dataset_drift if drift else None,
                "drift_share_threshold": drift.drift_share_threshold if drift else None,
                "target_drift": self.target_drift.to_dict() if self.target_drift else None,
                "prediction_drift": self.prediction_drift.to_dict() if self.prediction_drift else None,
                "metrics": self.performance.to_dict() if self.performance else None,
                "production": self.production.to_dict() if self.production else None,
                "reports": dict(self.reports),
                "report_error": self.report_error,
            }
        )


@dataclass(frozen=True)
class MonitoringRun:
    """A finished run: its windows, the alerts raised, how their delivery went, and where time went."""

    run_id: str
    created_at: datetime
    window: str
    reference: str
    n_reference: int
    reference_metrics: RegressionMetrics
    windows: tuple[WindowResult, ...]
    alerts: tuple[Alert, ...]
    deliveries: tuple[Delivery, ...]
    json_path: Path | None
    timings_s: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return results.finite(
            {
                "run_id": self.run_id,
                "created_at": _iso(self.created_at),
                "window": self.window,
                "reference": {
                    "source": self.reference,
                    "n": self.n_reference,
                    "metrics": self.reference_metrics.to_dict(),
                },
                "windows": [w.record() for w in self.windows],
                "alerts": [a.to_dict() for a in self.alerts],
            }
        )


# ============================================================================ the run


def run_monitoring(
    store: Store,
    *,
    window: str,
    reference: ReferenceSource,
    columns: ColumnRoles,
    start: datetime | None = None,
    end: datetime | None = None,
    reference_sample: ReferenceSample = "all",
    seed: int = DEFAULT_SEED,
    out_dir: str | Path | None = None,
    reports: bool | None = None,
    workers: int = 2,
    alerts: AlertConfig | None = None,
    progress: Advance | None = None,
    production: ProductionCalculator | None = None,
) -> MonitoringRun:
    """Compare every window of [start, end) with the reference; store, write and alert as the module says.

    `columns` names the feature columns with their tests, the target and prediction columns, and the
    columns a reference file keeps as strings. `progress(done, total)` follows the report rendering, the
    slow part. Reports are rendered when `out_dir` is given, unless `reports` is False.

    Each window also gets the prediction-time view (`production`): the predictions made in it, labelled or
    not, with the labels known at the run's end. `production` sets it up (minimum label coverage, the
    estimation reference; default: `ProductionCalculator(columns)`); it is fitted on the reference unless it
    already is, so a caller that monitors again and again (the replay) fits it once.
    """
    spec = WindowSpec.parse(window)
    config, target_config, target, prediction = columns.features, columns.targets, columns.target, columns.prediction
    if reference_sample not in ("all", "match"):
        raise MonitoringRunError(f"reference sample {reference_sample!r}: use all or match")
    if reports and out_dir is None:
        raise MonitoringRunError("reports need an output folder (out_dir)")
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise MonitoringRunError(f"{out_dir}: exists and is not a folder")
    reports = out_dir is not None and reports is not False
    _check_rule_columns(alerts, columns.monitored)
    if reports:
        from forwardlab.monitor.reports import ReportJob, render_windows
    run_id, created_at, timings = str(uuid.uuid4()), datetime.now(UTC), {}

    clock = time.perf_counter()
    reference_frame = _time_ordered(reference.load(store, string_columns=columns.strings))
    if reference_frame.empty:
        raise MonitoringRunError(f"reference ({reference.describe()}): no rows")
    require_columns(reference_frame, columns.monitored, f"reference ({reference.describe()})")
    given_start = start or reference.end
    first = None if given_start is None else _utc(given_start)
    labelled = store.predictions(first, end, time_column="label_at")
    if labelled.empty and (first is None or end is None):  # no data to place the windows by
        raise MonitoringRunError(f"{store.display_url}: no ground truth {_since(first)}; nothing to monitor")
    window_start = first if first is not None else labelled["label_at"].min()
    window_end = _utc(end) if end else spec.end_after(window_start, labelled["label_at"].max())
    bounds = spec.windows(window_start, window_end)
    if not bounds:
        raise MonitoringRunError(f"no window between {_iso(window_start)} and {_iso(window_end)}")
    made_all = known_at(_time_ordered(store.predictions(bounds[0][0], bounds[-1][1])), bounds[-1][1], target=target)
    timings["load_s"] = time.perf_counter() - clock

    clock = time.perf_counter()
    drift_all = DriftCalculator(config).fit(reference_frame)
    target_all = DriftCalculator(target_config).fit(reference_frame)
    performance = PerformanceCalculator(target=target, prediction=prediction).fit(reference_frame)
    assert performance.reference is not None
    production = production or ProductionCalculator(columns)
    if not production.fitted:
        production.fit(reference_frame)
    windows: list[WindowResult] = []
    jobs: list[tuple[int, ReportJob]] = []
    staging = Path(out_dir) / f".staging-{run_id}" if out_dir is not None else None
    for lo, hi in bounds:
        current = labelled[(labelled["label_at"] >= lo) & (labelled["label_at"] < hi)]
        made = made_all[(made_all["predicted_at"] >= lo) & (made_all["predicted_at"] < hi)]
        if len(current) < config.min_rows:
            note = f"{len(current)} rows with ground truth in the window, need at least {config.min_rows}"
            made_view = production.calculate(made)
            windows.append(WindowResult(lo, hi, INSUFFICIENT, note, len(current), 0, production=made_view))
            continue
        require_columns(current, config.columns, f"window {_iso(lo)}..{_iso(hi)}")
        if reference_sample == "match" and len(current) < len(reference_frame):
            ref = reference_frame.sample(n=len(current), random_state=seed)
            drift_calc, target_calc = DriftCalculator(config).fit(ref), DriftCalculator(target_config).fit(ref)
        else:
            ref, drift_calc, target_calc = reference_frame, drift_all, target_all
        drift = drift_calc.calculate(current)
        targets = target_calc.calculate(current)
        made_view = production.calculate(made)
        result = WindowResult(
            lo,
            hi,
            drift.status,
            drift.note,
            len(current),
            len(ref),
            drift,
            targets.column(target),
            targets.column(prediction),
            performance.calculate(current),
            made_view,
        )
        windows.append(result)
        if reports and staging is not None and result.status == "ok":
            tested = [c.column for c in drift.columns if c.drift is not None]
            tested_targets = [c.column for c in targets.columns if c.drift is not None]
            job = ReportJob(
                staging / REPORTS_DIR / result.label,
                ref,
                current,
                config.restricted_to(tested),
                target_config.restricted_to(tested_targets),
                target,
                prediction,
            )
            jobs.append((len(windows) - 1, job))
    timings["compute_s"] = time.perf_counter() - clock

    try:
        if staging is not None:
            staging.mkdir(parents=True)
        clock = time.perf_counter()
        outcomes = render_windows([job for _, job in jobs], workers=workers, on_done=progress) if jobs else []
        for (index, _), outcome in zip(jobs, outcomes, strict=True):
            files = {name: f"{REPORTS_DIR}/{windows[index].label}/{p.name}" for name, p in outcome.files.items()}
            windows[index] = replace(windows[index], reports=files, report_error=outcome.error)
        timings["reports_s"] = time.perf_counter() - clock

        history = [_summary(r) for r in results.stored_records(store, window_spec=spec.text, end_before=bounds[0][0])]
        records = [w.record() for w in windows]
        history.extend(_summary(r) for r in records)
        raised = evaluate(alerts, history, performance.reference, first=len(history) - len(records)) if alerts else []

        clock = time.perf_counter()
        run = MonitoringRun(
            run_id,
            created_at,
            spec.text,
            reference.describe(),
            len(reference_frame),
            performance.reference,
            tuple(windows),
            tuple(raised),
            (),
            Path(out_dir) / JSON_FILE if out_dir else None,
            timings,
        )
        if staging is not None:
            write_text_atomic(staging / JSON_FILE, json.dumps(run.to_json(), indent=2, allow_nan=False) + "\n")
        _save(store, run, records, reference_sample, seed, columns)
        timings["store_s"] = time.perf_counter() - clock
        if out_dir is not None and staging is not None:
            _publish(staging, Path(out_dir))
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    deliveries = _deliver(store, run_id, raised, alerts)
    return replace(run, deliveries=tuple(deliveries))


def _time_ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Store rows by when they were predicted, then by entity: a store returns insertion order, which concurrent
    writers shuffle, and the multivariate calculators sample and chunk by position (a resumed replay must find
    what an uninterrupted one found). A file keeps its own order."""
    keys = [c for c in ("predicted_at", "entity_id") if c in frame.columns]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True) if keys else frame


def _check_rule_columns(alerts: AlertConfig | None, monitored: Sequence[str]) -> None:
    unknown = sorted((alerts.columns() if alerts else set()) - set(monitored))
    if unknown:
        raise AlertConfigError(
            f"drift rule(s) name column(s) {', '.join(unknown)}, which are not monitored "
            f"(monitored: {', '.join(monitored)})"
        )


def _summary(record: dict[str, Any]) -> WindowSummary:
    """What alert rules see of a window, from its record (this run's or a stored one alike)."""
    metrics: dict[str, float | None] = dict.fromkeys(("drift_share", "n_current"))
    metrics.update({k: v for k, v in (record.get("metrics") or {}).items() if k != "segments"})
    metrics["drift_share"], metrics["n_current"] = record["drift_share"], record["n_current"]
    metrics.update(production_metrics(record.get("production")))
    drifted = {f["column"]: f["drift"] for f in record["features"]}
    for key in ("target_drift", "prediction_drift"):
        if record.get(key):
            drifted[record[key]["column"]] = record[key]["drift"]
    return WindowSummary(
        pd.Timestamp(record["start"]).to_pydatetime(),
        pd.Timestamp(record["end"]).to_pydatetime(),
        record["status"],
        metrics,
        drifted,
    )


def _save(
    store: Store,
    run: MonitoringRun,
    records: list[dict[str, Any]],
    reference_sample: str,
    seed: int,
    columns: ColumnRoles,
) -> None:
    settings = {
        "reference_sample": reference_sample,
        "seed": seed,
        "features": columns.features.model_dump(),
        "targets": columns.targets.model_dump(),
    }
    run_row = {
        "run_id": run.run_id,
        "created_at": run.created_at,
        "window_spec": run.window,
        "reference": run.reference[:1024],
        "n_reference": run.n_reference,
        "settings": settings,
        "reference_metrics": run.reference_metrics.to_dict(),
    }
    window_rows, column_rows = [], []
    for window, record in zip(run.windows, records, strict=True):
        metrics = record["metrics"] or {}
        window_rows.append(
            {
                "window_start": window.start,
                "window_end": window.end,
                "run_id": run.run_id,
                "window_spec": run.window,
                "status": window.status,
                "n_current": window.n_current,
                "n_reference": window.n_reference,
                "drift_share": record["drift_share"],
                "dataset_drift": record["dataset_drift"],
                "target_drift": window.target_drift.drift if window.target_drift else None,
                "prediction_drift": window.prediction_drift.drift if window.prediction_drift else None,
                **{k: metrics.get(k) for k in PERFORMANCE_METRICS},
                "record": record,
            }
        )
        features = window.drift.columns if window.drift else ()
        roles: list[tuple[ColumnDrift | None, str]] = [(c, "feature") for c in features]
        roles += [(window.target_drift, "target"), (window.prediction_drift, "prediction")]
        for column, role in roles:
            if column is None:
                continue
            column_rows.append(
                {
                    "window_start": window.start,
                    "window_end": window.end,
                    "column_name": column.column,
                    "run_id": run.run_id,
                    "role": role,
                    "test": column.test,
                    "score": column.score,
                    "threshold": column.threshold,
                    "drift": column.drift,
                    "n_current": column.n_current,
                }
            )
    alert_rows = [
        {
            "rule": a.rule,
            "window_start": a.window_start,
            "window_end": a.window_end,
            "run_id": run.run_id,
            "message": a.message,
            "value": a.value,
            "raised_at": run.created_at,
            "attempts": 0,
        }
        for a in run.alerts
    ]
    results.save_run(store, run_row, window_rows, column_rows, alert_rows)


def _publish(staging: Path, out_dir: Path) -> None:
    """Move the staged window report folders and monitoring.json into `out_dir` (renames, once stored).

    A window's folder replaces the folder an earlier run wrote for the same window; others stay.
    """
    staged_reports = staging / REPORTS_DIR
    if staged_reports.is_dir():
        (out_dir / REPORTS_DIR).mkdir(exist_ok=True)
        for folder in sorted(p for p in staged_reports.iterdir() if p.is_dir()):
            final = out_dir / REPORTS_DIR / folder.name
            old = staging / f"replaced-{folder.name}"
            if final.exists():
                final.replace(old)
            folder.replace(final)
    (staging / JSON_FILE).replace(out_dir / JSON_FILE)


def _deliver(store: Store, run_id: str, raised: Sequence[Alert], alerts: AlertConfig | None) -> list[Delivery]:
    if not raised or alerts is None or alerts.webhook is None:
        return []
    keys = {(a.rule, a.window_start, a.window_end): a for a in raised}
    pending = results.undelivered(store, keys)
    to_send = [a for k, a in keys.items() if k in pending]
    deliveries = deliver(to_send, alerts.webhook, run_id=run_id)
    for alert, outcome in zip(to_send, deliveries, strict=True):
        key = (alert.rule, alert.window_start, alert.window_end)
        results.record_delivery(store, key, delivered=outcome.delivered, attempts=outcome.attempts, error=outcome.error)
    return deliveries


def _iso(value: datetime | pd.Timestamp | None) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat()


def _utc(value: datetime) -> pd.Timestamp:
    """Naive times are UTC; aware ones are converted to it."""
    ts = pd.Timestamp(value)
    return ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)


def _stamp(value: datetime) -> str:
    ts = pd.Timestamp(value)
    return f"{ts:%Y-%m-%d}" if ts == ts.normalize() else f"{ts:%Y-%m-%dT%H%M%S}"


def _since(first: pd.Timestamp | None) -> str:
    return "in the store" if first is None else f"from {_iso(first)}"
