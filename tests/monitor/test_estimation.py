"""Label-free MAE estimation on the built-in market: it tracks the realized MAE without seeing a label."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from forwardlab.monitor.data import prepare
from forwardlab.monitor.errors import FrameError
from forwardlab.monitor.estimation import (
    RECORD_KEYS,
    UNKNOWN_SHARE,
    EstimatedPerformance,
    LossEstimator,
    cross_fitted_reference,
)
from forwardlab.monitor.features import HOUSE
from forwardlab.monitor.model import build_pipeline, train
from forwardlab.monitor.scenarios import ONSET, SCENARIOS

ROWS_PER_MONTH = 400  # a third of the default market: about 300 predictions a month, fast to train on
PREDICTION = "prediction_usd"
Change = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class Fitted:
    train: pd.DataFrame
    reference: pd.DataFrame
    production: pd.DataFrame  # with the prediction and its absolute error
    estimator: LossEstimator


def estimator(seed: int = 0) -> LossEstimator:
    return LossEstimator(
        numerical=HOUSE.numerical, categorical=HOUSE.categorical, prediction=PREDICTION, target="price", seed=seed
    )


def fitted(scenario: str) -> Fitted:
    prepared = prepare(SCENARIOS[scenario].sales(rows_per_month=ROWS_PER_MONTH))
    model = train(prepared.train, alphas=(0.5,))
    reference = cross_fitted_reference(
        model.pipeline,
        prepared.train,
        features=HOUSE.names,
        target="price",
        prediction=PREDICTION,
        unknown=("zipcode",),
    )
    production = prepared.prod.assign(**{PREDICTION: model.predict(prepared.prod)})
    production["abs_error"] = (production[PREDICTION] - production["price"]).abs()
    return Fitted(prepared.train, reference, production, estimator().fit(reference))


@pytest.fixture(scope="module")
def stationary() -> Fitted:
    return fitted("no-drift")


@pytest.fixture(scope="module")
def shifted() -> Fitted:
    return fitted("covariate-shift-sudden")


def monthly(fit: Fitted) -> pd.DataFrame:
    """Per month of prediction (listing) time: the realized MAE beside the estimate, computed without labels."""
    rows = []
    for month, window in fit.production.groupby(fit.production["date_listed"].dt.to_period("M")):
        result = fit.estimator.calculate(window.drop(columns=["price", "abs_error"]))
        rows.append({"month": month.to_timestamp(), "realized": window["abs_error"].mean(), **vars(result)})
    return pd.DataFrame(rows)


def test_band_holds_the_realized_mae_of_stationary_windows(stationary: Fitted) -> None:
    months = monthly(stationary)
    inside = months["realized"].between(months["estimated_mae_lower_usd"], months["estimated_mae_upper_usd"])
    assert inside.mean() >= 0.8  # a 95% band; 14 windows
    assert (months["estimated_mae_lower_usd"] < months["estimated_mae_usd"]).all()
    assert (months["estimated_mae_usd"] < months["estimated_mae_upper_usd"]).all()
    assert months["estimated_mae_alert"].sum() <= 1  # a stationary market; the threshold is at 3 standard errors
    reference = stationary.estimator.reference
    assert reference is not None and reference.n == len(stationary.train)
    assert months["estimated_mae_usd"].mean() == pytest.approx(reference.mae_usd, rel=0.05)


def test_estimate_rises_with_the_realized_mae_after_a_covariate_shift(shifted: Fitted) -> None:
    months = monthly(shifted)
    before, after = months[months["month"] < ONSET - pd.DateOffset(months=2)], months[months["month"] >= ONSET]
    realized_rise = after["realized"].mean() / before["realized"].mean()
    estimated_rise = after["estimated_mae_usd"].mean() / before["estimated_mae_usd"].mean()
    assert realized_rise > 1.15  # larger houses, higher prices, larger errors in USD
    assert estimated_rise - 1 >= 0.6 * (realized_rise - 1)  # most of the rise, seen without a label
    assert after["estimated_mae_alert"].all() and not before["estimated_mae_alert"].any()
    assert spearmanr(months["estimated_mae_usd"], months["realized"]).statistic >= 0.8


def test_a_zip_code_the_model_never_saw_costs_more(stationary: Fitted) -> None:
    houses = stationary.production.head(300)
    known = stationary.estimator.calculate(houses).row_estimates_usd
    unknown = stationary.estimator.calculate(houses.assign(zipcode="00000")).row_estimates_usd
    assert unknown.mean() > 1.3 * known.mean()
    unseen = stationary.reference[stationary.reference["zipcode"].isna()]
    seen = stationary.reference[stationary.reference["zipcode"].notna()]
    unseen_mae = (unseen[PREDICTION] - unseen["price"]).abs().mean()
    assert unseen_mae > 1.3 * (seen[PREDICTION] - seen["price"]).abs().mean()


def test_reference_predictions_are_out_of_fold(stationary: Fitted) -> None:
    reference = stationary.reference
    training = reference[reference["zipcode"].notna()]
    assert len(training) == len(stationary.train)  # every training row once, then a share with an unseen zip
    assert reference["zipcode"].isna().sum() / len(training) == pytest.approx(UNKNOWN_SHARE, abs=0.03)
    refitted = train(training.drop(columns=[PREDICTION]), alphas=(0.5,))
    in_sample = np.abs(refitted.predict(training) - training["price"]).mean()
    assert (training[PREDICTION] - training["price"]).abs().mean() > in_sample


def test_row_estimates_average_to_the_window_estimate(stationary: Fitted) -> None:
    window = stationary.production.head(500).copy()
    window.loc[window.index[:5], PREDICTION] = np.nan
    rows = stationary.estimator.calculate(window).row_estimates_usd
    result = stationary.estimator.calculate(window)
    assert rows.shape == (500,) and np.isnan(rows[:5]).all() and (rows[5:] > 0).all()
    assert result.n == 495 and result.estimated_mae_usd == pytest.approx(np.nanmean(rows), rel=1e-12)
    assert list(result.to_dict()) == list(RECORD_KEYS)
    assert all(type(v) in (float, bool) for v in result.to_dict().values())  # plain JSON values, not NumPy's
    empty = stationary.estimator.calculate(window.iloc[:0])
    assert empty == EstimatedPerformance(0, None, None, None, None, None)


def test_same_seed_same_estimates(stationary: Fitted) -> None:
    window = stationary.production.head(200)
    again = estimator(seed=0).fit(stationary.reference).calculate(window).row_estimates_usd
    np.testing.assert_array_equal(again, stationary.estimator.calculate(window).row_estimates_usd)
    other = estimator(seed=1).fit(stationary.reference).calculate(window).row_estimates_usd
    assert not np.array_equal(other, again)


def test_calculate_before_fit_is_refused(stationary: Fitted) -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        estimator().calculate(stationary.production)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["zipcode"]), "reference: missing column.*zipcode"),
        (lambda f: f.drop(columns=["price"]), "reference: missing column.*price"),
        (lambda f: f.assign(sqft_living="big"), "reference: column sqft_living must hold numbers"),
        (lambda f: f.assign(price=f["price"].astype(str)), "reference: column price must hold numbers"),
        (lambda f: f.iloc[:0], "reference: no rows"),
        (lambda f: f.assign(price=np.nan), "reference: 0 rows with both price and prediction_usd"),
        (lambda f: f.assign(prediction_usd=-1.0), "reference: column prediction_usd has .* <= 0"),
        (lambda f: f.assign(zipcode=None), "reference: every row lacks a value"),
    ],
)
def test_bad_reference_is_a_frame_error(stationary: Fitted, change: Change, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        estimator().fit(change(stationary.reference.head(200)))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=[PREDICTION]), "current: missing column.*prediction_usd"),
        (lambda f: f.assign(sqft_lot=f["sqft_lot"].astype(str)), "current: column sqft_lot must hold numbers"),
        (lambda f: f.assign(prediction_usd=0.0), "current: column prediction_usd has 50 value"),
    ],
)
def test_bad_window_is_a_frame_error(stationary: Fitted, change: Change, message: str) -> None:
    window = stationary.production.head(50).drop(columns=["price"])  # no labels needed
    with pytest.raises(FrameError, match=message):
        stationary.estimator.calculate(change(window))


def test_bad_settings_are_frame_errors(stationary: Fitted) -> None:
    with pytest.raises(FrameError, match="listed twice"):
        LossEstimator(numerical=["a", "a"], categorical=[], prediction="p", target="t")
    with pytest.raises(FrameError, match="besides the features"):
        LossEstimator(numerical=["a"], categorical=[], prediction="a", target="t")
    with pytest.raises(FrameError, match="at least 2"):
        LossEstimator(numerical=["a"], categorical=[], prediction="p", target="t", folds=1)
    with pytest.raises(FrameError, match=r"training data: missing column.*price"):
        cross_fitted_reference(
            build_pipeline(),
            stationary.train.drop(columns=["price"]),
            features=HOUSE.names,
            target="price",
            prediction=PREDICTION,
        )
