"""Evidently HTML reports per window: data drift, target drift, regression performance (the prototype's three).

They are rendered from exactly the frames our engine compared (the window's rows and the reference or
its sample), with the same column types and per-column test overrides, so the pages show the verdicts
that `monitoring.json` and the store hold. Files are standalone (Evidently inlines its JavaScript), so
they open offline.

Rendering is the slow part of a run (Evidently builds every plot with plotly), so it is kept lean:
- `DriftTablePreset` is DataDriftPreset without its per-column ValueDrift metrics: the preset computes
  them (each with its plots) but its page shows only the dataset summary and the drift table, so
  dropping them gives the same page for half the CPU;
- each report is computed once and written once, from frames already in memory;
- windows are independent, so they are spread over a process pool (spawned, not forked: a test or a
  service may be running threads in this process); each worker imports Evidently once.
A window whose rendering fails gets its reason recorded instead of files; the others are unaffected.

This module imports Evidently (about 2 s): import it only where reports are rendered.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Regression, Report
from evidently.core.report import Context
from evidently.metrics import ValueDrift
from evidently.metrics.column_statistics import DriftedColumnsCount
from evidently.presets import DataDriftPreset, RegressionPreset

from forwardlab.fileio import write_text_atomic
from forwardlab.monitor.drift.config import DriftConfig
from forwardlab.monitor.drift.stattests import STATTESTS, check_in_evidently

REPORT_FILES = {
    "data_drift": "data_drift.html",
    "target_drift": "target_drift.html",
    "regression_performance": "regression_performance.html",
}
# Our tests reach Evidently by their `evidently_name`; one it lacks fails here, when reports are first asked
# for, rather than as a failed report in every window.
check_in_evidently()


class DriftTablePreset(DataDriftPreset):
    """DataDriftPreset's page without computing the per-column metrics that page never shows."""

    def generate_metrics(self, context: Context) -> Any:
        return [m for m in super().generate_metrics(context) if isinstance(m, DriftedColumnsCount)]


@dataclass(frozen=True)
class ReportJob:
    """One window's reports: where they go, and the frames and settings they are computed from.

    `config` lists the feature columns to show (those our engine could test); `target_config` the target
    and prediction columns with their overrides; `target` and `prediction` name those two columns.
    """

    folder: Path
    reference: pd.DataFrame
    current: pd.DataFrame
    config: DriftConfig
    target_config: DriftConfig
    target: str
    prediction: str


@dataclass(frozen=True)
class ReportOutcome:
    """The files written for one window, or why none were."""

    files: dict[str, Path]
    error: str | None = None


def render_window(job: ReportJob) -> ReportOutcome:
    """Compute and write the three reports of one window; a failure is returned, not raised."""
    try:
        definition = DataDefinition(
            numerical_columns=[*job.config.numerical, *job.target_config.numerical],
            categorical_columns=list(job.config.categorical),
            regression=[Regression(target=job.target, prediction=job.prediction)],
        )
        columns = [*job.config.columns, job.target, job.prediction]
        current = Dataset.from_pandas(job.current[columns], data_definition=definition)
        reference = Dataset.from_pandas(job.reference[columns], data_definition=definition)
        reports: dict[str, Any] = {
            "data_drift": Report([data_drift_preset(job.config)]),
            "target_drift": Report(
                [
                    ValueDrift(column=c, **_override(job.target_config, c))
                    for c in (job.target, job.prediction)
                    if c in job.target_config.columns
                ]
            ),
            "regression_performance": Report([RegressionPreset()]),
        }
        files = {}
        for name, report in reports.items():
            path = job.folder / REPORT_FILES[name]
            write_text_atomic(path, report.run(current, reference).get_html_str(as_iframe=False))
            files[name] = path
        return ReportOutcome(files)
    except Exception as exc:  # a batch job: record this window's reason and go on with the others
        return ReportOutcome({}, f"{type(exc).__name__}: {exc}")


def render_windows(
    jobs: Sequence[ReportJob], *, workers: int = 2, on_done: Callable[[int, int], None] | None = None
) -> list[ReportOutcome]:
    """Render every job, in a spawned process pool when there is more than one job and worker."""
    outcomes: list[ReportOutcome] = []
    if on_done:
        on_done(0, len(jobs))
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            outcomes.append(render_window(job))
            if on_done:
                on_done(len(outcomes), len(jobs))
        return outcomes
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        for outcome in pool.map(render_window, jobs):
            outcomes.append(outcome)
            if on_done:
                on_done(len(outcomes), len(jobs))
    return outcomes


def data_drift_preset(config: DriftConfig) -> DriftTablePreset:
    """Evidently's data drift preset with our columns, overrides and dataset-drift share."""
    methods: dict[str, Any] = {
        c: STATTESTS[o.test].evidently_name for c, o in config.overrides.items() if o.test is not None
    }
    thresholds = {c: o.threshold for c, o in config.overrides.items() if o.threshold is not None}
    return DriftTablePreset(
        columns=list(config.columns),
        drift_share=config.drift_share,
        per_column_method=methods or None,
        per_column_threshold=thresholds or None,
    )


def data_drift_html(reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig, path: Path) -> Path:
    """Write Evidently's data drift report of two frames (`forwardlab monitor drift --html`)."""
    definition = DataDefinition(numerical_columns=list(config.numerical), categorical_columns=list(config.categorical))
    columns = list(config.columns)
    snapshot = Report([data_drift_preset(config)]).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    write_text_atomic(path, snapshot.get_html_str(as_iframe=False))
    return path


def _override(config: DriftConfig, column: str) -> dict[str, Any]:
    override = config.overrides.get(column)
    if override is None:
        return {}
    method = None if override.test is None else STATTESTS[override.test].evidently_name
    return {k: v for k, v in (("method", method), ("threshold", override.threshold)) if v is not None}
