"""What the dashboard shows, read from the metrics store: one JSON document per window spec.

Everything comes from the stored `monitoring.json` records (`results.stored_records`), the newest run's
reference metrics and the alerts table, so the page shows exactly what `forwardlab monitor run` saved,
whichever process saved it. Report links are offered only for files that exist under the reports folder,
so a store moved away from its reports shows no dead links. A record's "production" block (the predictions
made in the window: label coverage, estimated MAE, multivariate drift, segments) is passed on when
present; older records have none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from forwardlab.monitor import results
from forwardlab.monitor.drift.stattests import STATTESTS
from forwardlab.monitor.store import Store

REPORT_TITLES = {"data_drift": "data drift", "target_drift": "target drift", "regression_performance": "performance"}
METRICS_SHOWN = ("mae_usd", "rmse_usd", "mape_pct", "mean_error_usd", "r2")
SEVERITY_CAP = 1000.0  # p-values of 0 are infinitely far past their threshold; JSON has no infinity
SEGMENTS_SHOWN = 10  # the record lists segments by error increase, largest first


class Verdict(BaseModel):
    """One drift test of one column in one window."""

    test: str | None
    score: float | None
    threshold: float | None
    drift: bool | None
    severity: float | None  # score against threshold, 1 = at it, larger = toward drift (`StatTest.severity`)
    note: str | None = None


class ReportLink(BaseModel):
    name: str
    title: str
    url: str  # relative to the dashboard's root


class PcaDrift(BaseModel):
    """Multivariate drift by PCA reconstruction error, with its alert band."""

    value: float | None
    lower: float | None
    upper: float | None
    alert: bool | None
    n: int


class DomainClassifierDrift(BaseModel):
    """Multivariate drift by a classifier's ROC AUC telling the window from the reference (0.5: alike)."""

    value: float | None
    upper: float | None
    alert: bool | None
    n: int


class Segment(BaseModel):
    by: str
    segment: str
    n: int
    n_labelled: int
    reference_mae_usd: float | None
    mae_usd: float | None
    estimated_mae_usd: float | None
    increase_usd: float | None
    new: bool = False  # not in the reference (an unseen zip code, a model deployed after it)


class Production(BaseModel):
    """The predictions made in the window, labelled or not: the record's "production" block, with the first
    `SEGMENTS_SHOWN` segments."""

    n_predictions: int
    n_labelled: int
    label_coverage: float | None
    min_coverage: float
    provisional: bool
    realized_mae_usd: float | None
    estimated_mae_usd: float | None
    estimated_mae_lower_usd: float | None
    estimated_mae_upper_usd: float | None
    estimated_mae_alert: bool | None
    pca: PcaDrift | None
    domain_classifier: DomainClassifierDrift | None
    segments: list[Segment]


class Window(BaseModel):
    start: datetime
    end: datetime
    start_s: float  # Unix seconds, the charts' x axis
    label: str
    status: str
    note: str | None
    n_current: int
    n_reference: int
    drift_share: float | None
    drift_share_threshold: float | None
    drifted_features: int
    tested_features: int
    dataset_drift: bool | None
    target_drift: Verdict | None
    prediction_drift: Verdict | None
    metrics: dict[str, float | None]
    reports: list[ReportLink]
    report_error: str | None
    production: Production | None


class HeatMap(BaseModel):
    """Feature x window: `cells[i][j]` is feature i in window j (None: not in that window's results)."""

    features: list[str]
    cells: list[list[Verdict | None]]


class Alert(BaseModel):
    rule: str
    window_start: datetime
    window_end: datetime
    message: str
    value: float | None
    raised_at: datetime
    delivered_at: datetime | None


class Reference(BaseModel):
    source: str
    n: int
    metrics: dict[str, float | None]
    run_at: datetime


class Summary(BaseModel):
    """The dashboard's whole state for one window spec; the page polls it and redraws when it changes."""

    window_spec: str | None
    window_specs: list[str]
    refresh_s: float
    reference: Reference | None
    windows: list[Window]
    heatmap: HeatMap
    alerts: list[Alert]


def summarize(store: Store, reports_dir: Path, *, window_spec: str | None, refresh_s: float) -> Summary:
    """The dashboard state of `window_spec` (None: the spec of the newest run)."""
    specs = results.window_specs(store)
    spec = window_spec if window_spec is not None else (specs[0] if specs else None)
    records = results.stored_records(store, window_spec=spec) if spec is not None else []
    windows = [_window(r, reports_dir) for r in records]
    run = results.latest_run(store, window_spec=spec) if spec is not None else None
    return Summary(
        window_spec=spec,
        window_specs=specs,
        refresh_s=refresh_s,
        reference=None if run is None else _reference(run),
        windows=windows,
        heatmap=_heatmap(records),
        alerts=_alerts(store, {(w.start, w.end) for w in windows}),
    )


