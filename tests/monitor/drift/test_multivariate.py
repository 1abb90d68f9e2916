"""Multivariate drift on the synthetic market: the correlation change that every per-column test misses is
caught by both methods, a covariate shift too, the no-drift control stays quiet; results keep the record
contract's keys; bad input is a FrameError naming the frame and column.

Windows are calendar months of sale (the market's changes start on a sale date, so no month mixes before and
after). The reference is the no-drift scenario's training period: every scenario shares it (they differ only
from the onset on, after training ends), so one fit serves all of them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forwardlab.monitor.data import prepare
from forwardlab.monitor.drift.calculator import DriftCalculator
from forwardlab.monitor.drift.config import drift_config
from forwardlab.monitor.drift.multivariate import DomainClassifierDrift, ReconstructionDrift
from forwardlab.monitor.errors import FrameError
from forwardlab.monitor.features import HOUSE
from forwardlab.monitor.market import Change, generate_market
from forwardlab.monitor.scenarios import ONSET, SCENARIOS

ROWS = 1000  # sales a month: the default market's 1,200 less a little, for speed; the verdicts hold
COLUMNS = {"numerical": HOUSE.numerical, "categorical": HOUSE.categorical}


def months(scenario: str) -> dict[str, pd.DataFrame]:
    prod = prepare(SCENARIOS[scenario].sales(rows_per_month=ROWS)).prod
    return {str(month): rows for month, rows in prod.groupby(prod["date_sold"].dt.to_period("M"))}


def after_onset(windows: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {month: rows for month, rows in windows.items() if month >= f"{ONSET:%Y-%m}"}


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return prepare(SCENARIOS["no-drift"].sales(rows_per_month=ROWS)).train


@pytest.fixture(scope="module")
def reconstruction(reference: pd.DataFrame) -> ReconstructionDrift:
    return ReconstructionDrift(**COLUMNS).fit(reference)


@pytest.fixture(scope="module")
def classifier(reference: pd.DataFrame) -> DomainClassifierDrift:
    return DomainClassifierDrift(**COLUMNS, seed=0).fit(reference)


def test_a_correlation_change_is_caught_by_both_methods_and_by_no_column(
    reference: pd.DataFrame, reconstruction: ReconstructionDrift, classifier: DomainClassifierDrift
) -> None:
    per_column = DriftCalculator(
        drift_config(**COLUMNS, overrides={c: dict(o) for c, o in HOUSE.drift_overrides.items()})
    ).fit(reference)
    windows = after_onset(months("correlation-change"))
    assert len(windows) == 8
    for month, rows in windows.items():
        columns = per_column.calculate(rows)
        assert columns.status == "ok" and columns.drifted_columns == 0, (month, columns.to_dict())
        pca, auc = reconstruction.calculate(rows), classifier.calculate(rows)
        assert pca.alert and pca.value is not None and pca.upper is not None and pca.value > pca.upper, month
        assert auc.alert and auc.value is not None and auc.upper is not None and auc.value > auc.upper, month


def test_the_no_drift_control_raises_no_alert(
    reconstruction: ReconstructionDrift, classifier: DomainClassifierDrift
) -> None:
    windows = months("no-drift")
    assert len(windows) == 12
    for month, rows in windows.items():
        pca, auc = reconstruction.calculate(rows), classifier.calculate(rows)
        assert pca.alert is False and auc.alert is False, (month, pca, auc)
        assert auc.value is not None and auc.value < 0.56  # nothing to tell apart: an AUC near 0.5


def test_a_covariate_shift_is_caught_by_the_classifier_from_its_first_month(
    reconstruction: ReconstructionDrift, classifier: DomainClassifierDrift
) -> None:
    """Larger houses move living area, rooms and all along the reference's first principal component: the
    rows still lie on PCA's subspace, so the reconstruction error does not rise (it falls a little; the
    per-column tests are the ones for such a shift); the classifier sees it at once."""
    windows = months("covariate-shift-sudden")
    first = windows[f"{ONSET:%Y-%m}"]
    assert classifier.calculate(first).alert
    pca = reconstruction.calculate(first)
    assert pca.value is not None and pca.lower is not None and pca.upper is not None
    assert pca.value < (pca.lower + pca.upper) / 2  # lower than usual: rows of a larger house fit as well
    before = windows[f"{ONSET - pd.DateOffset(months=1):%Y-%m}"]  # the same houses as the control's
    assert not classifier.calculate(before).alert


def test_the_correlation_change_keeps_every_columns_distribution() -> None:
    """Same distribution per column (two-sample K-S far from rejecting), a weaker link to size."""
    onset = pd.Timestamp("2015-03-01")
    calm = generate_market(rows_per_month=2000, seed=11)
    changed = generate_market([Change("rooms-decoupled", 0.7, onset)], rows_per_month=2000, seed=12)
    after = [frame[pd.to_datetime(frame["date"], format="%Y%m%dT%H%M%S") >= onset] for frame in (calm, changed)]
    for column in ("bedrooms", "bathrooms", "sqft_living", "sqft_above"):
        assert stats.ks_2samp(after[0][column], after[1][column]).pvalue > 0.01, column
    link = [frame["sqft_living"].corr(frame["bedrooms"], method="spearman") for frame in after]
    assert link[0] > 0.75 and link[1] < 0.5


def test_results_carry_exactly_the_record_contracts_keys(
    reconstruction: ReconstructionDrift, classifier: DomainClassifierDrift
) -> None:
    rows = months("no-drift")["2015-01"]
    pca, auc = reconstruction.calculate(rows).to_dict(), classifier.calculate(rows).to_dict()
    assert list(pca) == ["value", "lower", "upper", "alert", "n"] and pca["n"] == len(rows)
    assert list(auc) == ["value", "upper", "alert", "n"] and auc["n"] == len(rows)
    assert pca["lower"] < pca["value"] < pca["upper"] and 0.0 < auc["value"] < auc["upper"] < 1.0
    json.dumps([pca, auc])  # plain floats, bools and ints

    assert reconstruction.calculate(rows.head(10)).to_dict() == {
        "value": None, "lower": None, "upper": None, "alert": None, "n": 10,
    }  # fmt: skip
    assert classifier.calculate(rows.head(0)).to_dict() == {"value": None, "upper": None, "alert": None, "n": 0}

    # Missing values are filled (PCA) or taken natively (classifier); fewer rows widen the bands.
    holes = rows.head(300).copy()
    holes.loc[holes.index[::3], ["sqft_lot", "zipcode"]] = np.nan
    small = reconstruction.calculate(holes)
    assert small.value is not None and classifier.calculate(holes).value is not None
    assert small.upper is not None and pca["upper"] < small.upper
    assert classifier.upper(300) > classifier.upper(len(rows))


def test_bad_input_is_a_frame_error_naming_the_frame_and_column(
    reference: pd.DataFrame, reconstruction: ReconstructionDrift, classifier: DomainClassifierDrift
) -> None:
    rows = reference.head(100)
    for calculator in (reconstruction, classifier):
        with pytest.raises(FrameError, match=r"^current: missing column\(s\) sqft_lot "):
            calculator.calculate(rows.drop(columns="sqft_lot"))
        with pytest.raises(FrameError, match=r"^current: column zipcode holds numbers .* the reference strings"):
            calculator.calculate(rows.assign(zipcode=rows["zipcode"].astype(int)))
        with pytest.raises(FrameError, match=r"^current: column sqft_living must hold numbers but holds object"):
            calculator.calculate(rows.assign(sqft_living=rows["sqft_living"].astype(str)))
        with pytest.raises(FrameError, match=r"^current: expected a pandas DataFrame, got dict"):
            calculator.calculate(rows.to_dict())  # type: ignore[arg-type]

    with pytest.raises(FrameError, match=r"^reference: column sqft_lot has no values"):
        ReconstructionDrift(**COLUMNS).fit(rows.assign(sqft_lot=np.nan))
    with pytest.raises(FrameError, match=r"^reference: 20 rows, need at least 30"):
        DomainClassifierDrift(**COLUMNS).fit(rows.head(20))
    with pytest.raises(FrameError, match="no columns to compare"):
        ReconstructionDrift()
    with pytest.raises(FrameError, match="sqft_lot listed twice"):
        DomainClassifierDrift(numerical=["sqft_lot"], categorical=["sqft_lot"])
    with pytest.raises(FrameError, match=r"variance share 1\.5: must be in \(0, 1\]"):
        ReconstructionDrift(**COLUMNS, variance=1.5)
    with pytest.raises(FrameError, match="folds 1: need at least 2"):
        DomainClassifierDrift(**COLUMNS, folds=1)
    with pytest.raises(RuntimeError, match="calculate called before fit"):
        ReconstructionDrift(**COLUMNS).calculate(rows)


def test_a_window_s_verdicts_do_not_depend_on_its_row_order(
    reconstruction: ReconstructionDrift, classifier: DomainClassifierDrift
) -> None:
    """A store returns rows in insertion order, which concurrent writers shuffle: a replay resumed after a kill
    must find what an uninterrupted one found."""
    window = after_onset(months("correlation-change"))
    current = next(iter(window.values()))
    shuffled = current.sample(frac=1.0, random_state=3)
    assert classifier.calculate(shuffled) == classifier.calculate(current)
    assert reconstruction.calculate(shuffled).value == pytest.approx(reconstruction.calculate(current).value)
