"""A synthetic King County housing market: sales in the schema of kc_house_data.csv, with known changes injected.

Why it exists: the real sales carry no known drift, so a monitor's detection delay and false alarms cannot be
measured on them. Here the truth is known (what changed, from which sale date, how fast), and the rows have
every column of the raw file, so they go through the same `data.prepare` (duplicates, listing dates, outliers,
training/production split) and the same model as the real data. Nothing is downloaded: demos and tests run
offline.

The market is stationary unless told otherwise. Sales run from 2014-05-01 to 2015-11-15, so the training
period (to 2014-10-31) matches the real data's and production has twelve full months (the partial last month
is dropped by `prepare`, as the real file's May 2015 is). Sales fall on weekdays mostly, with a spring peak,
as in the real data; about 1,200 a month (the real file's size over its 13 months). Houses: lognormal living
area, with bedrooms, bathrooms, grade and basement following it; lognormal lots; 70 zip codes (the real
ones) with seeded popularity, price level and location. Price: log-linear in living area and lot, plus zip,
waterfront, view, condition and grade effects and 17% noise, which leaves the model an error like the
real data's.

Changes (`Change`), each with a strength of 0 before its onset, then 1 (sudden) or rising linearly over
`ramp_months`:
- `larger-houses`: living area (and with it bedrooms, bathrooms, grade) grows by `size` (0.3: +30%); prices
  follow the same pricing, so the model stays right: covariate shift without concept drift;
- `new-zipcodes`: a share `size` of sales is in zip codes the model never saw (Snohomish County's);
- `price-inflation`: prices rise by `size` with the houses unchanged: concept drift the features cannot show;
- `rooms-decoupled`: bedroom and bathroom counts follow living area less closely: they are drawn from a
  size whose correlation with the house's own falls from 1 by `size` (Gaussian copula: that size has the
  living area's distribution, so every column keeps its distribution and only how they go together
  changes). Prices do not depend on room counts, so they are unchanged; a model that reads size partly from
  room counts loses accuracy all the same. Of the label-free checks, only a multivariate one can see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from forwardlab.monitor.data import RAW_COLUMNS
from forwardlab.monitor.errors import DataError

START, END = pd.Timestamp("2014-05-01"), pd.Timestamp("2015-11-15")
ROWS_PER_MONTH = 1200
DAYS_PER_MONTH = 365.25 / 12
# fmt: off
ZIPCODES = (  # the 70 of the King County file
    "98001", "98002", "98003", "98004", "98005", "98006", "98007", "98008", "98010", "98011",
    "98014", "98019", "98022", "98023", "98024", "98027", "98028", "98029", "98030", "98031",
    "98032", "98033", "98034", "98038", "98039", "98040", "98042", "98045", "98052", "98053",
    "98055", "98056", "98058", "98059", "98065", "98070", "98072", "98074", "98075", "98077",
    "98092", "98102", "98103", "98105", "98106", "98107", "98108", "98109", "98112", "98115",
    "98116", "98117", "98118", "98119", "98122", "98125", "98126", "98133", "98136", "98144",
    "98146", "98148", "98155", "98166", "98168", "98177", "98178", "98188", "98198", "98199",
)
# fmt: on
NEW_ZIPCODES = ("98012", "98021", "98036", "98037", "98087", "98208")  # never in the King County file
MEDIAN_SQFT, MEDIAN_LOT_SQFT, MEDIAN_PRICE_USD = 1900.0, 7600.0, 450_000.0
ChangeKind = Literal["larger-houses", "new-zipcodes", "price-inflation", "rooms-decoupled"]


@dataclass(frozen=True)
class Change:
    """One injected change: its kind, its size at full strength, from which sale date, and how fast."""

    kind: ChangeKind
    size: float
    onset: pd.Timestamp
    ramp_months: float = 0.0

    def strength(self, sold: pd.DatetimeIndex) -> np.ndarray:
        """0 before the onset; from it, 1 (sudden) or the fraction of the ramp elapsed (gradual)."""
        months = np.asarray((sold - self.onset) / pd.Timedelta(days=DAYS_PER_MONTH), dtype=float)
        if self.ramp_months <= 0:
            return (months >= 0).astype(float)
        # The ramp counts whole months, so every sale of a month shares one strength: a month is one window.
        return np.clip((np.floor(months) + 1) / self.ramp_months, 0.0, 1.0) * (months >= 0)


def generate_market(
    changes: Sequence[Change] = (),
    *,
    rows_per_month: int = ROWS_PER_MONTH,
    seed: int = 0,
    start: pd.Timestamp = START,
    end: pd.Timestamp = END,
) -> pd.DataFrame:
    """Sales from `start` to `end` (inclusive) in kc_house_data.csv's columns, ids and zip codes as strings."""
    if rows_per_month < 1:
        raise DataError(f"rows per month {rows_per_month}: must be at least 1")
    if end < start:
        raise DataError(f"market from {start.date()} to {end.date()}: the end is before the start")
    rng = np.random.default_rng(seed)
    zips = _zipcodes(np.random.default_rng(seed + 1))
    sold = _sale_dates(rng, start, end, rows_per_month)
    n = len(sold)

    def strength(kind: ChangeKind) -> np.ndarray:
        total = np.zeros(n)
        for change in changes:
            if change.kind == kind:
                total += change.size * change.strength(sold)
        return total

    known = rng.choice(len(ZIPCODES), size=n, p=zips.popularity[: len(ZIPCODES)])
    newcomer = len(ZIPCODES) + rng.integers(0, len(NEW_ZIPCODES), size=n)
    zip_index = np.where(rng.random(n) < strength("new-zipcodes"), newcomer, known)

    size_z = rng.standard_normal(n)  # the draw behind living area
    sqft = _living_area(size_z, strength("larger-houses"))
    # Rooms follow a size draw correlated with the house's own (1 unless `rooms-decoupled`), so their counts
    # keep their distribution whatever the correlation. Its other part has a seed of its own: the main
    # stream, and with it every other scenario, stays as it was.
    decoupled = strength("rooms-decoupled")
    if decoupled.size and not 0 <= decoupled.min() <= decoupled.max() <= 1:
        worst = decoupled.max() if decoupled.max() > 1 else decoupled.min()
        raise DataError(f"rooms decoupled by {worst:g}: must be from 0 (as before) to 1 (independent of size)")
    coupling = 1 - decoupled
    other_z = np.random.default_rng(seed + 2).standard_normal(n)
    rooms_sqft = _living_area(coupling * size_z + np.sqrt(1 - coupling**2) * other_z, strength("larger-houses"))
    bedrooms = np.clip(np.round(0.9 + rooms_sqft / 800 + rng.normal(0, 0.6, n)), 1, 9)
    bathrooms = np.clip(np.round((0.3 + rooms_sqft / 1000 + rng.normal(0, 0.35, n)) * 4) / 4, 0.75, 6.0)
    floors = rng.choice([1.0, 1.5, 2.0, 2.5, 3.0], size=n, p=[0.49, 0.09, 0.38, 0.01, 0.03])
    basement = np.where(rng.random(n) < 0.39, np.round(sqft * rng.uniform(0.2, 0.5, n), -1), 0.0)
    lot = np.round(np.clip(np.exp(rng.normal(np.log(MEDIAN_LOT_SQFT), 0.7, n)), 520, 1_600_000))
    waterfront = (rng.random(n) < 0.0075).astype(int)
    view = np.where(waterfront == 1, 4, rng.choice(5, size=n, p=[0.9, 0.015, 0.045, 0.025, 0.015]))
    condition = rng.choice([1, 2, 3, 4, 5], size=n, p=[0.0015, 0.008, 0.649, 0.263, 0.0785])
    grade = np.clip(np.round(7.6 + 1.7 * np.log(sqft / MEDIAN_SQFT) + rng.normal(0, 0.6, n)), 3, 13)
    yr_built = np.clip(np.round(2015 - np.exp(rng.normal(np.log(40), 0.6, n))), 1900, 2015)
    renovated = (rng.random(n) < 0.04) & (yr_built < 2000)
    yr_renovated = np.where(renovated, np.round(yr_built + 10 + rng.random(n) * np.maximum(2005 - yr_built, 0)), 0)

    log10_price = (
        np.log10(MEDIAN_PRICE_USD)
        + 0.85 * np.log10(sqft / MEDIAN_SQFT)
        + 0.06 * np.log10(lot / MEDIAN_LOT_SQFT)
        + zips.log10_level[zip_index]
        + 0.3 * waterfront
        + 0.04 * view
        + 0.03 * (condition - 3)
        + 0.03 * (grade - 7.6)
        + rng.normal(0, 0.07, n)
    )
    price = np.round(10**log10_price * (1 + strength("price-inflation")), -2)

    frame = pd.DataFrame(
        {
            "id": (rng.choice(8_999_000_000, size=n, replace=False) + 1_000_000_000).astype(str),
            "date": sold.strftime("%Y%m%dT000000"),
            "price": price,
            "bedrooms": bedrooms.astype(int),
            "bathrooms": bathrooms,
            "sqft_living": sqft.astype(int),
            "sqft_lot": lot.astype(int),
            "floors": floors,
            "waterfront": waterfront,
            "view": view.astype(int),
            "condition": condition,
            "grade": grade.astype(int),
            "sqft_above": (sqft - basement).astype(int),
            "sqft_basement": basement.astype(int),
            "yr_built": yr_built.astype(int),
            "yr_renovated": yr_renovated.astype(int),
            "zipcode": np.asarray(zips.codes)[zip_index],
            "lat": np.round(zips.lat[zip_index] + rng.normal(0, 0.02, n), 4),
            "long": np.round(zips.long[zip_index] + rng.normal(0, 0.02, n), 3),
            "sqft_living15": np.round(np.clip(0.6 * sqft + 800 + rng.normal(0, 200, n), 400, 6500)).astype(int),
            "sqft_lot15": np.round(lot * np.exp(rng.normal(0, 0.3, n))).astype(int),
        }
    )
    return frame[RAW_COLUMNS]


