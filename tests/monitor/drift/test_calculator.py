"""The drift engine's own behaviour: test selection at the boundaries, binning, reuse of the reference's
statistics, and bad input (missing columns, wrong types, empty and tiny data, new categories)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from evidently.legacy.calculations.stattests import get_stattest as evidently_get_stattest
from evidently.legacy.core import ColumnType

from forwardlab.monitor.drift.calculator import DriftCalculator, compare
from forwardlab.monitor.drift.config import drift_config
from forwardlab.monitor.drift.stats import numerical_stats
from forwardlab.monitor.drift.stattests import default_test, sturges_edges
from forwardlab.monitor.errors import FrameError


def frame(n: int, *, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "size": rng.normal(100 + shift, 10, n),
            "rooms": rng.integers(1, 6, n),
            "zip": rng.choice(["98001", "98002", "98003"], n),
        }
    )


CONFIG = drift_config(numerical=["size"], categorical=["rooms", "zip"])


@pytest.mark.parametrize("kind", ["numerical", "categorical"])
@pytest.mark.parametrize("n_reference", [999, 1000, 1001])
@pytest.mark.parametrize("n_unique", [1, 2, 3, 5, 6, 40])
def test_default_test_is_evidentlys_at_every_boundary(kind: str, n_reference: int, n_unique: int) -> None:
    """Reference size 1,000 and 2/5 distinct values (both sides together) switch tests; ask Evidently itself."""
    reference = pd.Series(np.arange(n_reference) % max(n_unique - 1, 1), dtype=float)
    current = pd.Series([float(n_unique - 1)] * 50)  # the last distinct value appears only in current
    assert pd.concat([reference, current]).nunique() == n_unique
    column_type = ColumnType.Numerical if kind == "numerical" else ColumnType.Categorical
    expected = evidently_get_stattest(reference, current, column_type, None)
    assert default_test(kind, n_reference, n_unique).key == expected.name  # type: ignore[arg-type]


def test_sturges_edges_and_counts_equal_numpys() -> None:
    rng = np.random.default_rng(3)
    for values in (rng.normal(0, 1, 5001), rng.integers(-40, 900, 777).astype(float), rng.lognormal(3, 2, 64)):
        edges = sturges_edges(values.min(), values.max(), values.size)
        np.testing.assert_array_equal(edges, np.histogram_bin_edges(values, bins="sturges"))


def test_psi_and_jensenshannon_histograms_count_like_numpy() -> None:
    """Binned scores from the distinct-value summaries equal the same formulas on np.histogram counts."""
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 3000).round(2)})
    current = pd.DataFrame({"x": rng.normal(0.2, 1.1, 2000).round(2)})
    combined = np.concatenate([reference["x"], current["x"]])
    edges = np.histogram_bin_edges(combined, bins="sturges")
    ref_shares = np.histogram(reference["x"], edges)[0] / len(reference)
    cur_shares = np.histogram(current["x"], edges)[0] / len(current)
    js = np.sqrt(
        0.5 * sum(p * np.log(p / m) for p, m in zip(ref_shares, (ref_shares + cur_shares) / 2, strict=True) if p)
        + 0.5 * sum(q * np.log(q / m) for q, m in zip(cur_shares, (ref_shares + cur_shares) / 2, strict=True) if q)
    )
    config = drift_config(numerical=["x"], overrides={"x": {"test": "jensenshannon"}})
    assert compare(reference, current, config).column("x").score == pytest.approx(js, abs=1e-12)


def test_numerical_summaries_drop_missing_and_infinite_values() -> None:
    data = pd.DataFrame({"a": [3.0, np.nan, 1.0, np.inf, 3.0, -np.inf], "b": [1, 2, 2, 2, 5, 5]})
    stats = numerical_stats(data, ["a", "b"])
    np.testing.assert_array_equal(stats["a"].keys, [1.0, 3.0])
    np.testing.assert_array_equal(stats["a"].counts, [1, 2])
    assert (stats["a"].n, stats["a"].n_missing) == (3, 3)
    assert stats["b"].std == pytest.approx(np.std([1, 2, 2, 2, 5, 5]))


def test_a_fitted_reference_is_summarised_once_and_reused() -> None:
    """After fit the calculator needs only its summaries: emptying the reference frame changes nothing."""
    reference = frame(4000)
    windows = [frame(500, seed=seed, shift=shift) for seed, shift in ((1, 0), (2, 3), (3, 6))]
    expected = [compare(reference, w, CONFIG) for w in windows]
    calculator = DriftCalculator(CONFIG).fit(reference)
    reference.loc[:, :] = np.nan
    assert [calculator.calculate(w) for w in windows] == expected
    assert [r.column("size").drift for r in expected] == [False, True, True]


def test_columns_missing_from_either_side_are_named() -> None:
    with pytest.raises(FrameError, match=r"^reference: missing column\(s\) zip \(it has: size, rooms\)"):
        DriftCalculator(CONFIG).fit(frame(100).drop(columns="zip"))
    with pytest.raises(FrameError, match=r"^current: missing column\(s\) size, rooms"):
        compare(frame(100), frame(100)[["zip"]], CONFIG)


def test_mismatched_types_are_named() -> None:
    strings = frame(100).assign(size=lambda f: f["size"].astype(str))
    with pytest.raises(FrameError, match="current: column size must hold numbers but holds object values"):
        compare(frame(100), strings, CONFIG)
    numbers = frame(100).assign(zip=lambda f: f["zip"].astype(int))
    with pytest.raises(FrameError, match=r"column zip: the reference holds strings, the current numbers \(e.g. 980"):
        compare(frame(100), numbers, CONFIG)
    mixed = frame(100).astype({"zip": object})
    mixed.loc[:4, "zip"] = 98001  # as JSON records can mix them: an object column of strings and a few ints
    with pytest.raises(FrameError, match=r"column zip: the reference holds strings, the current numbers and strings"):
        compare(frame(100), mixed, CONFIG)
    assert compare(frame(100).astype({"rooms": float}), frame(100), CONFIG).column("rooms").new_categories == ()


def test_all_missing_columns_are_reported_not_tested() -> None:
    current = frame(200, seed=1).assign(size=np.nan, zip=None)
    result = compare(frame(500), current, CONFIG)
    assert result.status == "ok" and result.tested_columns == 1
    assert result.column("size").drift is None
    assert result.column("size").note == "current has no values (all missing); need at least 30 to test"
    assert result.column("zip").missing_current == 200
    reference = frame(500).assign(rooms=np.nan)
    assert compare(reference, frame(200), CONFIG).column("rooms").note.startswith("reference has no values")


def test_empty_and_tiny_windows_are_insufficient_data() -> None:
    calculator = DriftCalculator(CONFIG).fit(frame(500))
    for rows in (0, 1, 29):
        result = calculator.calculate(frame(500).head(rows))
        assert (result.status, result.drift_share, result.columns) == ("insufficient data", None, ())
        assert result.note == f"{rows} current rows, need at least 30"
    assert calculator.calculate(frame(30)).status == "ok"
    with pytest.raises(FrameError, match="reference: 10 rows, need at least 30"):
        DriftCalculator(CONFIG).fit(frame(10))


def test_new_categories_are_flagged_and_the_chi_square_artifact_explained() -> None:
    current = frame(300, seed=2)
    current.loc[:2, "zip"] = "99999"  # 3 rows of 300 in a zip code the reference never saw
    small = compare(frame(500), current, CONFIG).column("zip")
    assert (small.test, small.score, small.drift) == ("chisquare", 0.0, True)
    assert small.new_categories == ("99999",)
    assert "value(s) '99999' only in current: their expected count is 0" in (small.note or "")
    large = compare(frame(5000), current, CONFIG).column("zip")
    assert (large.test, large.drift, large.note) == ("jensenshannon", False, "new in current: value(s) '99999'")


def test_settings_are_validated_with_clear_messages() -> None:
    cases = [
        ({"numerical": ["a"], "overrides": {"a": {"test": "kl"}}}, "unknown test 'kl' (known: chisquare, "),
        ({"categorical": ["a"], "overrides": {"a": {"test": "ks"}}}, "column 'a' is categorical; test 'ks' takes"),
        ({"numerical": ["a"], "categorical": ["a"]}, "column(s) a listed twice"),
        ({"numerical": ["a"], "overrides": {"b": {"threshold": 0.1}}}, "override for column 'b', which is not"),
        ({"numerical": ["a"], "overrides": {"a": {"threshold": 0}}}, "threshold: Input should be greater than 0"),
        ({}, "no columns to compare"),
        ({"numerical": ["a"], "drift_share": 1.5}, "drift_share: Input should be less than or equal to 1"),
    ]
    for fields, message in cases:
        with pytest.raises(FrameError, match=r"^drift settings: ") as caught:
            drift_config(**fields)
        assert message in str(caught.value), (fields, str(caught.value))


def test_calculate_before_fit_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        DriftCalculator(CONFIG).calculate(frame(100))
