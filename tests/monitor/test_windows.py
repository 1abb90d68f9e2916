"""The monitoring run on a store filled through the real service: windows, reference choices, results in the
store and monitoring.json, Evidently reports, re-runs that replace and failed runs that leave everything."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forwardlab.monitor import results
from forwardlab.monitor.columns import ColumnRoles
from forwardlab.monitor.data import PreparedData
from forwardlab.monitor.drift.calculator import compare
from forwardlab.monitor.drift.config import DriftConfig, drift_config
from forwardlab.monitor.errors import FrameError, MonitoringRunError
from forwardlab.monitor.features import HOUSE
from forwardlab.monitor.house import house_columns
from forwardlab.monitor.model import PriceModel
from forwardlab.monitor.store import LABEL_COLUMN, PREDICTION_COLUMN, LabelRequest, PredictionRecord, Store
from forwardlab.monitor.windows import ReferenceSource, WindowSpec, run_monitoring

TRAIN_END = datetime(2014, 11, 1, tzinfo=UTC)
STORE_REFERENCE = ReferenceSource(end=TRAIN_END)
COLUMNS = house_columns()
MONTHS = ["2014-11", "2014-12", "2015-01", "2015-02", "2015-03", "2015-04"]


def utc(text: str) -> datetime:
    return pd.Timestamp(text, tz="UTC").to_pydatetime()


def scored_frame(model: PriceModel, frame: pd.DataFrame) -> pd.DataFrame:
    """What the store should hold for these sales: features, the model's price, the sale price."""
    return frame[list(HOUSE.names)].assign(prediction_usd=model.predict(frame), label_usd=frame["price"])


def test_window_specs_cut_time_in_utc() -> None:
    assert WindowSpec.parse(" Month ").unit == "month"
    assert WindowSpec.parse("14-days") == WindowSpec("14-days", "days", 14)
    assert WindowSpec.parse("1 day").days == 1
    for bad in ("fortnight", "0-days", "-3-days", ""):
        with pytest.raises(MonitoringRunError, match="use month, week or N-days"):
            WindowSpec.parse(bad)
    start, end = pd.Timestamp("2014-11-15", tz="UTC"), pd.Timestamp("2015-02-10", tz="UTC")
    months = WindowSpec.parse("month").windows(start, end)
    assert [(a.isoformat()[:10], b.isoformat()[:10]) for a, b in months] == [
        ("2014-11-15", "2014-12-01"),
        ("2014-12-01", "2015-01-01"),
        ("2015-01-01", "2015-02-01"),
        ("2015-02-01", "2015-02-10"),
    ]
    weeks = WindowSpec.parse("week").windows(pd.Timestamp("2015-01-07", tz="UTC"), end)  # a Wednesday
    assert weeks[0][1].isoformat()[:10] == "2015-01-12"  # the next Monday
    assert [a.weekday() for a, _ in weeks[1:]] == [0] * (len(weeks) - 1)
    days = WindowSpec.parse("10-days")
    assert [b - a for a, b in days.windows(start, start + pd.Timedelta(days=25))][:2] == [pd.Timedelta(days=10)] * 2
    assert days.end_after(start, start + pd.Timedelta(days=10)) == start + pd.Timedelta(days=20)


