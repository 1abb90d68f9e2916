"""The synthetic market and its scenarios: the raw file's schema, a realistic spread of dates, and changes that
start when they are told to and touch only what they are said to touch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forwardlab.monitor.data import RAW_COLUMNS, TRAIN_END, prepare
from forwardlab.monitor.errors import DataError
from forwardlab.monitor.features import HOUSE
from forwardlab.monitor.market import NEW_ZIPCODES, ZIPCODES, Change, generate_market
from forwardlab.monitor.scenarios import DEFAULT_SCENARIO, ONSET, SCENARIOS, get_scenario
from forwardlab.monitor.schemas import HouseFeatures

ROWS = 150  # a month's sales: small, the statistics below still hold


@pytest.fixture(scope="module")
def calm() -> pd.DataFrame:
    return generate_market(rows_per_month=ROWS, seed=3)


def sold(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["date"], format="%Y%m%dT%H%M%S")


def test_the_market_has_the_raw_files_columns_and_goes_through_prepare(calm: pd.DataFrame) -> None:
    assert list(calm.columns) == RAW_COLUMNS
    assert calm["id"].is_unique and calm["id"].str.fullmatch(r"\d{10}").all()
    assert set(calm["zipcode"]) <= set(ZIPCODES)
    prepared = prepare(calm)
    assert prepared.train["date_sold"].max() <= TRAIN_END < prepared.prod["date_sold"].min()
    months = prepared.prod["date_sold"].dt.to_period("M").astype(str)
    assert sorted(months.unique()) == [str(m) for m in pd.period_range("2014-11", "2015-10", freq="M")]
    for record in prepared.prod[list(HOUSE.names)].head(200).to_dict("records"):
        HouseFeatures.model_validate(record | {"zipcode": str(record["zipcode"])})  # the service accepts them


def test_dates_spread_like_the_real_sales(calm: pd.DataFrame) -> None:
    dates = sold(calm)
    assert (dates.dt.dayofweek >= 5).mean() < 0.05  # almost no weekend sales
    per_month = dates.dt.to_period("M").value_counts()
    assert per_month[pd.Period("2015-06")] > 1.4 * per_month[pd.Period("2014-12")]  # spring peak, winter trough


def test_changes_start_at_their_onset_and_touch_only_their_kind(calm: pd.DataFrame) -> None:
    onset = pd.Timestamp("2015-03-01")
    after = (sold(calm) >= onset).to_numpy()
    inflated = generate_market([Change("price-inflation", 0.25, onset)], rows_per_month=ROWS, seed=3)
    features = [c for c in RAW_COLUMNS if c != "price"]
    pd.testing.assert_frame_equal(inflated[features], calm[features])  # same houses, same days
    ratio = (inflated["price"] / calm["price"]).to_numpy()
    assert np.allclose(ratio[~after], 1.0) and np.allclose(ratio[after], 1.25, atol=0.002)

    larger = generate_market([Change("larger-houses", 0.3, onset)], rows_per_month=ROWS, seed=3)
    growth = larger["sqft_living"].median() / calm["sqft_living"].median()
    before_growth = larger.loc[~after, "sqft_living"].mean() / calm.loc[~after, "sqft_living"].mean()
    after_growth = larger.loc[after, "sqft_living"].mean() / calm.loc[after, "sqft_living"].mean()
    assert before_growth == pytest.approx(1.0, abs=0.002) and after_growth == pytest.approx(1.3, abs=0.03)
    assert growth > 1.0

    moved = generate_market([Change("new-zipcodes", 0.25, onset)], rows_per_month=ROWS, seed=3)
    new = moved["zipcode"].isin(NEW_ZIPCODES).to_numpy()
    assert not new[~after].any() and new[after].mean() == pytest.approx(0.25, abs=0.03)


def test_decoupled_rooms_change_only_room_counts_and_only_their_link_to_size(calm: pd.DataFrame) -> None:
    onset = pd.Timestamp("2015-03-01")
    after = (sold(calm) >= onset).to_numpy()
    decoupled = generate_market([Change("rooms-decoupled", 0.7, onset)], rows_per_month=ROWS, seed=3)
    rooms = ["bedrooms", "bathrooms"]
    others = [c for c in RAW_COLUMNS if c not in rooms]
    pd.testing.assert_frame_equal(decoupled[others], calm[others])  # prices too: rooms are not in the pricing
    pd.testing.assert_frame_equal(decoupled.loc[~after, rooms], calm.loc[~after, rooms])
    changed = (decoupled.loc[after, rooms] != calm.loc[after, rooms]).any(axis=1).mean()
    assert changed > 0.5
    before = calm.loc[after, "sqft_living"].corr(calm.loc[after, "bedrooms"], method="spearman")
    then = decoupled.loc[after, "sqft_living"].corr(decoupled.loc[after, "bedrooms"], method="spearman")
    assert before > 0.7 and then < before - 0.3
    with pytest.raises(DataError, match=r"rooms decoupled by 1\.5: must be from 0"):
        generate_market([Change("rooms-decoupled", 1.5, onset)], rows_per_month=ROWS)


def test_a_gradual_change_ramps_month_by_month() -> None:
    change = Change("larger-houses", 0.3, pd.Timestamp("2015-03-01"), ramp_months=6)
    days = pd.DatetimeIndex(["2015-02-27", "2015-03-01", "2015-03-30", "2015-05-15", "2015-08-20", "2015-12-01"])
    assert change.strength(days) == pytest.approx([0, 1 / 6, 1 / 6, 3 / 6, 1, 1])
    assert Change("larger-houses", 0.3, pd.Timestamp("2015-03-01")).strength(days) == pytest.approx([0, 1, 1, 1, 1, 1])


def test_scenarios_share_the_market_and_name_their_onset() -> None:
    assert get_scenario("synthetic") is SCENARIOS[DEFAULT_SCENARIO]
    assert get_scenario("no-drift").onset is None
    assert {s.onset for s in SCENARIOS.values() if s.changes} == {ONSET}
    with pytest.raises(DataError, match=r"scenario 'bigger': unknown \(known: synthetic, no-drift, "):
        get_scenario("bigger")
    with pytest.raises(DataError, match="rows per month 0"):
        generate_market(rows_per_month=0)