def _living_area(z: np.ndarray, growth: np.ndarray) -> np.ndarray:
    """Living area, sqft, from a standard-normal draw: lognormal around the median, grown by `growth`."""
    return np.round(np.clip(np.exp(np.log(MEDIAN_SQFT) + np.log1p(growth) + 0.4 * z), 370, 12_000), -1)


@dataclass(frozen=True)
class _Zipcodes:
    codes: tuple[str, ...]
    popularity: np.ndarray  # share of the known zip codes' sales (the new ones have none)
    log10_level: np.ndarray
    lat: np.ndarray
    long: np.ndarray


def _zipcodes(rng: np.random.Generator) -> _Zipcodes:
    """Per zip code: how popular, how expensive, where. Drawn from their own seed so every scenario shares them."""
    codes = ZIPCODES + NEW_ZIPCODES
    popularity = rng.dirichlet(np.full(len(ZIPCODES), 4.0))
    return _Zipcodes(
        codes,
        np.concatenate([popularity, np.zeros(len(NEW_ZIPCODES))]),
        rng.normal(0, 0.12, len(codes)),
        rng.uniform(47.16, 47.77, len(codes)),
        rng.uniform(-122.5, -121.32, len(codes)),
    )


def _sale_dates(
    rng: np.random.Generator, start: pd.Timestamp, end: pd.Timestamp, rows_per_month: int
) -> pd.DatetimeIndex:
    """Sale days weighted like the real file's: weekends rare, most sales in late spring, fewest in winter."""
    days = pd.date_range(start, end, freq="D")
    weekday = np.where(days.dayofweek < 5, 1.0, 0.06)
    season = 1 + 0.3 * np.cos(2 * np.pi * (days.dayofyear.to_numpy() - 165) / 365.25)
    weights = weekday * season
    n = max(1, round(rows_per_month * len(days) / DAYS_PER_MONTH))
    return pd.DatetimeIndex(np.sort(rng.choice(days.to_numpy(), size=n, p=weights / weights.sum())))
