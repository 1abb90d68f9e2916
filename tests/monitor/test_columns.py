"""Column roles: what a caller tells the monitoring engine; the target and prediction tests derive from them."""

from __future__ import annotations

import pytest

from forwardlab.monitor.columns import ColumnRoles
from forwardlab.monitor.drift.config import ColumnTest, DriftConfig
from forwardlab.monitor.errors import FrameError
from forwardlab.monitor.features import HOUSE
from forwardlab.monitor.house import house_columns

FEATURES = DriftConfig(numerical=("temperature",), categorical=("station",), min_rows=12)


def test_target_and_prediction_are_tested_as_numbers_with_the_features_minimum() -> None:
    roles = ColumnRoles(FEATURES, "observed", "forecast", {"forecast": {"test": "psi", "threshold": "0.2"}})
    assert roles.targets.numerical == ("observed", "forecast") and roles.targets.categorical == ()
    assert roles.targets.min_rows == 12
    assert roles.targets.overrides == {"forecast": ColumnTest(test="psi", threshold=0.2)}
    assert roles.monitored == ("temperature", "station", "observed", "forecast")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"forecast": {"test": "chisquare"}}, "column 'forecast' is numerical; test 'chisquare' takes categorical"),
        ({"temperature": {"test": "ks"}}, "override for column 'temperature', which is not compared"),
        ({"observed": {"threshold": "high"}}, "overrides.observed.threshold"),
    ],
)
def test_bad_target_overrides_are_frame_errors_naming_them(overrides: dict[str, dict[str, str]], message: str) -> None:
    with pytest.raises(FrameError, match=message):
        ColumnRoles(FEATURES, "observed", "forecast", overrides)


def test_target_and_prediction_must_be_two_columns() -> None:
    with pytest.raises(FrameError, match="observed listed twice"):
        ColumnRoles(FEATURES, "observed", "observed")


def test_the_price_service_roles_are_the_house_features_and_the_stores_price_columns() -> None:
    roles = house_columns()
    assert roles.features.columns == HOUSE.names and roles.features.overrides == {}
    assert (roles.target, roles.prediction, roles.strings) == ("label_usd", "prediction_usd", ("zipcode",))
    given = house_columns(FEATURES, target_overrides={"label_usd": {"test": "ks"}})
    assert given.features is FEATURES and given.targets.overrides["label_usd"].test == "ks"
