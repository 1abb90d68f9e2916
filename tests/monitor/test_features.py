"""The house schema: one source for the model, the request body and the replay; the request model is refused when
it disagrees with it, and frames are typed as JSON clients send them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel, create_model

from forwardlab.monitor.errors import SchemaError
from forwardlab.monitor.features import HOUSE, Feature, FeatureSchema
from forwardlab.monitor.schemas import HouseFeatures, check_fields


def test_house_schema_lists_the_nine_features_numerical_first() -> None:
    assert HOUSE.numerical == ("sqft_living", "sqft_lot", "sqft_above")
    assert HOUSE.categorical == ("bedrooms", "bathrooms", "waterfront", "zipcode", "condition", "view")
    assert HOUSE.names == HOUSE.numerical + HOUSE.categorical
    assert list(HOUSE.types) == list(HOUSE.names) and HOUSE.types["bathrooms"] == "float"
    assert HOUSE.strings == ("zipcode",) and HOUSE.target == "price"
    assert set(HOUSE.drift_overrides) <= set(HOUSE.names)


def test_the_request_model_agrees_with_the_schema() -> None:
    check_fields(HouseFeatures, HOUSE)  # what importing schemas did already; here it is said out loud
    assert list(HouseFeatures.model_fields) == list(HOUSE.names)
    assert {n: f.annotation for n, f in HouseFeatures.model_fields.items()} == HOUSE.python_types


def _variant(**changes: type | None) -> type[BaseModel]:
    """HouseFeatures' fields with some types changed (a type) or removed (None), as a plain pydantic model."""
    fields = {n: (t, ...) for n, t in HOUSE.python_types.items()}
    for name, kind in changes.items():
        if kind is None:
            fields.pop(name, None)
        else:
            fields[name] = (kind, ...)
    return create_model("Variant", **fields)  # type: ignore[call-overload, no-any-return]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_variant(view=None), "view is missing"),
        (_variant(zipcode=int), "zipcode is int, not str"),
        (_variant(garage=int), "garage is not a feature"),
        (
            create_model("Reordered", **{n: (t, ...) for n, t in reversed(HOUSE.python_types.items())}),  # type: ignore[call-overload]
            "not in the schema's order",
        ),
    ],
)
def test_a_request_model_that_disagrees_is_refused_naming_the_field(model: type[BaseModel], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        check_fields(model, HOUSE)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            lambda: FeatureSchema((Feature("a", "numerical", "float"), Feature("a", "categorical", "str")), "y"),
            "a listed twice",
        ),
        (lambda: FeatureSchema((Feature("a", "numerical", "decimal"),), "y"), "'decimal'"),  # type: ignore[arg-type]
        (lambda: FeatureSchema((Feature("a", "ordinal", "int"),), "y"), "'ordinal'"),  # type: ignore[arg-type]
        (lambda: FeatureSchema((Feature("y", "numerical", "float"),), "y"), "target y is also a feature"),
        (lambda: FeatureSchema((Feature("a", "numerical", "float"),), "y", {"b": {"test": "psi"}}), "for b"),
    ],
)
def test_a_schema_that_contradicts_itself_is_refused(schema: object, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        schema()  # type: ignore[operator]


def test_typed_frame_holds_python_types_that_the_request_model_accepts() -> None:
    """A frame as pandas reads a CSV (zip codes as integers, counts as int64) becomes what a JSON client sends."""
    frame = pd.DataFrame(
        {
            "id": ["1", "2"],
            "view": np.array([0, 4]),
            "sqft_living": np.array([1180, 2570]),  # integers in the file; the model takes floats
            "sqft_lot": [5650.0, 7242.0],
            "sqft_above": [1180.0, 2170.0],
            "bedrooms": np.array([3, 3]),
            "bathrooms": [1.0, 2.25],
            "waterfront": np.array([0, 1]),
            "zipcode": np.array([98178, 98125]),
            "condition": np.array([3, 5]),
        }
    )
    typed = HOUSE.typed(frame)
    assert list(typed) == list(HOUSE.names)  # the id is not a feature; the order is the schema's
    records = typed.to_dict("records")
    assert records[0]["zipcode"] == "98178" and records[1]["sqft_living"] == 2570.0
    assert {n: type(v) for n, v in records[0].items()} == HOUSE.python_types
    for record in json.loads(json.dumps(records)):
        HouseFeatures.model_validate(record)
    with pytest.raises(SchemaError, match="missing column\\(s\\) view"):
        HOUSE.typed(frame.drop(columns="view"))


def test_records_become_a_frame_in_schema_order_with_absent_features_missing() -> None:
    frame = HOUSE.frame([{"zipcode": "98001", "sqft_living": 900.0}, {"view": 2}])
    assert list(frame) == list(HOUSE.names) and len(frame) == 2
    assert frame.loc[0, "zipcode"] == "98001" and pd.isna(frame.loc[0, "view"]) and frame.loc[1, "view"] == 2
