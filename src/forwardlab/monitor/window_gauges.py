"""The latest monitored window as Prometheus gauges, appended to the service's `/metrics`.

Prometheus already scrapes the service, so exporting the monitoring results there lets its alert rules and
dashboards use them (README: "Monitoring: Prometheus") beside the webhook alerts. They are read from the
metrics store at scrape time (`results.latest_window`), so a run saved by any process shows at the next
scrape, and nothing is exported before a run stored a window.

Conventions: the `forwardlab_monitor_` prefix; units in the names (`_usd`, `_timestamp_seconds`, `_ratio`
for shares in [0, 1]); flags as 0/1 gauges; labels bounded by the monitored columns and the alert rules.
A value the window lacks (an untested column, a window with too few rows, a record written before the
"production" block existed) is left out rather than exported as 0, so a missing series means "not computed".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from forwardlab.monitor.drift.stattests import STATTESTS
from forwardlab.monitor.prometheus import Gauges
from forwardlab.monitor.results import LatestWindow

PREFIX = "forwardlab_monitor_"
P_VALUE_TESTS = tuple(key for key, test in STATTESTS.items() if test.p_value)
_P_VALUES = ", ".join(P_VALUE_TESTS)

# (stored metric, exported name, help, factor): MAPE is stored in percent, exported as a ratio.
REGRESSION_METRICS = (
    ("mae_usd", "mae_usd", "Mean absolute error of the latest window's rows, USD.", 1.0),
    ("rmse_usd", "rmse_usd", "Root mean squared error of the latest window's rows, USD.", 1.0),
    ("mape_pct", "mape_ratio", "Mean absolute percentage error of the latest window's rows (0.12: 12%).", 0.01),
    ("mean_error_usd", "mean_error_usd", "Mean of prediction minus truth in the latest window (bias), USD.", 1.0),
    ("r2", "r2", "Coefficient of determination (R squared) in the latest window.", 1.0),
    ("max_abs_error_usd", "max_abs_error_usd", "Largest absolute error in the latest window, USD.", 1.0),
)


def render(latest: LatestWindow | None) -> str:
    """The gauges of `latest` in the Prometheus text format; empty when no window is stored."""
    if latest is None:
        return ""
    lines = [line for family in families(latest) for line in family.lines()]
    return "\n".join(lines) + "\n" if lines else ""


def families(latest: LatestWindow) -> list[Gauges]:
    """Every gauge family of the latest window (families without a value render nothing)."""
    return [*_window(latest.window), *_columns(latest.columns), *_production(latest.window["record"]), *_alerts(latest)]


def _gauge(name: str, help_text: str, value: float | bool | None = None) -> Gauges:
    family = Gauges(PREFIX + name, help_text)
    family.add(value)
    return family


def _window(row: Mapping[str, Any]) -> list[Gauges]:
    info = _gauge("window_info", "Always 1: the latest monitored window's spec and status, as labels.")
    info.add(1, window_spec=row["window_spec"], status=row["status"])
    out = [
        info,
        _gauge(
            "window_start_timestamp_seconds",
            "Start of the latest monitored window (the newest of the newest run's spec), Unix seconds.",
            row["window_start"].timestamp(),
        ),
        _gauge(
            "window_end_timestamp_seconds",
            "End (exclusive) of the latest monitored window, Unix seconds.",
            row["window_end"].timestamp(),
        ),
        _gauge(
            "current_rows", "Rows compared in the latest window (its ground truth arrived in it).", row["n_current"]
        ),
        _gauge("reference_rows", "Reference rows the latest window was compared with.", row["n_reference"]),
        _gauge(
            "drift_share_ratio", "Share of the tested features that drift in the latest window.", row["drift_share"]
        ),
        _gauge("dataset_drift", "1 when the latest window's drift share reaches its threshold.", row["dataset_drift"]),
    ]
    out += [
        _gauge(exported, help_text, None if row[stored] is None else row[stored] * factor)
        for stored, exported, help_text, factor in REGRESSION_METRICS
    ]
    return out


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[Gauges]:
    score = _gauge(
        "column_drift_score",
        "Drift score of each monitored column (role: feature, target or prediction) in the latest window, from "
        f"the test named by `test`. For the p-value tests ({_P_VALUES}) the score is the p-value: it drifts "
        "BELOW its threshold (also in forwardlab_monitor_column_p_value); for distances at or above it.",
    )
    threshold = _gauge("column_drift_threshold", "Drift threshold of each monitored column's test.")
    drift = _gauge("column_drift", "1 when the column drifts in the latest window by its test and threshold.")
    p_value = _gauge(
        "column_p_value", f"P-value of the column's drift test, for p-value tests only ({_P_VALUES}); small: drift."
    )
    for row in rows:
        if row["test"] is None:  # not tested (all missing, or too few rows): nothing to export
            continue
        labels = {"column": row["column_name"], "role": row["role"], "test": row["test"]}
        score.add(row["score"], **labels)
        threshold.add(row["threshold"], **labels)
        drift.add(row["drift"], **labels)
        if row["test"] in P_VALUE_TESTS:
            p_value.add(row["score"], **labels)
    return [score, threshold, drift, p_value]


def _production(record: Mapping[str, Any]) -> list[Gauges]:
    """The "production" block: the predictions made in the window, labelled or not (absent in older records)."""
    block = record.get("production")
    if not block:
        return []
    multivariate = block.get("multivariate") or {}
    pca, domain = multivariate.get("pca") or {}, multivariate.get("domain_classifier") or {}
    return [
        _gauge(
            "window_predictions",
            "Predictions made in the latest window (by prediction time).",
            block.get("n_predictions"),
        ),
        _gauge(
            "window_labelled_predictions",
            "Predictions made in the latest window that have their ground truth.",
            block.get("n_labelled"),
        ),
        _gauge(
            "label_coverage_ratio",
            "Share of the predictions made in the latest window that have their ground truth.",
            block.get("label_coverage"),
        ),
        _gauge(
            "label_coverage_min_ratio",
            "Label coverage under which the latest window's realized MAE is provisional.",
            block.get("min_coverage"),
        ),
        _gauge(
            "provisional", "1 while the latest window's label coverage is under its minimum.", block.get("provisional")
        ),
        _gauge(
            "realized_mae_usd",
            "MAE of the predictions made in the latest window that have ground truth so far, USD.",
            block.get("realized_mae_usd"),
        ),
        _gauge(
            "estimated_mae_usd",
            "MAE of all predictions made in the latest window estimated without labels, USD.",
            block.get("estimated_mae_usd"),
        ),
        _gauge(
            "estimated_mae_lower_usd",
            "Lower end of the 95% band for the window's final realized MAE around the estimate, USD.",
            block.get("estimated_mae_lower_usd"),
        ),
        _gauge(
            "estimated_mae_upper_usd",
            "Upper end of the 95% band for the window's final realized MAE around the estimate, USD.",
            block.get("estimated_mae_upper_usd"),
        ),
        _gauge(
            "estimated_mae_alert",
            "1 when the estimated MAE is above what the reference shows for a window of this size.",
            block.get("estimated_mae_alert"),
        ),
        _gauge(
            "pca_reconstruction_error",
            "Multivariate drift: PCA reconstruction error of the latest window's features.",
            pca.get("value"),
        ),
        _gauge(
            "pca_reconstruction_error_lower", "Lower alert threshold of the reconstruction error.", pca.get("lower")
        ),
        _gauge(
            "pca_reconstruction_error_upper", "Upper alert threshold of the reconstruction error.", pca.get("upper")
        ),
        _gauge(
            "pca_reconstruction_error_alert",
            "1 when the reconstruction error is outside its thresholds.",
            pca.get("alert"),
        ),
        _gauge(
            "domain_classifier_auc",
            "Multivariate drift: ROC AUC of a classifier telling the latest window from the reference (0.5: alike).",
            domain.get("value"),
        ),
        _gauge("domain_classifier_auc_upper", "Alert threshold of the domain classifier AUC.", domain.get("upper")),
        _gauge(
            "domain_classifier_alert", "1 when the domain classifier AUC exceeds its threshold.", domain.get("alert")
        ),
    ]


def _alerts(latest: LatestWindow) -> list[Gauges]:
    raised = _gauge("alert_raised", "1 for each alert rule that raised an alert on the latest window.")
    for rule in latest.raised:
        raised.add(1, rule=rule)
    undelivered = _gauge(
        "alerts_undelivered", "Alerts raised (any window) whose webhook delivery has not succeeded yet, per rule."
    )
    for rule, count in latest.undelivered.items():
        undelivered.add(count, rule=rule)
    return [raised, undelivered]
