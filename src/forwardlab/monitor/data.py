"""King County house sales: fetch, verify, simulate listing dates and split into training and production.

The split reproduces the Continuous Model Monitoring prototype, so results can be compared with it:
duplicate ids dropped (first kept); `date_listed` is `date_sold` minus a seeded random 0-59 days (the
legacy NumPy generator, so seed 42 gives the prototype's exact dates); prices beyond 3 IQR from the
quartiles dropped; training = sold up to 2014-10-31 inclusive; production = sold after that and before
the first day of the last, partial month.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forwardlab.download import cache_dir, fetch, sha256_file
from forwardlab.fileio import atomic_path, write_text_atomic
from forwardlab.monitor.errors import DataError
from forwardlab.monitor.features import HOUSE
from forwardlab.progress import Advance

DATA_URL = (
    "https://raw.githubusercontent.com/cloudera/CML_AMP_Continuous_Model_Monitoring/master/data/raw/kc_house_data.csv"
)
DATA_SHA256 = "d0875baa0251b21d4bdc9d2ae940a4fe0bb6009824f23dd0e2a5b2bf04557b7e"
TRAIN_END = pd.Timestamp("2014-10-31")
OUTLIER_IQR_MULTIPLE = 3.0
MAX_LISTING_DAYS = 60
DEFAULT_SEED = 42

# The raw file's columns, in the prototype's order; `date` becomes `date_sold` and `date_listed`.
RAW_COLUMNS = [
    "id",
    "date",
    "price",
    "bedrooms",
    "bathrooms",
    "sqft_living",
    "sqft_lot",
    "floors",
    "waterfront",
    "view",
    "condition",
    "grade",
    "sqft_above",
    "sqft_basement",
    "yr_built",
    "yr_renovated",
    "zipcode",
    "lat",
    "long",
    "sqft_living15",
    "sqft_lot15",
]
# Identifiers stay strings: ids and zip codes (the string-typed features) are labels, not numbers (leading
# zeros, no arithmetic).
STRING_COLUMNS = dict.fromkeys(("id", *HOUSE.strings), str)
DATE_COLUMNS = ["date_sold", "date_listed"]
TRAIN_FILE, PROD_FILE, SUMMARY_FILE = "train.csv", "prod.csv", "summary.json"


@dataclass(frozen=True)
class PrepareSummary:
    """What `prepare` kept and dropped, written beside the data as summary.json."""

    source_sha256: str
    seed: int
    rows_raw: int
    duplicates_dropped: int
    outliers_dropped: int
    price_lower_usd: float
    price_upper_usd: float
    rows_train: int
    rows_prod: int
    rows_after_last_full_month: int
    train_sold_from: str
    train_sold_to: str
    prod_sold_from: str
    prod_sold_to: str


@dataclass(frozen=True)
class PreparedData:
    train: pd.DataFrame
    prod: pd.DataFrame
    summary: PrepareSummary


def fetch_raw(path: str | Path | None = None, *, url: str = DATA_URL, progress: Advance | None = None) -> Path:
    """Return a local copy of the raw CSV: `path` as given, else the cache, downloading it when missing.

    A download is verified against the published sha256 before it replaces anything in the cache, so
    the cache never holds a damaged or substituted file. A given path is the user's choice and is not
    checked against the hash (its hash is recorded in the summary instead).
    """
    if path is not None:
        given = Path(path)
        if not given.is_file():
            raise DataError(f"{given}: file does not exist")
        return given
    return fetch(url, cache_dir() / "monitor" / "kc_house_data.csv", sha256=DATA_SHA256, progress=progress)


def load_raw(path: str | Path) -> pd.DataFrame:
    """Read the raw CSV with ids and zip codes as strings; a missing column is a `DataError`."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=STRING_COLUMNS)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not a readable CSV: {exc}") from exc
    missing = [c for c in RAW_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    return df[RAW_COLUMNS]


def prepare(raw: pd.DataFrame, *, seed: int = DEFAULT_SEED, source_sha256: str = "") -> PreparedData:
    """Apply the prototype's cleaning, listing-date simulation and time split to the raw frame."""
    rows_raw = len(raw)
    df = raw.drop_duplicates(subset=["id"], keep="first").copy()
    duplicates = rows_raw - len(df)
    try:
        df["date_sold"] = pd.to_datetime(df["date"], format="%Y%m%dT%H%M%S")
    except ValueError as exc:
        raise DataError(f"column date: not in the YYYYMMDDTHHMMSS form: {exc}") from exc
    offsets_days = np.random.RandomState(seed).randint(0, MAX_LISTING_DAYS, size=len(df))
    df["date_listed"] = df["date_sold"] - pd.to_timedelta(offsets_days, unit="D")
    df = df.drop(columns=["date"]).sort_values("date_listed", kind="stable").reset_index(drop=True)

    q1, q3 = df["price"].quantile(0.25), df["price"].quantile(0.75)
    lower = q1 - OUTLIER_IQR_MULTIPLE * (q3 - q1)
    upper = q3 + OUTLIER_IQR_MULTIPLE * (q3 - q1)
    kept = df[df["price"].between(lower, upper, inclusive="both")]
    outliers = len(df) - len(kept)

    # The last month is partial in the raw data; production stops at its first day (exclusive).
    prod_end = kept["date_sold"].max().to_period("M").to_timestamp()
    train = kept[kept["date_sold"] <= TRAIN_END].sort_values("date_sold", kind="stable")
    prod = kept[(kept["date_sold"] > TRAIN_END) & (kept["date_sold"] < prod_end)].sort_values(
        "date_sold", kind="stable"
    )
    if train.empty or prod.empty:
        raise DataError(
            f"the split leaves {len(train)} training and {len(prod)} production rows; "
            f"sales must fall on both sides of {TRAIN_END.date()}"
        )
    summary = PrepareSummary(
        source_sha256=source_sha256,
        seed=seed,
        rows_raw=rows_raw,
        duplicates_dropped=duplicates,
        outliers_dropped=outliers,
        price_lower_usd=float(lower),
        price_upper_usd=float(upper),
        rows_train=len(train),
        rows_prod=len(prod),
        rows_after_last_full_month=int((kept["date_sold"] >= prod_end).sum()),
        train_sold_from=str(train["date_sold"].min().date()),
        train_sold_to=str(train["date_sold"].max().date()),
        prod_sold_from=str(prod["date_sold"].min().date()),
        prod_sold_to=str(prod["date_sold"].max().date()),
    )
    return PreparedData(train.reset_index(drop=True), prod.reset_index(drop=True), summary)


def write_prepared(data: PreparedData, out_dir: str | Path) -> Path:
    """Write train.csv, prod.csv and summary.json atomically into `out_dir`; return the summary path."""
    out = Path(out_dir)
    for name, frame in ((TRAIN_FILE, data.train), (PROD_FILE, data.prod)):
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%d")
    summary_path = out / SUMMARY_FILE
    write_text_atomic(summary_path, json.dumps(asdict(data.summary), indent=2) + "\n")
    return summary_path


def read_split(data_dir: str | Path, name: str = "train") -> pd.DataFrame:
    """Read back `train` or `prod` as written by `write_prepared`, with the same column types."""
    path = Path(data_dir) / f"{name}.csv"
    if not path.is_file():
        raise DataError(f"{path}: file does not exist (run `forwardlab monitor prepare` first)")
    try:
        return pd.read_csv(path, dtype=STRING_COLUMNS, parse_dates=DATE_COLUMNS)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not a readable prepared split: {exc}") from exc


def prepare_files(
    data: str | Path | None,
    out_dir: str | Path,
    *,
    seed: int = DEFAULT_SEED,
    progress: Advance | None = None,
) -> PrepareSummary:
    """The `prepare` command as a function: fetch (or read) the raw CSV, prepare, write, summarise."""
    raw_path = fetch_raw(data, progress=progress)
    prepared = prepare(load_raw(raw_path), seed=seed, source_sha256=sha256_file(raw_path))
    write_prepared(prepared, out_dir)
    return prepared.summary
