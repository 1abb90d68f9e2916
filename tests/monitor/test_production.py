"""The prediction-time view of a window: predictions made in it (by predicted_at), their label coverage as of the
run's end, the realized MAE of those labelled, and what alert rules may see of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from forwardlab.monitor.alerts import parse_alert_config
from forwardlab.monitor.data import PreparedData
from forwardlab.monitor.drift.multivariate import DomainClassifierDrift, ReconstructionDrift
from forwardlab.monitor.errors import AlertConfigError, MonitoringRunError
from forwardlab.monitor.estimation import LossEstimator
from forwardlab.monitor.house import house_columns
from forwardlab.monitor.model import PriceModel
from forwardlab.monitor.production import LabelCoverage, ProductionCalculator, known_at, production_metrics
from forwardlab.monitor.server import RunningServer
from forwardlab.monitor.store import Store
from forwardlab.monitor.windows import MonitoringRun, ReferenceSource, run_monitoring
from tests.monitor.conftest import API_KEY, house

REFERENCE = ReferenceSource(end=datetime(2014, 11, 1, tzinfo=UTC))


def monthly(store: Store, end: datetime, *, start: datetime | None = REFERENCE.end, **options: Any) -> MonitoringRun:
    """A monthly run of the house columns against the training reference, from `start` to `end`."""
    options.setdefault("reference", REFERENCE)
    return run_monitoring(store, window="month", columns=house_columns(), start=start, end=end, **options)


def months_listed(prepared: PreparedData, start: str, end: str) -> pd.DataFrame:
    listed = prepared.prod["date_listed"]
    return prepared.prod[(listed >= pd.Timestamp(start)) & (listed < pd.Timestamp(end))]


def test_coverage_counts_the_window_s_predictions_labelled_by_the_run_s_end(
    scored_store: Store, prepared: PreparedData, model: PriceModel
) -> None:
    end = datetime(2015, 3, 1, tzinfo=UTC)
    run = monthly(scored_store, end)
    as_of = pd.Timestamp(end).tz_localize(None)
    for window in run.windows:
        assert window.production is not None
        lo, hi = pd.Timestamp(window.start).tz_localize(None), pd.Timestamp(window.end).tz_localize(None)
        listed = months_listed(prepared, str(lo), str(hi))
        sold = listed[listed["date_sold"] < as_of]
        coverage = window.production.coverage
        assert (coverage.n_predictions, coverage.n_labelled) == (len(listed), len(sold))
        errors = np.abs(model.predict(sold) - sold["price"].to_numpy())
        assert window.production.realized_mae_usd == pytest.approx(errors.mean(), rel=1e-9)
    last = run.windows[-1].production
    assert last is not None and last.coverage.provisional  # the last month's houses are mostly still for sale
    assert 0 < (last.coverage.label_coverage or 0) < 0.8
    first = run.windows[0].production
    assert first is not None and not first.coverage.provisional and first.coverage.label_coverage == 1.0


def test_re_monitoring_later_sees_more_labels_and_the_record_says_so(scored_store: Store, tmp_path: Path) -> None:
    month = {"start": datetime(2015, 2, 1, tzinfo=UTC), "end": datetime(2015, 3, 1, tzinfo=UTC)}
    early = monthly(scored_store, month["end"], start=month["start"])
    (window,) = early.windows
    assert window.production is not None and window.production.coverage.provisional
    later = monthly(
        scored_store,
        datetime(2015, 5, 1, tzinfo=UTC),
        start=month["start"],
        out_dir=tmp_path,
        reports=False,
    )
    feb = later.windows[0].record()["production"]
    assert feb["n_predictions"] == window.production.coverage.n_predictions
    assert feb["n_labelled"] > window.production.coverage.n_labelled
    assert feb["provisional"] is False and feb["label_coverage"] >= 0.8
    assert '"production"' in (tmp_path / "monitoring.json").read_text()


def test_known_at_blanks_labels_that_arrived_later_and_leaves_the_frame_alone() -> None:
    frame = pd.DataFrame(
        {
            "label_usd": [1.0, 2.0, np.nan],
            "label_at": pd.to_datetime(["2015-01-10", "2015-02-10", None], utc=True),
        }
    )
    seen = known_at(frame, pd.Timestamp("2015-02-01", tz="UTC"), target="label_usd")
    assert seen["label_usd"].isna().tolist() == [False, True, True]
    assert frame["label_usd"].notna().sum() == 2
    assert known_at(frame, pd.Timestamp("2016-01-01", tz="UTC"), target="label_usd") is frame


def test_coverage_thresholds_and_what_alert_rules_see() -> None:
    assert LabelCoverage(10, 8, 0.8).provisional is False
    assert LabelCoverage(10, 7, 0.8).provisional is True
    assert LabelCoverage(0, 0, 0.8).to_dict()["label_coverage"] is None
    with pytest.raises(MonitoringRunError, match=r"minimum label coverage 1\.5"):
        ProductionCalculator(house_columns(), min_coverage=1.5)
    multivariate = {"pca": {"value": 1.5}, "domain_classifier": {"value": 0.61}}
    provisional = {
        **LabelCoverage(10, 3, 0.8).to_dict(),
        "realized_mae_usd": 9e5,
        "estimated_mae_usd": 8e5,
        "multivariate": multivariate,
    }
    assert production_metrics(provisional) == {
        "label_coverage": 0.3,
        "realized_mae_usd": None,
        "estimated_mae_usd": 8e5,
        "pca_reconstruction_error": 1.5,
        "domain_classifier_auc": 0.61,
    }
    final = {**LabelCoverage(10, 9, 0.8).to_dict(), "realized_mae_usd": 9e5}
    assert production_metrics(final)["realized_mae_usd"] == 9e5
    assert set(production_metrics(None).values()) == {None}


def test_alert_rules_on_coverage_and_on_the_final_realized_mae(scored_store: Store) -> None:
    rules = parse_alert_config(
        {
            "rules": [
                {"name": "few-labels", "type": "metric", "metric": "label_coverage", "below": 0.8},
                {"name": "mae-up", "type": "metric", "metric": "realized_mae_usd", "increase_pct": 1},
            ]
        }
    )
    run = monthly(scored_store, datetime(2015, 3, 1, tzinfo=UTC), alerts=rules)
    by_rule: dict[str, set[str]] = {}
    for alert in run.alerts:
        by_rule.setdefault(alert.rule, set()).add(f"{alert.window_start:%Y-%m}")
    provisional = {f"{w.start:%Y-%m}" for w in run.windows if w.production and w.production.coverage.provisional}
    assert by_rule["few-labels"] == provisional
    assert not by_rule.get("mae-up", set()) & provisional  # a provisional MAE never fires
    with pytest.raises(AlertConfigError, match="increase_pct needs a metric the reference has"):
        parse_alert_config({"rules": [{"name": "x", "type": "metric", "metric": "label_coverage", "increase_pct": 5}]})


def test_the_service_stores_a_given_prediction_time_and_refuses_one_in_the_future(
    service: RunningServer, store: Store
) -> None:
    listed = "2015-01-05T00:00:00"
    with httpx.Client(base_url=service.base_url, headers={"X-API-Key": API_KEY}) as client:
        made = client.post("/v1/predict", json={"features": house(), "predicted_at": listed})
        assert made.status_code == 200
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        refused = client.post("/v1/predict", json={"features": house(), "predicted_at": future})
        assert refused.status_code == 422 and "predicted_at is in the future" in refused.text
        now = client.post("/v1/predict", json={"features": house()})
    frame = store.predictions()
    assert len(frame) == 2
    assert frame["predicted_at"].iloc[0] == pd.Timestamp(listed, tz="UTC")
    assert frame["predicted_at"].iloc[1] > pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=5)
    assert now.status_code == 200


def test_each_window_keeps_its_top_segments_by_error_increase(scored_store: Store, tmp_path: Path) -> None:
    run = monthly(scored_store, datetime(2015, 2, 1, tzinfo=UTC))
    for window in run.windows:
        rows = window.record()["production"]["segments"]
        assert 0 < len(rows) <= 10
        increases = [r["increase_usd"] for r in rows if r["increase_usd"] is not None]
        assert increases == sorted(increases, reverse=True)
        assert {r["by"] for r in rows} <= {"zipcode", "price_band"}  # one model version: the whole window
        assert all(r["n"] < window.production.coverage.n_predictions for r in rows)
    # a reference file has no model_version: that segment is left out rather than failing the run
    reference = scored_store.predictions(None, REFERENCE.end, time_column="label_at").drop(columns="model_version")
    path = tmp_path / "reference.parquet"
    reference.to_parquet(path)
    from_file = monthly(scored_store, datetime(2014, 12, 1, tzinfo=UTC), reference=ReferenceSource(path=path))
    (window,) = from_file.windows
    assert window.production is not None and window.production.segments is not None
    assert {row.by for row in window.production.segments.rows} == {"zipcode", "price_band"}


def test_the_window_s_estimate_and_multivariate_drift_are_the_calculators_on_its_predictions(
    scored_store: Store,
) -> None:
    """The run's numbers equal the three calculators fitted on the same reference and applied to the window's
    predictions read straight from the store, labels blanked as of the run's end."""
    columns = house_columns()
    start, end = datetime(2015, 1, 1, tzinfo=UTC), datetime(2015, 2, 1, tzinfo=UTC)
    run = monthly(scored_store, end, start=start)
    (window,) = run.windows
    assert window.production is not None and window.production.estimated is not None

    def in_time_order(frame: pd.DataFrame) -> pd.DataFrame:  # as the run reads the store: folds go by position
        return frame.sort_values(["predicted_at", "entity_id"], kind="stable").reset_index(drop=True)

    reference = in_time_order(scored_store.predictions(None, REFERENCE.end, time_column="label_at"))
    made = known_at(in_time_order(scored_store.predictions(start, end)), end, target=columns.target)
    features = columns.features
    estimator = LossEstimator(
        numerical=features.numerical,
        categorical=features.categorical,
        prediction=columns.prediction,
        target=columns.target,
    ).fit(reference)
    assert window.production.estimated == estimator.calculate(made)
    assert window.production.reconstruction == ReconstructionDrift(
        features.numerical, features.categorical, min_rows=features.min_rows
    ).fit(reference).calculate(made)
    assert window.production.domain_classifier == DomainClassifierDrift(
        features.numerical, features.categorical, min_rows=features.min_rows
    ).fit(reference).calculate(made)
    record = window.record()["production"]
    assert record["estimated_mae_lower_usd"] <= record["estimated_mae_usd"] <= record["estimated_mae_upper_usd"]
    assert set(record["multivariate"]) == {"pca", "domain_classifier"}
    # segments rank by each row's estimated error where labels are missing: estimates are given for every row
    assert all(row["estimated_mae_usd"] is not None for row in record["segments"])
