"""The service's /metrics over real HTTP, after real monitoring runs: the latest window's stored results as
Prometheus gauges (parsed by prometheus_client's own parser), the "production" block when a record has one,
and only the service's metrics where no run stored anything or the results cannot be read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from forwardlab.monitor import results
from forwardlab.monitor.alerts import parse_alert_config
from forwardlab.monitor.drift.config import ColumnTest, DriftConfig
from forwardlab.monitor.drift.stattests import STATTESTS
from forwardlab.monitor.features import HOUSE
from forwardlab.monitor.house import house_columns
from forwardlab.monitor.model import PriceModel
from forwardlab.monitor.server import RunningServer, start_server
from forwardlab.monitor.service import create_app
from forwardlab.monitor.store import Store
from forwardlab.monitor.windows import ReferenceSource, run_monitoring
from tests.monitor.conftest import REPO

REFERENCE = ReferenceSource(end=datetime(2014, 11, 1, tzinfo=UTC))
# p-value tests on a feature of each kind and on the target, distances (the defaults at this size) elsewhere
COLUMNS = house_columns(
    DriftConfig(
        numerical=HOUSE.numerical,
        categorical=HOUSE.categorical,
        overrides={"sqft_living": ColumnTest(test="ks"), "zipcode": ColumnTest(test="chisquare")},
    ),
    target_overrides={"label_usd": {"test": "ks"}},
)
BUSY_RULE = {"rules": [{"name": "busy-window", "type": "metric", "metric": "n_current", "above": 100}]}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def utc(text: str) -> datetime:
    return pd.Timestamp(text, tz="UTC").to_pydatetime()


def scrape(server: RunningServer) -> tuple[Samples, dict[str, tuple[str, str]]]:
    """Every sample by (name, labels), and every family's (type, help), as Prometheus would parse them."""
    response = httpx.get(server.base_url + "/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    families = {}
    for family in text_string_to_metric_families(response.text):
        families[family.name] = (family.type, family.documentation)
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, families


def monitored(samples: Samples) -> Samples:
    return {k: v for k, v in samples.items() if k[0].startswith("forwardlab_monitor_") and "read_errors" not in k[0]}


@pytest.fixture
def monitored_store(scored_store: Store) -> Store:
    """The scored store after a monthly run over November and December 2014 that raised an alert per window."""
    run_monitoring(
        scored_store, window="month", reference=REFERENCE, columns=COLUMNS, end=utc("2015-01-01"),
        alerts=parse_alert_config(BUSY_RULE),
    )  # fmt: skip
    return scored_store


@pytest.fixture
def served(monitored_store: Store, model: PriceModel) -> Iterator[RunningServer]:
    with start_server(create_app(model, monitored_store, api_keys=["metrics-test-key"])) as server:
        yield server


def test_metrics_export_the_latest_window_as_stored(served: RunningServer, monitored_store: Store) -> None:
    samples, families = scrape(served)
    windows = results.load_windows(monitored_store)
    latest = windows.iloc[-1]
    assert f"{latest['window_start']:%Y-%m}" == "2014-12"

    def value(name: str, **labels: str) -> float:
        return samples[(f"forwardlab_monitor_{name}", frozenset(labels.items()))]

    assert value("window_start_timestamp_seconds") == latest["window_start"].timestamp()
    assert value("window_end_timestamp_seconds") == latest["window_end"].timestamp()
    assert value("window_info", window_spec="month", status="ok") == 1
    assert value("current_rows") == latest["n_current"] and value("reference_rows") == latest["n_reference"]
    assert value("drift_share_ratio") == latest["drift_share"]
    assert value("dataset_drift") == float(latest["dataset_drift"])
    for stored in ("mae_usd", "rmse_usd", "mean_error_usd", "r2", "max_abs_error_usd"):
        assert value(stored) == latest[stored], stored
    assert value("mape_ratio") == pytest.approx(latest["mape_pct"] / 100)

    columns = results.load_columns(monitored_store)
    columns = columns[columns["window_start"] == latest["window_start"]]
    assert set(columns["role"]) == {"feature", "target", "prediction"} and len(columns) == len(HOUSE.names) + 2
    p_valued = set()
    for row in columns.itertuples():
        labels = {"column": row.column_name, "role": row.role, "test": row.test}
        assert value("column_drift_score", **labels) == row.score
        assert value("column_drift_threshold", **labels) == row.threshold
        assert value("column_drift", **labels) == float(row.drift)
        if STATTESTS[row.test].p_value:
            assert value("column_p_value", **labels) == row.score
            p_valued.add(row.column_name)
    assert p_valued == {"sqft_living", "zipcode", "label_usd"}
    assert sum(1 for name, _ in samples if name == "forwardlab_monitor_column_p_value") == 3

    assert value("alert_raised", rule="busy-window") == 1
    assert value("alerts_undelivered", rule="busy-window") == 2  # no webhook: both windows' alerts wait

    for name, (kind, help_text) in families.items():
        if name.startswith("forwardlab_monitor_") and "read_errors" not in name:
            assert kind == "gauge" and len(help_text) > 20, name
    assert "the score is the p-value" in families["forwardlab_monitor_column_drift_score"][1]
    assert samples[("forwardlab_monitor_results_read_errors_total", frozenset())] == 0
    assert samples[("forwardlab_predictions_total", frozenset())] == 0  # the service's own metrics stay


def test_the_prediction_time_view_is_exported_as_the_run_stored_it(
    served: RunningServer, monitored_store: Store
) -> None:
    block = results.stored_records(monitored_store)[-1]["production"]
    samples, families = scrape(served)
    pca, domain = block["multivariate"]["pca"], block["multivariate"]["domain_classifier"]
    stored = {
        "window_predictions": block["n_predictions"],
        "window_labelled_predictions": block["n_labelled"],
        "label_coverage_ratio": block["label_coverage"],
        "label_coverage_min_ratio": block["min_coverage"],
        "provisional": block["provisional"],
        "realized_mae_usd": block["realized_mae_usd"],
        "estimated_mae_usd": block["estimated_mae_usd"],
        "estimated_mae_lower_usd": block["estimated_mae_lower_usd"],
        "estimated_mae_upper_usd": block["estimated_mae_upper_usd"],
        "estimated_mae_alert": block["estimated_mae_alert"],
        "pca_reconstruction_error": pca["value"],
        "pca_reconstruction_error_lower": pca["lower"],
        "pca_reconstruction_error_upper": pca["upper"],
        "pca_reconstruction_error_alert": pca["alert"],
        "domain_classifier_auc": domain["value"],
        "domain_classifier_auc_upper": domain["upper"],
        "domain_classifier_alert": domain["alert"],
    }
    assert block["n_predictions"] > 0 and block["estimated_mae_usd"] is not None
    for name, value in stored.items():
        key = (f"forwardlab_monitor_{name}", frozenset())
        if value is None:
            assert key not in samples, name  # not computed: left out, not exported as 0
        else:
            assert samples[key] == float(value), name
            assert families[key[0]][0] == "gauge"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rules = readme[readme.index("```yaml\ngroups:") : readme.index("```\n", readme.index("```yaml\ngroups:"))]
    assert set(re.findall(r"forwardlab_monitor_\w+", rules)) <= set(families)  # the README's alert rules


def test_the_newest_runs_window_spec_is_the_one_exported(served: RunningServer, monitored_store: Store) -> None:
    run_monitoring(monitored_store, window="week", reference=REFERENCE, columns=COLUMNS, end=utc("2014-11-17"))
    samples, _ = scrape(served)
    week = results.load_windows(monitored_store).query("window_spec == 'week'").iloc[-1]
    assert samples[("forwardlab_monitor_window_info", frozenset({("window_spec", "week"), ("status", "ok")}))] == 1
    assert (
        samples[("forwardlab_monitor_window_start_timestamp_seconds", frozenset())] == week["window_start"].timestamp()
    )
    assert ("forwardlab_monitor_alert_raised", frozenset({("rule", "busy-window")})) not in samples


def test_without_monitoring_results_only_the_service_metrics(service: RunningServer, store: Store) -> None:
    samples, _ = scrape(service)  # no results tables at all
    assert monitored(samples) == {}
    assert samples[("forwardlab_monitor_results_read_errors_total", frozenset())] == 0
    assert "monitoring_windows" not in sa.inspect(store.engine).get_table_names()  # a scrape creates nothing

    results.ensure_tables(store)  # tables, but no window in them
    samples, _ = scrape(service)
    assert monitored(samples) == {}


def test_a_store_it_cannot_read_costs_the_gauges_not_the_scrape(model: PriceModel, tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        results.ensure_tables(store)
        with store.transaction() as conn:
            conn.exec_driver_sql("ALTER TABLE monitoring_windows RENAME COLUMN record TO old_record")
        with start_server(create_app(model, store, api_keys=["metrics-test-key"])) as server:
            scrape(server)
            samples, _ = scrape(server)
    assert monitored(samples) == {}
    assert samples[("forwardlab_monitor_results_read_errors_total", frozenset())] == 2
    assert samples[("forwardlab_predictions_total", frozenset())] == 0
