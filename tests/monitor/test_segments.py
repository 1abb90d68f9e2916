"""Error per segment on the synthetic market: never-seen zip codes head the list once they appear, price inflation
raises every predicted-price band, per-row estimates rank segments while labels are missing, and the numbers equal
a direct pandas computation on the same rows."""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pytest

from forwardlab.monitor.data import prepare
from forwardlab.monitor.errors import FrameError
from forwardlab.monitor.house import house_segments
from forwardlab.monitor.market import NEW_ZIPCODES
from forwardlab.monitor.model import train
from forwardlab.monitor.scenarios import ONSET, SCENARIOS
from forwardlab.monitor.segments import DEFAULT_MIN_ROWS, BandSegments, ColumnSegments, SegmentCalculator, SegmentResult
from forwardlab.monitor.store import LABEL_COLUMN, PREDICTION_COLUMN

CONTRACT_KEYS = {
    "by", "segment", "n", "n_labelled", "reference_mae_usd", "mae_usd", "estimated_mae_usd", "increase_usd",
}  # fmt: skip
ROWS_PER_MONTH = 600  # about 50 sales per new zip code in a two-month window: above the default min_rows


@functools.cache
def scored(scenario: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scenario's training rows (the reference) and the predictions listed in the two months after its first
    post-onset month, both scored by a model trained on its training rows, as the store's columns name them."""
    prepared = prepare(SCENARIOS[scenario].sales(rows_per_month=ROWS_PER_MONTH))
    model = train(prepared.train, alphas=(0.5,))  # one alpha: the grid search is not what is tested here

    def as_store(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(
            **{PREDICTION_COLUMN: model.predict(frame), LABEL_COLUMN: frame["price"], "model_version": model.version}
        ).reset_index(drop=True)

    listed = prepared.prod["date_listed"]
    lo, hi = ONSET + pd.DateOffset(months=1), ONSET + pd.DateOffset(months=3)
    return as_store(prepared.train), as_store(prepared.prod[(listed >= lo) & (listed < hi)])


def calculator(scenario: str, *, min_rows: int = DEFAULT_MIN_ROWS) -> SegmentCalculator:
    segments = SegmentCalculator(house_segments(), target=LABEL_COLUMN, prediction=PREDICTION_COLUMN, min_rows=min_rows)
    return segments.fit(scored(scenario)[0])


def test_never_seen_zip_codes_head_the_list_after_they_appear() -> None:
    reference, window = scored("new-zipcodes")
    result = calculator("new-zipcodes").calculate(window)
    zipcodes = [r for r in result.rows if r.by == "zipcode"]
    new = [r for r in zipcodes if r.new]
    assert new and {r.segment for r in new} <= set(NEW_ZIPCODES)
    assert not set(reference["zipcode"]) & set(NEW_ZIPCODES)
    assert all(r.reference_mae_usd == result.reference_mae_usd for r in new)  # no own baseline: the overall one
    top = result.top(2)
    assert [(r.by, r.new) for r in top] == [("zipcode", True)] * 2
    assert top[0].increase_usd is not None and top[0].increase_usd > result.reference_mae_usd  # error more than doubled
    known = [r.increase_usd for r in zipcodes if not r.new and r.n >= result.min_rows and r.increase_usd is not None]
    assert top[1].increase_usd is not None and top[1].increase_usd > max(known)
    assert not any(r.new for r in calculator("no-drift").calculate(scored("no-drift")[1]).rows)


def test_price_inflation_raises_every_predicted_price_band() -> None:
    def bands(scenario: str) -> list[tuple[float, float]]:
        rows = [r for r in calculator(scenario).calculate(scored(scenario)[1]).rows if r.by == "price_band"]
        assert len(rows) == 4 and all(r.mae_usd is not None and r.increase_usd is not None for r in rows)
        return [(r.increase_usd or 0.0, r.reference_mae_usd) for r in rows]

    inflated = bands("price-inflation-sudden")
    assert all(increase > 0.5 * reference for increase, reference in inflated)
    increases = [increase for increase, _ in inflated]
    assert increases == sorted(increases)  # 25% dearer sales: the miss grows with the price, in USD
    assert all(abs(increase) < 0.25 * reference for increase, reference in bands("no-drift"))


def test_estimates_rank_segments_while_labels_are_missing() -> None:
    calc = calculator("new-zipcodes")
    window = scored("new-zipcodes")[1]
    labelled = calc.calculate(window)
    hidden_error = (window[PREDICTION_COLUMN] - window[LABEL_COLUMN]).abs().to_numpy()
    unlabelled = window.assign(**{LABEL_COLUMN: np.nan})

    estimated = calc.calculate(unlabelled, estimated_abs_error=hidden_error)  # a perfect estimator
    assert all(r.n_labelled == 0 and r.mae_usd is None for r in estimated.rows)
    assert [(r.by, r.segment) for r in estimated.top(5)] == [(r.by, r.segment) for r in labelled.top(5)]
    for by_labels, by_estimates in zip(labelled.rows, estimated.rows, strict=True):
        assert by_estimates.estimated_mae_usd == pytest.approx(by_labels.mae_usd)
        assert by_estimates.increase_usd == pytest.approx(by_labels.increase_usd)

    blind = calc.calculate(unlabelled)
    assert all(r.increase_usd is None and r.estimated_mae_usd is None for r in blind.rows)
    parts = [r.n for r in blind.rows if r.n < len(unlabelled)]  # a segment of the whole window points nowhere
    assert [r.n for r in blind.top(3)] == sorted(parts, reverse=True)[:3]
    assert len(parts) == len(blind.rows) - 1  # the one model version


def test_realized_error_wins_over_estimates_where_enough_labels_arrived() -> None:
    calc = calculator("new-zipcodes")
    window = scored("new-zipcodes")[1]
    error = (window[PREDICTION_COLUMN] - window[LABEL_COLUMN]).abs().to_numpy()
    early = window[LABEL_COLUMN].where(window["date_sold"] < window["date_listed"].min() + pd.Timedelta(days=45))
    result = calc.calculate(window.assign(**{LABEL_COLUMN: early}), estimated_abs_error=0.5 * error)
    realized = [r for r in result.rows if r.mae_usd is not None]
    estimated = [r for r in result.rows if r.mae_usd is None and r.estimated_mae_usd is not None]
    assert realized and estimated
    for row in realized:
        assert row.n_labelled >= result.min_rows
        assert row.increase_usd == pytest.approx((row.mae_usd or 0.0) - row.reference_mae_usd)
    for row in estimated:
        assert row.increase_usd == pytest.approx((row.estimated_mae_usd or 0.0) - row.reference_mae_usd)


def test_segment_errors_equal_a_direct_pandas_computation() -> None:
    reference, window = scored("no-drift")
    window = window.copy()
    window.loc[window.index % 3 == 0, LABEL_COLUMN] = np.nan  # a third not labelled yet
    min_rows = 20
    result = calculator("no-drift", min_rows=min_rows).calculate(window)

    def errors(frame: pd.DataFrame) -> pd.Series:
        return (frame[PREDICTION_COLUMN] - frame[LABEL_COLUMN]).abs()

    overall = errors(reference).mean()
    assert result.reference_mae_usd == pytest.approx(overall, rel=1e-12)
    edges = np.quantile(reference[PREDICTION_COLUMN], [0.25, 0.5, 0.75])
    bins = [-np.inf, *edges, np.inf]
    keys = {
        "zipcode": (reference["zipcode"], window["zipcode"]),
        "price_band": (
            pd.cut(reference[PREDICTION_COLUMN], bins, right=False),
            pd.cut(window[PREDICTION_COLUMN], bins, right=False),
        ),
    }
    for by, (reference_key, window_key) in keys.items():
        baseline = errors(reference).groupby(reference_key, observed=True).agg(["size", "mean"])
        current = window.assign(error=errors(window)).groupby(window_key, observed=True)
        n, n_labelled, mae = current.size(), current["error"].count(), current["error"].mean()
        rows = [r for r in result.rows if r.by == by]
        assert [r.n for r in rows] == n.tolist() and [r.n_labelled for r in rows] == n_labelled.tolist()
        for row, key in zip(rows, n.index, strict=True):
            if n_labelled[key] >= min_rows:
                assert row.mae_usd == pytest.approx(mae[key], rel=1e-12)
            else:
                assert row.mae_usd is None
            own = baseline.loc[key] if key in baseline.index else None
            expected_reference = own["mean"] if own is not None and own["size"] >= min_rows else overall
            assert row.reference_mae_usd == pytest.approx(expected_reference, rel=1e-12)
    assert {r.segment for r in result.rows if r.by == "zipcode"} == set(window["zipcode"])


def test_a_model_version_the_reference_never_had_is_new() -> None:
    calc = calculator("no-drift")
    window = scored("no-drift")[1].assign(model_version="price-ridge-next")
    (row,) = [r for r in calc.calculate(window).rows if r.by == "model_version"]
    assert (row.segment, row.new, row.n) == ("price-ridge-next", True, len(window))
    assert row.reference_mae_usd == calc.reference_mae_usd
    assert row.to_dict().keys() == CONTRACT_KEYS | {"new"}
    json.dumps(calc.calculate(window).to_dict())  # plain JSON types, as the record needs


def small(errors: dict[str, list[float]], *, labelled: bool = True) -> pd.DataFrame:
    """Rows per zip code with the given absolute errors (predictions over a 100,000 USD truth)."""
    zips = [z for z, values in errors.items() for _ in values]
    error = np.array([e for values in errors.values() for e in values])
    truth = np.full(len(error), 100_000.0 if labelled else np.nan)
    return pd.DataFrame({"zip": zips, "label_usd": truth, "prediction_usd": 100_000.0 + error})


def test_top_orders_by_increase_then_rows_and_leaves_small_segments_out() -> None:
    calc = SegmentCalculator([ColumnSegments("zip")], target="label_usd", prediction="prediction_usd", min_rows=3)
    calc.fit(small({"a": [10.0] * 4, "b": [10.0] * 4, "c": [10.0] * 4, "d": [10.0] * 4}))
    current = pd.concat(
        [
            small({"a": [30.0] * 3, "b": [30.0] * 5, "c": [50.0] * 3, "e": [90.0] * 2}),
            small({"d": [0.0] * 6}, labelled=False),
        ]
    ).reset_index(drop=True)
    result = calc.calculate(current)
    assert [(r.segment, r.increase_usd) for r in result.top(10)] == [
        ("c", 40.0), ("b", 20.0), ("a", 20.0), ("d", None),
    ]  # fmt: skip
    (e,) = [r for r in result.rows if r.segment == "e"]
    assert (e.new, e.mae_usd, e.increase_usd) == (True, None, None)  # 2 rows: under min_rows
    assert result.top(1)[0].segment == "c" and result.top(0) == ()


def test_bad_input_is_named() -> None:
    reference = small({"a": [10.0] * 5})
    calc = SegmentCalculator([ColumnSegments("zip")], target="label_usd", prediction="prediction_usd", min_rows=3)
    with pytest.raises(RuntimeError, match="before fit"):
        calc.calculate(reference)
    with pytest.raises(FrameError, match=r"reference: missing column\(s\) zip"):
        calc.fit(reference.drop(columns="zip"))
    with pytest.raises(FrameError, match="reference: column prediction_usd must hold numbers"):
        calc.fit(reference.assign(prediction_usd="cheap"))
    with pytest.raises(FrameError, match="reference: 2 rows with both label_usd and prediction_usd, need at least 3"):
        calc.fit(reference.assign(label_usd=[1.0, 2.0, np.nan, np.nan, np.nan]))
    calc.fit(reference)
    with pytest.raises(FrameError, match=r"current: missing column\(s\) label_usd"):
        calc.calculate(reference.drop(columns="label_usd"))
    with pytest.raises(FrameError, match="estimated_abs_error: 4 values for a current frame of 5 rows"):
        calc.calculate(reference, estimated_abs_error=np.ones(4))
    with pytest.raises(FrameError, match="estimated_abs_error: must be a 1-D array"):
        calc.calculate(reference, estimated_abs_error=np.ones((5, 2)))
    with pytest.raises(FrameError, match="estimated_abs_error: absolute errors must be finite and 0 or more"):
        calc.calculate(reference, estimated_abs_error=-np.ones(5))
    bands = SegmentCalculator([BandSegments("sqft")], target="label_usd", prediction="prediction_usd", min_rows=3)
    with pytest.raises(FrameError, match="reference: column sqft has no values to cut bands at"):
        bands.fit(reference.assign(sqft=np.nan))
    with pytest.raises(FrameError, match=r"segments by price: quantiles \[0.5, 0.25\] must rise strictly"):
        BandSegments("prediction_usd", (0.5, 0.25), name="price")
    with pytest.raises(FrameError, match="segments: zip defined twice"):
        SegmentCalculator(
            [ColumnSegments("zip"), BandSegments("prediction_usd", name="zip")], target="a", prediction="b"
        )
    with pytest.raises(ValueError, match="k must be 0 or more"):
        SegmentResult((), 1.0, 3).top(-1)