def _window(record: Mapping[str, Any], reports_dir: Path) -> Window:
    start, end = pd.Timestamp(record["start"]), pd.Timestamp(record["end"])
    metrics = record.get("metrics") or {}
    return Window(
        start=start.to_pydatetime(),
        end=end.to_pydatetime(),
        start_s=start.timestamp(),
        label=f"{start:%Y-%m-%d}..{end:%Y-%m-%d}",
        status=record["status"],
        note=record.get("note"),
        n_current=record["n_current"],
        n_reference=record["n_reference"],
        drift_share=record.get("drift_share"),
        drift_share_threshold=record.get("drift_share_threshold"),
        drifted_features=record.get("drifted_features") or 0,
        tested_features=record.get("tested_features") or 0,
        dataset_drift=record.get("dataset_drift"),
        target_drift=_verdict(record.get("target_drift")),
        prediction_drift=_verdict(record.get("prediction_drift")),
        metrics={k: metrics.get(k) for k in METRICS_SHOWN},
        reports=_links(record.get("reports") or {}, reports_dir),
        report_error=record.get("report_error"),
        production=_production(record.get("production")),
    )


def _production(block: Mapping[str, Any] | None) -> Production | None:
    if not block:
        return None
    multivariate = block.get("multivariate") or {}
    return Production.model_validate(
        {
            **block,
            "pca": multivariate.get("pca"),
            "domain_classifier": multivariate.get("domain_classifier"),
            "segments": (block.get("segments") or [])[:SEGMENTS_SHOWN],
        }
    )


def _verdict(column: Mapping[str, Any] | None) -> Verdict | None:
    if column is None:
        return None
    test, score, threshold = column.get("test"), column.get("score"), column.get("threshold")
    severity = None
    if test in STATTESTS and score is not None and threshold is not None:
        severity = min(STATTESTS[test].severity(score, threshold), SEVERITY_CAP)
    return Verdict(
        test=test,
        score=score,
        threshold=threshold,
        drift=column.get("drift"),
        severity=None if severity is None or math.isnan(severity) else severity,
        note=column.get("note"),
    )


def _links(reports: Mapping[str, str], reports_dir: Path) -> list[ReportLink]:
    """Links to the report files that exist inside `reports_dir` (paths in records are relative to it)."""
    root = reports_dir.resolve()
    links = []
    for name, relative in reports.items():
        path = (root / relative).resolve()
        if path.is_relative_to(root) and path.is_file():
            links.append(ReportLink(name=name, title=REPORT_TITLES.get(name, name), url=f"files/{relative}"))
    return links


def _heatmap(records: list[Mapping[str, Any]]) -> HeatMap:
    features: list[str] = []
    per_window: list[dict[str, Verdict | None]] = []
    for record in records:
        verdicts = {c["column"]: _verdict(c) for c in record.get("features") or []}
        features.extend(c for c in verdicts if c not in features)
        per_window.append(verdicts)
    return HeatMap(features=features, cells=[[w.get(f) for w in per_window] for f in features])


def _alerts(store: Store, windows: set[tuple[datetime, datetime]]) -> list[Alert]:
    frame = results.load_alerts(store)
    alerts = []
    for row in frame.to_dict("records"):
        start, end = row["window_start"].to_pydatetime(), row["window_end"].to_pydatetime()
        if (start, end) in windows:
            delivered = row["delivered_at"]
            alerts.append(
                Alert(
                    rule=row["rule"],
                    window_start=start,
                    window_end=end,
                    message=row["message"],
                    value=None if pd.isna(row["value"]) else row["value"],
                    raised_at=row["raised_at"].to_pydatetime(),
                    delivered_at=None if pd.isna(delivered) else pd.Timestamp(delivered).to_pydatetime(),
                )
            )
    return alerts


def _reference(run: Mapping[str, Any]) -> Reference:
    metrics = run.get("reference_metrics") or {}
    return Reference(
        source=run["reference"],
        n=run["n_reference"],
        metrics={k: metrics.get(k) for k in METRICS_SHOWN},
        run_at=run["created_at"],
    )
