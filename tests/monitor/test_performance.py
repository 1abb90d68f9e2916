"""Regression metrics per window: equal to scikit-learn's and to Evidently's regression report on the same
frame, price bands fixed by the reference, and missing or degenerate data reported rather than crashing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from evidently import DataDefinition, Dataset, Regression, Report
from evidently.presets import RegressionPreset
from sklearn import metrics

from forwardlab.monitor.errors import FrameError
from forwardlab.monitor.performance import PerformanceCalculator

COLUMNS = {"target": "label_usd", "prediction": "prediction_usd"}


def scored(n: int, *, seed: int, bias: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.lognormal(13, 0.4, n)
    return pd.DataFrame({"label_usd": truth, "prediction_usd": truth * rng.normal(bias, 0.1, n)})


def test_metrics_equal_scikit_learn_and_evidently() -> None:
    current = scored(700, seed=1, bias=1.05)
    result = PerformanceCalculator(**COLUMNS).fit(scored(2000, seed=0)).calculate(current)
    y, p = current["label_usd"], current["prediction_usd"]
    assert result.mae_usd == pytest.approx(metrics.mean_absolute_error(y, p), rel=1e-12)
    assert result.rmse_usd == pytest.approx(np.sqrt(metrics.mean_squared_error(y, p)), rel=1e-12)
    assert result.mape_pct == pytest.approx(100 * metrics.mean_absolute_percentage_error(y, p), rel=1e-12)
    assert result.r2 == pytest.approx(metrics.r2_score(y, p), rel=1e-12)
    assert result.max_abs_error_usd == pytest.approx(metrics.max_error(y, p), rel=1e-12)
    assert result.mean_error_usd == pytest.approx(float(np.mean(p - y)), rel=1e-12)
    assert result.mean_error_usd > 0  # a 5% over-pricing model: error is prediction minus truth

    definition = DataDefinition(
        numerical_columns=["label_usd", "prediction_usd"],
        regression=[Regression(target="label_usd", prediction="prediction_usd")],
    )
    snapshot = Report([RegressionPreset()]).run(Dataset.from_pandas(current, data_definition=definition), None)
    theirs = {m["config"]["type"].rsplit(":", 1)[1]: m["value"] for m in snapshot.dict()["metrics"]}
    assert result.mean_error_usd == pytest.approx(theirs["MeanError"]["mean"], rel=1e-9)
    assert result.mae_usd == pytest.approx(theirs["MAE"]["mean"], rel=1e-9)
    assert result.mape_pct == pytest.approx(theirs["MAPE"]["mean"], rel=1e-9)
    assert result.rmse_usd == pytest.approx(theirs["RMSE"], rel=1e-9)
    assert result.r2 == pytest.approx(theirs["R2Score"], rel=1e-9)
    assert result.max_abs_error_usd == pytest.approx(theirs["AbsMaxError"], rel=1e-9)


def test_segments_are_the_references_price_quartiles_in_every_window() -> None:
    reference = scored(4000, seed=0)
    calculator = PerformanceCalculator(**COLUMNS).fit(reference)
    edges = np.quantile(reference["label_usd"], [0.25, 0.5, 0.75])
    assert calculator.edges_usd == pytest.approx(tuple(edges))
    assert calculator.reference is not None and [s.n for s in calculator.reference.segments] == [1000] * 4
    richer = scored(800, seed=2).assign(
        label_usd=lambda f: f["label_usd"] * 1.5, prediction_usd=lambda f: f["label_usd"]
    )
    result = calculator.calculate(richer)
    assert result.segments[0].low_usd is None
    assert [s.low_usd for s in result.segments[1:]] == pytest.approx(list(edges))
    assert sum(s.n for s in result.segments) == 800
    assert result.segments[-1].n > result.segments[0].n  # bands stay put while prices move up
    top = richer[richer["label_usd"] >= edges[-1]]
    assert result.segments[-1].mae_usd == pytest.approx(
        float(np.mean(np.abs(top["prediction_usd"] - top["label_usd"])))
    )
    assert result.segments[0].segment.startswith("< ") and result.segments[-1].segment.startswith(">= ")


def test_missing_and_degenerate_data_are_reported() -> None:
    calculator = PerformanceCalculator(**COLUMNS).fit(scored(100, seed=0))
    gappy = scored(50, seed=3)
    gappy.loc[:9, "label_usd"] = np.nan
    gappy.loc[10:11, "prediction_usd"] = np.inf
    result = calculator.calculate(gappy)
    assert (result.n, result.n_missing) == (38, 12)
    constant = pd.DataFrame({"label_usd": [300_000.0] * 3, "prediction_usd": [310_000.0, 290_000.0, 300_000.0]})
    assert calculator.calculate(constant).r2 is None  # undefined for a constant truth
    assert calculator.calculate(constant).mae_usd == pytest.approx(20_000 / 3)
    empty = calculator.calculate(constant.head(0))
    assert (empty.n, empty.mae_usd, empty.r2) == (0, None, None)
    assert [s.n for s in empty.segments] == [0, 0, 0, 0]


def test_bad_frames_are_named() -> None:
    with pytest.raises(FrameError, match=r"reference: missing column\(s\) prediction_usd"):
        PerformanceCalculator(**COLUMNS).fit(scored(10, seed=0).drop(columns="prediction_usd"))
    with pytest.raises(FrameError, match="reference: column label_usd has no values"):
        PerformanceCalculator(**COLUMNS).fit(scored(10, seed=0).assign(label_usd=np.nan))
    with pytest.raises(FrameError, match="current: label_usd and prediction_usd must be numbers"):
        PerformanceCalculator(**COLUMNS).fit(scored(10, seed=0)).calculate(scored(5, seed=1).assign(label_usd="a lot"))