def test_monthly_run_compares_each_month_with_the_training_predictions(
    scored_store: Store, prepared: PreparedData, model: PriceModel, tmp_path: Path
) -> None:
    run = run_monitoring(
        scored_store, window="month", reference=STORE_REFERENCE, columns=COLUMNS, out_dir=tmp_path, reports=False
    )
    assert [f"{w.start:%Y-%m}" for w in run.windows] == MONTHS
    assert run.windows[-1].end == utc("2015-05-01") and run.n_reference == len(prepared.train)
    reference = scored_frame(model, prepared.train)
    config = DriftConfig(numerical=HOUSE.numerical, categorical=HOUSE.categorical)
    for window, month in zip(run.windows, MONTHS, strict=True):
        sales = prepared.prod[prepared.prod["date_sold"].dt.strftime("%Y-%m") == month]
        current = scored_frame(model, sales)
        assert (window.status, window.n_current, window.n_reference) == ("ok", len(sales), len(prepared.train))
        expected = compare(reference, current, config)
        assert window.drift is not None and window.performance is not None
        assert [(c.column, c.test, c.drift) for c in window.drift.columns] == [
            (c.column, c.test, c.drift) for c in expected.columns
        ]
        for ours, theirs in zip(window.drift.columns, expected.columns, strict=True):
            assert ours.score == pytest.approx(theirs.score, abs=1e-9)
        assert window.performance.mae_usd == pytest.approx(np.mean(np.abs(current["prediction_usd"] - sales["price"])))
        target = compare(reference, current, drift_config(numerical=["label_usd"])).column("label_usd")
        assert window.target_drift is not None and window.target_drift.score == pytest.approx(target.score, abs=1e-9)

    written = json.loads((tmp_path / "monitoring.json").read_text())
    assert written == json.loads(json.dumps(run.to_json()))
    record = written["windows"][2]
    assert set(record) >= {"start", "end", "n_current", "n_reference", "features", "drift_share", "dataset_drift"}
    assert set(record["features"][0]) >= {"column", "test", "score", "threshold", "drift"}
    assert set(record["metrics"]) >= {"mae_usd", "rmse_usd", "mape_pct", "mean_error_usd", "r2", "max_abs_error_usd"}
    assert record["target_drift"]["column"] == "label_usd" and record["prediction_drift"]["column"] == "prediction_usd"
    assert written["reference"]["metrics"]["mae_usd"] == pytest.approx(run.reference_metrics.mae_usd)

    stored = results.load_windows(scored_store)
    assert stored["window_start"].dt.strftime("%Y-%m").tolist() == MONTHS
    assert stored["mae_usd"].tolist() == pytest.approx([w.performance.mae_usd for w in run.windows])  # type: ignore[union-attr]
    columns = results.load_columns(scored_store)
    assert len(columns) == 6 * 11 and set(columns["role"]) == {"feature", "target", "prediction"}


