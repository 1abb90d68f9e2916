"""Our drift verdicts against Evidently 0.7 on identical frames.

Both sides get the same two frames and settings; Evidently runs its public DataDriftPreset in a Report.
For every column we compare the test (Evidently names the one it chose by display name, an overridden one
by key), the threshold, the score (within 1e-9) and the drift flag, then the number and share of drifted
columns and the dataset verdict. Cases cover small (< 1,000 rows: K-S, chi-square, Z) and large references
(Wasserstein, Jensen-Shannon), numerical and categorical columns (binary and multi-class, numbers and
strings, a category only in current), missing and infinite values, and per-column overrides including PSI
on both column kinds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

from forwardlab.monitor.data import PreparedData
from forwardlab.monitor.drift.calculator import DriftResult, compare
from forwardlab.monitor.drift.config import drift_config
from forwardlab.monitor.features import HOUSE

NUMERICAL = ["amount", "rounded", "few", "pair"]
CATEGORICAL = ["flag", "colour", "zip", "level"]
TOLERANCE = 1e-9


def synthetic(n: int, *, seed: int, shift: float = 0.0, new_zips: int = 0) -> pd.DataFrame:
    """Columns of every kind the selection rules tell apart; `shift` moves some of them."""
    rng = np.random.default_rng(seed)
    zips = [f"98{i:03d}" for i in range(60 + new_zips)]
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(7 + shift, 0.4, n),  # continuous, > 20 distinct: histograms for PSI/JS
            "rounded": rng.normal(shift, 1, n).round(1),  # many ties
            "few": rng.choice([1.0, 1.5, 2.0, 3.0], n, p=[0.4 - shift, 0.3, 0.2, 0.1 + shift]),  # 4 values
            "pair": rng.choice([0.0, 1.0], n, p=[0.7 + shift, 0.3 - shift]),  # 2 values
            "flag": rng.integers(0, 2, n),  # binary, numbers
            "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3 + shift, 0.2 - shift]),
            "zip": rng.choice(zips, n),  # multi-class strings; `new_zips` exist only on this side
            "level": rng.integers(0, 25, n),  # multi-class numbers
        }
    )
    frame.loc[rng.random(n) < 0.03, "amount"] = np.nan
    # Infinities only beside NaN: Evidently's dataset-level path drops them only in columns that also
    # hold NaN (its per-column path always does, as we do), so elsewhere its two paths disagree.
    frame.loc[rng.random(n) < 0.01, "amount"] = np.inf
    frame.loc[rng.random(n) < 0.04, "colour"] = None
    return frame


def evidently_verdicts(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    overrides: dict[str, dict[str, Any]],
    drift_share: float = 0.5,
) -> tuple[dict[str, dict[str, Any]], int, float, bool]:
    """Per column {test, threshold, score, drift}, then drifted count, share and dataset drift, per Evidently."""
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    methods = {c: o["test"] for c, o in overrides.items() if "test" in o}
    thresholds = {c: o["threshold"] for c, o in overrides.items() if "threshold" in o}
    preset = DataDriftPreset(
        columns=numerical + categorical,
        drift_share=drift_share,
        per_column_method=methods or None,
        per_column_threshold=thresholds or None,
    )
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    result = snapshot.dict()
    failed = {t["name"]: t["status"] == "FAIL" for t in result["tests"]}
    columns, count = {}, None
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            column = config["column"]
            columns[column] = {
                "test": config["method"],
                "threshold": config["threshold"],
                "score": metric["value"],
                "drift": failed[f"Value Drift for column {column}"],
            }
        elif config["type"].endswith(":DriftedColumnsCount"):
            count = metric["value"]
    assert count is not None
    dataset_drift = next(v for name, v in failed.items() if name.startswith("Share of Drifted Columns"))
    return columns, int(count["count"]), float(count["share"]), dataset_drift


def assert_same_verdicts(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    overrides: dict[str, dict[str, Any]],
) -> DriftResult:
    ours = compare(reference, current, drift_config(numerical=numerical, categorical=categorical, overrides=overrides))
    theirs, count, share, dataset_drift = evidently_verdicts(reference, current, numerical, categorical, overrides)
    assert set(theirs) == {c.column for c in ours.columns}
    for column in ours.columns:
        expected = theirs[column.column]
        where = f"column {column.column}: ours {column}, Evidently {expected}"
        # Evidently reports the test it chose by display name, and one you chose by the key you gave
        chosen = "test" in overrides.get(column.column, {})
        assert expected["test"] == (column.test if chosen else column.test_name), where
        assert expected["threshold"] == column.threshold, where
        assert column.score is not None and abs(expected["score"] - column.score) <= TOLERANCE, where
        assert expected["drift"] is column.drift, where
    assert (ours.drifted_columns, ours.dataset_drift) == (count, dataset_drift)
    assert ours.drift_share == pytest.approx(share, abs=0)
    return ours


CASES = [
    pytest.param(600, 300, {}, {"ks", "chisquare", "z"}, id="small-defaults"),
    pytest.param(5000, 2000, {}, {"wasserstein", "jensenshannon"}, id="large-defaults"),
    pytest.param(
        800,
        400,
        {
            "amount": {"test": "psi"},
            "rounded": {"test": "jensenshannon", "threshold": 0.05},
            "zip": {"test": "psi", "threshold": 0.2},
            "level": {"test": "z"},
            "flag": {"test": "chisquare"},
            "few": {"threshold": 0.2},
        },
        {"psi", "jensenshannon", "z", "chisquare"},
        id="small-overrides",
    ),
    pytest.param(
        3000,
        2500,
        {
            "amount": {"test": "ks", "threshold": 0.01},
            "rounded": {"test": "psi"},
            "few": {"test": "wasserstein", "threshold": 0.05},
            "colour": {"test": "psi", "threshold": 0.01},
            "level": {"test": "chisquare", "threshold": 0.01},
            "pair": {"test": "psi"},
        },
        {"ks", "psi", "wasserstein", "chisquare", "jensenshannon"},
        id="large-overrides",
    ),
]


@pytest.mark.parametrize(("n_reference", "n_current", "overrides", "tests_used"), CASES)
def test_verdicts_equal_evidentlys(
    n_reference: int, n_current: int, overrides: dict[str, dict[str, Any]], tests_used: set[str]
) -> None:
    reference = synthetic(n_reference, seed=n_reference)
    current = synthetic(n_current, seed=n_current + 1, shift=0.05, new_zips=3)
    ours = assert_same_verdicts(reference, current, NUMERICAL, CATEGORICAL, overrides)
    assert {c.test for c in ours.columns} == tests_used  # the case exercises what its name says
    assert any(c.drift for c in ours.columns) and not all(c.drift for c in ours.columns)
    assert ours.column("zip").new_categories == ("98060", "98061", "98062")


def test_verdicts_equal_evidentlys_on_the_house_data(prepared: PreparedData) -> None:
    """The real features: training sales against production months, and a small sample against a month."""
    numerical, categorical = list(HOUSE.numerical), list(HOUSE.categorical)
    sold = prepared.prod["date_sold"]
    for month in ("2015-01", "2015-04"):
        current = prepared.prod[sold.dt.strftime("%Y-%m") == month]
        assert_same_verdicts(prepared.train, current, numerical, categorical, {})
    small = prepared.train.sample(n=900, random_state=1)
    current = prepared.prod[sold.dt.strftime("%Y-%m") == "2015-02"]
    ours = assert_same_verdicts(small, current, numerical, categorical, {"zipcode": {"test": "psi"}})
    assert ours.column("sqft_living").test == "ks" and ours.column("waterfront").test == "z"
