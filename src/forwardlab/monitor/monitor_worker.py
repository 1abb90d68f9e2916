"""The replay's monitor: each month's `run_monitoring` in a spawned worker process, while the replay goes on.

Why a process: Evidently's reports are most of a month's cost, and the replay's own work (clients, service,
model) holds the main process's GIL; the worker puts the other core to work. Why one: importing Evidently
costs about 5 s of CPU per process, more than a second worker saves on a 2-core machine, and month m's
alerts may look back at the months before it (a column drifting N windows running), so months are
monitored in order. What a month's monitor reads (its own sales and the training reference) is complete
before it is submitted, so the results are those of monitoring after each month in turn.

`monitoring.json` is rewritten by the caller's process from the store as each month comes back: every month
so far. The worker starts at once and imports Evidently while the model trains; it exits if the replay's
process dies (a killed replay must not leave a worker behind).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning
from threadpoolctl import threadpool_limits

from forwardlab.fileio import write_text_atomic
from forwardlab.monitor import results
from forwardlab.monitor.alerts import AlertConfig, parse_alert_config
from forwardlab.monitor.columns import ColumnRoles
from forwardlab.monitor.errors import SimulationError
from forwardlab.monitor.production import ProductionCalculator
from forwardlab.monitor.store import Store
from forwardlab.monitor.windows import JSON_FILE, ReferenceSource, read_frame, run_monitoring

Key = TypeVar("Key")
WINDOW = "month"


class MonthlyMonitor(Generic[Key]):
    """Monitors submitted months, in order, in a worker process; `finished()` gives their findings back."""

    def __init__(
        self,
        store_url: str,
        out: Path,
        reference_end: pd.Timestamp,
        *,
        reports: bool,
        alerts: AlertConfig,
        columns: ColumnRoles,
    ) -> None:
        context = multiprocessing.get_context("spawn")  # not fork: the service's threads may be running
        self._pool = ProcessPoolExecutor(
            1, mp_context=context, initializer=_worker_start, initargs=(os.getpid(), reports)
        )
        self._job = (store_url, str(out), _utc(reference_end), reports, alerts.model_dump(mode="json"), columns)
        self._pending: deque[tuple[Key, Future[tuple[dict[str, Any], dict[str, Any]]]]] = deque()
        # What the label-free MAE estimate learns from (a file of out-of-fold scored training rows), once the
        # model is trained; without it, from the reference.
        self.estimation_reference: Path | None = None
        self._pool.submit(time.sleep, 0)  # start the worker now: it imports Evidently while the model trains

    def submit(self, key: Key, start: pd.Timestamp, end: pd.Timestamp) -> None:
        """Monitor the window [start, end) (naive times are UTC); `key` comes back with its findings."""
        job = (*self._job, self.estimation_reference)
        self._pending.append((key, self._pool.submit(_monitor_window, _utc(start), _utc(end), *job)))

    def finished(self, store: Store, *, wait: bool = False) -> Iterator[tuple[Key, dict[str, Any]]]:
        """(key, findings) of the months monitored so far, in order (with `wait`: of every month submitted).

        Each rewrites monitoring.json from `store` before it is yielded.
        """
        while self._pending and (wait or self._pending[0][1].done()):
            key, future = self._pending.popleft()
            try:
                found, document = future.result()
            except BrokenProcessPool as exc:
                raise SimulationError(f"the monitoring worker process died while monitoring {key}") from exc
            write_monitoring_json(store, document, Path(self._job[1]))
            yield key, found

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def write_monitoring_json(store: Store, document: dict[str, Any], out: Path) -> None:
    """monitoring.json with every window so far: `document` is one run's (its window); the store has them all."""
    document = dict(document)
    document["windows"] = results.stored_records(store, window_spec=document["window"])
    stored = results.load_alerts(store)
    document["alerts"] = [
        {
            "rule": row.rule,
            "window_start": pd.Timestamp(row.window_start).isoformat(),
            "window_end": pd.Timestamp(row.window_end).isoformat(),
            "message": row.message,
            "value": row.value,
        }
        for row in stored.itertuples()
    ]
    write_text_atomic(out / JSON_FILE, json.dumps(results.finite(document), indent=2, allow_nan=False) + "\n")


def _worker_start(parent_pid: int, reports: bool) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="forwardlab-parent-watch", daemon=True).start()
    threadpool_limits(limits=1, user_api="blas")  # small matrices; more threads only contend for the cores
    # Evidently's regression report computes R² on error segments that can hold a single row; scikit-learn's
    # warning about it says nothing about our results and would be printed once per month.
    warnings.filterwarnings("ignore", category=UndefinedMetricWarning)
    if reports:
        import forwardlab.monitor.reports  # noqa: F401  (Evidently: about 5 s of CPU, needed by the first month)


_stores: dict[str, Store] = {}
_references: dict[tuple[Any, pd.Timestamp], pd.DataFrame] = {}  # by (store URL, reference end)
_productions: dict[tuple[Any, pd.Timestamp], ProductionCalculator] = {}  # for those references


class _ReplayReference(ReferenceSource):
    """The store's training reference, read once per worker and reused by every month.

    It cannot change while months are monitored: the replay scores and labels the training sample before
    it submits the first month, and every later label is a sale at or after `end`.
    """

    def load(self, store: Store, *, string_columns: Sequence[str] = ()) -> pd.DataFrame:
        assert self.end is not None
        key = (store.url, pd.Timestamp(self.end))
        if key not in _references:
            _references[key] = super().load(store, string_columns=string_columns)
        return _references[key].copy()  # a month's monitor gets its own frame, as a fresh read would give it


def _monitor_window(
    start: pd.Timestamp,
    end: pd.Timestamp,
    store_url: str,
    out: str,
    reference_end: pd.Timestamp,
    reports: bool,
    alerts: dict[str, Any],
    columns: ColumnRoles,
    estimation_reference: Path | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """In a worker: monitor one window; its findings, and the run's monitoring.json document."""
    store = _stores.get(store_url) or _stores.setdefault(store_url, Store(store_url))
    reference = _ReplayReference(end=reference_end.to_pydatetime())
    key = (store.url, pd.Timestamp(reference_end))
    if key not in _productions:  # fitted by the first month's run and kept: the estimator's cross-fitting is slow
        learned = read_frame(estimation_reference, string_columns=columns.strings) if estimation_reference else None
        _productions[key] = ProductionCalculator(columns, estimation_reference=learned)
    run = run_monitoring(
        store,
        window=WINDOW,
        reference=reference,
        columns=columns,
        start=start.to_pydatetime(),
        end=end.to_pydatetime(),
        out_dir=out,
        reports=reports,
        workers=1,
        alerts=parse_alert_config(alerts),
        production=_productions[key],
    )
    (window,) = run.windows
    drift, made = window.drift, window.production
    found = {
        "status": window.status,
        "n_current": window.n_current,
        "mae_usd": window.performance.mae_usd if window.performance else None,
        "drift_share": drift.drift_share if drift else None,
        "drifted_features": [c.column for c in drift.columns if c.drift] if drift else [],
        "target_drift": window.target_drift.drift if window.target_drift else None,
        "alerts": sorted(a.rule for a in run.alerts),
        "label_coverage": made.coverage.label_coverage if made else None,
        "estimated_mae_usd": made.estimated.estimated_mae_usd if made and made.estimated else None,
        "estimated_mae_alert": made.estimated.estimated_mae_alert if made and made.estimated else None,
    }
    return found, run.to_json()


def _utc(value: pd.Timestamp) -> pd.Timestamp:
    return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