@pytest.mark.slow
def test_reports_are_rendered_per_window_from_the_same_frames(scored_store: Store, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    run = run_monitoring(
        scored_store,
        window="month",
        reference=STORE_REFERENCE,
        columns=COLUMNS,
        end=utc("2015-01-01"),
        out_dir=tmp_path,
        workers=2,
    )
    assert len(run.windows) == 2 and run.timings_s["reports_s"] > 0
    for window in run.windows:
        assert window.report_error is None
        assert sorted(window.reports) == ["data_drift", "regression_performance", "target_drift"]
        for name, relative in window.reports.items():
            html = (tmp_path / relative).read_text(encoding="utf-8")
            assert html.lstrip().startswith("<!DOCTYPE html>") and len(html) > 1_000_000  # JavaScript inlined
            shown = {
                "data_drift": "sqft_living",
                "target_drift": "label_usd",
                "regression_performance": "Absolute Max Error (current)",
            }
            assert shown[name] in html
    assert sorted(p.name for p in tmp_path.iterdir()) == ["monitoring.json", "reports"]  # no staging left


def test_reference_from_a_file_or_sampled_to_the_window_size(
    scored_store: Store, prepared: PreparedData, tmp_path: Path
) -> None:
    base = run_monitoring(
        scored_store, window="month", reference=STORE_REFERENCE, columns=COLUMNS, end=utc("2015-01-01")
    )
    path = tmp_path / "reference.csv"
    scored_store.predictions(None, TRAIN_END, time_column="label_at").to_csv(path, index=False)
    from_file = run_monitoring(
        scored_store,
        window="month",
        reference=ReferenceSource(path=path),
        columns=COLUMNS,
        start=TRAIN_END,
        end=utc("2015-01-01"),
    )
    assert [w.record()["features"] for w in from_file.windows] == [w.record()["features"] for w in base.windows]

    matched = [
        run_monitoring(
            scored_store,
            window="month",
            reference=STORE_REFERENCE,
            columns=COLUMNS,
            reference_sample="match",
            seed=seed,
        )
        for seed in (7, 7, 8)
    ]
    assert all(w.n_reference == w.n_current for w in matched[0].windows)
    scores = [[c.score for w in m.windows for c in w.drift.columns] for m in matched]  # type: ignore[union-attr]
    assert scores[0] == scores[1] != scores[2]  # seeded
    for window in matched[0].windows:  # a sample of at most 1,000 rows switches to Evidently's small-sample tests
        tests = {c.test for c in window.drift.columns}  # type: ignore[union-attr]
        small = window.n_reference <= 1000
        assert tests <= ({"ks", "chisquare", "z"} if small else {"wasserstein", "jensenshannon"}), window.n_reference
    assert any(w.n_reference <= 1000 for w in matched[0].windows)


def sales_between(prepared: PreparedData, start: str, end: str) -> int:
    sold = prepared.prod["date_sold"]
    return int(((sold >= pd.Timestamp(start)) & (sold < pd.Timestamp(end))).sum())


def test_tiny_and_empty_windows_are_insufficient_data(
    scored_store: Store, prepared: PreparedData, kc_is_real: bool, tmp_path: Path
) -> None:
    first, second = (
        sales_between(prepared, "2014-12-15", "2014-12-22"),
        sales_between(prepared, "2014-12-22", "2014-12-29"),
    )
    if kc_is_real:
        assert (first, second) == (323, 194)  # the week before Christmas, then Christmas week
    assert first > second
    config = DriftConfig(numerical=HOUSE.numerical, categorical=HOUSE.categorical, min_rows=first)
    holidays = run_monitoring(
        scored_store,
        window="week",
        reference=STORE_REFERENCE,
        columns=house_columns(config),
        start=utc("2014-12-15"),
        end=utc("2014-12-29"),
        out_dir=tmp_path,
        workers=1,
    )
    busy, quiet = holidays.windows
    assert (busy.status, busy.n_current, sorted(busy.reports)) == ("ok", first, sorted(busy.reports))
    assert len(busy.reports) == 3
    assert (quiet.status, quiet.n_current, quiet.drift, quiet.performance, quiet.reports) == (
        "insufficient data", second, None, None, {}
    )  # fmt: skip
    assert quiet.note == f"{second} rows with ground truth in the window, need at least {first}"
    assert json.loads((tmp_path / "monitoring.json").read_text())["windows"][1]["status"] == "insufficient data"
    after = run_monitoring(
        scored_store, window="week", reference=STORE_REFERENCE, columns=house_columns(config), start=utc("2015-04-27"),
        end=utc("2015-05-18"),
    )  # fmt: skip
    last_week = sales_between(prepared, "2015-04-27", "2015-05-04")
    assert last_week >= first
    assert [(w.status, w.n_current) for w in after.windows] == [
        ("ok", last_week), ("insufficient data", 0), ("insufficient data", 0)
    ]  # fmt: skip


def test_rerun_replaces_a_windows_rows_and_a_failed_run_changes_nothing(scored_store: Store, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    first = run_monitoring(
        scored_store, window="month", reference=STORE_REFERENCE, columns=COLUMNS, out_dir=tmp_path, reports=False
    )
    second = run_monitoring(
        scored_store, window="month", reference=STORE_REFERENCE, columns=COLUMNS, out_dir=tmp_path, reports=False
    )
    stored = results.load_windows(scored_store)
    assert len(stored) == 6 and set(stored["run_id"]) == {second.run_id} != {first.run_id}
    assert len(results.load_columns(scored_store)) == 6 * 11
    with scored_store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(results.runs_table)).scalar_one() == 2
    snapshot = (tmp_path / "monitoring.json").read_bytes()

    # June 2015: houses whose zip codes reached the store as numbers, labelled after the last window
    records = [
        PredictionRecord(f"00000000-0000-0000-0000-{i:012d}", "v", utc("2015-06-01"), f"late-{i}",
                         {f: 1 for f in HOUSE.names} | {"zipcode": 98001}, 400_000.0)
        for i in range(40)
    ]  # fmt: skip
    scored_store.add_predictions(records)
    scored_store.add_labels([LabelRequest(500_000.0, utc("2015-06-10"), prediction_uuid=r.uuid) for r in records])
    with pytest.raises(FrameError, match=r"column zipcode: the reference holds strings, the current numbers \(e.g. 98"):
        run_monitoring(
            scored_store, window="month", reference=STORE_REFERENCE, columns=COLUMNS, out_dir=tmp_path, reports=False
        )
    assert set(results.load_windows(scored_store)["run_id"]) == {second.run_id}
    assert (tmp_path / "monitoring.json").read_bytes() == snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["monitoring.json"]


def test_runs_that_cannot_start_say_why(scored_store: Store, tmp_path: Path) -> None:
    with pytest.raises(
        MonitoringRunError, match=r"reference \(store predictions labelled before 2014-05-01.*\): no rows"
    ):
        run_monitoring(scored_store, window="month", reference=ReferenceSource(end=utc("2014-05-01")), columns=COLUMNS)
    with pytest.raises(MonitoringRunError, match="no ground truth from 2016-01-01T00:00:00\\+00:00; nothing"):
        run_monitoring(
            scored_store, window="month", reference=STORE_REFERENCE, columns=COLUMNS, start=utc("2016-01-01")
        )
    scored_store.predictions(None, TRAIN_END, time_column="label_at").to_csv(tmp_path / "ref.csv", index=False)
    with (
        Store(f"sqlite:///{tmp_path / 'empty.db'}") as empty,
        pytest.raises(MonitoringRunError, match=r"empty\.db: no ground truth in the store; nothing to monitor"),
    ):
        file_reference = ReferenceSource(path=tmp_path / "ref.csv")
        run_monitoring(empty, window="week", reference=file_reference, columns=COLUMNS, end=utc("2015-01-01"))
    with pytest.raises(MonitoringRunError, match="reference: give either a file of scored training rows or an end"):
        ReferenceSource()
    (tmp_path / "file").write_text("x")
    with pytest.raises(MonitoringRunError, match="file: exists and is not a folder"):
        run_monitoring(
            scored_store, window="month", reference=STORE_REFERENCE, columns=COLUMNS, out_dir=tmp_path / "file"
        )
    with pytest.raises(
        FrameError, match=r"reference \(file .*ref.csv\): missing column\(s\) label_usd, prediction_usd"
    ):
        pd.DataFrame({f: [1] for f in HOUSE.names}).to_csv(tmp_path / "ref.csv", index=False)
        run_monitoring(
            scored_store, window="month", reference=ReferenceSource(path=tmp_path / "ref.csv"), columns=COLUMNS
        )


def test_results_tables_on_each_backend(store_url: str) -> None:
    """Replace-per-window and insert-once alerts behave alike on SQLite and PostgreSQL."""
    engine = sa.create_engine(store_url)
    results.results_metadata.drop_all(engine)
    engine.dispose()
    start, end = utc("2015-01-01"), utc("2015-02-01")
    with Store(store_url) as store:
        for run_id, mae in (("run-1", 1.0), ("run-2", 2.0)):
            window = {"window_start": start, "window_end": end, "run_id": run_id, "window_spec": "month",
                      "status": "ok", "n_current": 5, "n_reference": 9, "mae_usd": mae, "r2": float("nan"),
                      "record": {"score": float("inf"), "nested": [float("nan"), 1.0]}}  # fmt: skip
            run = {"run_id": run_id, "created_at": start, "window_spec": "month", "reference": "r", "n_reference": 9,
                   "settings": {}}  # fmt: skip
            alert = {"rule": "mae-up", "window_start": start, "window_end": end, "run_id": run_id,
                     "message": f"MAE {mae}", "value": mae, "raised_at": start, "attempts": 0}  # fmt: skip
            results.save_run(store, run, [window], [], [alert])
        windows = results.load_windows(store)
        assert windows[["run_id", "mae_usd"]].values.tolist() == [["run-2", 2.0]] and windows["r2"].isna().all()
        assert results.stored_records(store) == [{"score": None, "nested": [None, 1.0]}]
        alerts = results.load_alerts(store)
        assert alerts[["run_id", "message"]].values.tolist() == [["run-1", "MAE 1.0"]]  # raised once
        key = ("mae-up", start, end)
        assert results.undelivered(store, [key]) == {key}
        results.record_delivery(store, key, delivered=False, attempts=2, error="HTTP 503")
        results.record_delivery(store, key, delivered=True, attempts=1, error=None)
        assert results.undelivered(store, [key]) == set()
        assert results.load_alerts(store)["attempts"].tolist() == [3]


def test_the_engine_monitors_whatever_columns_its_caller_names(tmp_path: Path) -> None:
    """Weather stations, not houses: the run compares the columns the caller names, reads the reference file
    with the caller's string columns, and imports nothing of the price model."""
    rng = np.random.default_rng(11)
    stations = ["007", "012", "101"]  # leading zeros: read as numbers they would match nothing

    def readings(n: int, shift: float) -> pd.DataFrame:
        observed = rng.normal(100, 10, n)
        return pd.DataFrame(
            {
                "temperature": rng.normal(15 + shift, 5, n),
                "station": rng.choice(stations, n),
                "label_usd": observed,
                "prediction_usd": observed + rng.normal(shift, 3, n),
            }
        )

    reference_file = tmp_path / "reference.csv"
    readings(400, 0.0).to_csv(reference_file, index=False)
    months = {"2021-01": readings(200, 0.0), "2021-02": readings(200, 10.0)}
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        for month, frame in months.items():
            day = utc(f"{month}-10")
            records = [
                PredictionRecord(f"{month}-{i:028d}", "v", day, None, row, float(prediction))
                for i, (row, prediction) in enumerate(
                    zip(frame[["temperature", "station"]].to_dict("records"), frame["prediction_usd"], strict=True)
                )
            ]
            store.add_predictions(records)
            labels = zip(records, frame["label_usd"], strict=True)
            store.add_labels([LabelRequest(float(v), day, prediction_uuid=r.uuid) for r, v in labels])
        features = DriftConfig(numerical=("temperature",), categorical=("station",))
        roles = ColumnRoles(features, LABEL_COLUMN, PREDICTION_COLUMN, strings=("station",))
        run = run_monitoring(
            store, window="month", reference=ReferenceSource(path=reference_file), columns=roles,
            start=utc("2021-01-01"), end=utc("2021-03-01"),
        )  # fmt: skip
        january, february = run.windows
        for window in run.windows:
            assert window.drift is not None and [c.column for c in window.drift.columns] == ["temperature", "station"]
            assert window.drift.column("station").drift is False
        assert january.drift and not january.drift.column("temperature").drift
        assert february.drift and february.drift.column("temperature").drift
        assert february.target_drift and february.target_drift.column == "label_usd"
        assert february.prediction_drift and february.prediction_drift.drift
        error = months["2021-02"]["prediction_usd"] - months["2021-02"]["label_usd"]
        assert february.performance and february.performance.mae_usd == pytest.approx(np.abs(error).mean())

        unstrung = ColumnRoles(features, LABEL_COLUMN, PREDICTION_COLUMN)
        with pytest.raises(FrameError, match="column station: the reference holds numbers, the current strings"):
            run_monitoring(store, window="month", reference=ReferenceSource(path=reference_file), columns=unstrung)

    probe = "import sys, forwardlab.monitor.windows; print(sorted(m for m in sys.modules if 'forwardlab' in m))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "forwardlab.monitor.windows" in loaded
    for house_module in ("model", "features", "house", "schemas", "simulation"):
        assert f"'forwardlab.monitor.{house_module}'" not in loaded
