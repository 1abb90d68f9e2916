"""The house schema: the price model's nine features, what each is (numerical or categorical) and its type.

One place for what used to be spelt out in the model, the service's request body and the replay. The model
(`model`) fits and checks its artifacts against `HOUSE`; the service's request body (`schemas.HouseFeatures`)
is checked against it when imported; the replay (`simulation`) sends typed records built by it; the raw data's
string columns (`data`) and the CLI's defaults come from it. The monitoring engine (`windows`, `drift`,
`performance`, `reports`) knows none of this: its callers tell it their columns (`house.house_columns`).
Plain data, importing nothing of the engine, so the model and the data loader can read it cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import pandas as pd

from forwardlab.monitor.errors import SchemaError

Kind = Literal["numerical", "categorical"]
TypeName = Literal["float", "int", "str"]
PYTHON_TYPES: Mapping[str, type] = MappingProxyType({"float": float, "int": int, "str": str})


@dataclass(frozen=True)
class Feature:
    """One model input: its column name, how it is compared (`kind`) and the Python type of its values
    (`dtype`: "float", "int" or "str"; model metadata records these names)."""

    name: str
    kind: Kind
    dtype: TypeName


@dataclass(frozen=True)
class FeatureSchema:
    """A model's inputs and training target. Feature order is numerical first, then categorical, as listed.

    `drift_overrides` are per-feature drift settings (column -> `{"test": ..., "threshold": ...}`) that suit
    these features better than the default test (see `HOUSE`); who monitors decides whether to use them.
    """

    features: tuple[Feature, ...]
    target: str
    drift_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise SchemaError(f"feature schema: feature(s) {', '.join(repeated)} listed twice")
        for feature in self.features:
            if feature.kind not in ("numerical", "categorical") or feature.dtype not in PYTHON_TYPES:
                raise SchemaError(
                    f"feature schema: {feature.name} is {feature.kind!r} of type {feature.dtype!r}; "
                    f"use numerical or categorical, and one of {', '.join(PYTHON_TYPES)}"
                )
        if self.target in names:
            raise SchemaError(f"feature schema: the target {self.target} is also a feature")
        unknown = sorted(set(self.drift_overrides) - set(names))
        if unknown:
            raise SchemaError(f"feature schema: drift override(s) for {', '.join(unknown)}, which are not features")

    @property
    def numerical(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.kind == "numerical")

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.kind == "categorical")

    @property
    def names(self) -> tuple[str, ...]:
        """Every feature, numerical first: the column order the model's pipeline is fitted on."""
        return (*self.numerical, *self.categorical)

    @property
    def types(self) -> dict[str, str]:
        """Feature -> type name ("float", "int", "str"), in `names` order (what model metadata records)."""
        dtypes = {f.name: f.dtype for f in self.features}
        return {name: dtypes[name] for name in self.names}

    @property
    def python_types(self) -> dict[str, type]:
        return {name: PYTHON_TYPES[dtype] for name, dtype in self.types.items()}

    @property
    def strings(self) -> tuple[str, ...]:
        """Features whose values are strings (labels such as zip codes: leading zeros, no arithmetic)."""
        return tuple(name for name, dtype in self.types.items() if dtype == "str")

    def frame(self, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Records (dicts of the features) as a frame with one column per feature, in `names` order."""
        return pd.DataFrame.from_records(list(records), columns=list(self.names))

    def typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The features of `frame`, in `names` order, as their Python types: what a JSON client sends."""
        missing = [c for c in self.names if c not in frame.columns]
        if missing:
            raise SchemaError(f"feature frame: missing column(s) {', '.join(missing)}")
        return frame[list(self.names)].astype(self.python_types)


HOUSE = FeatureSchema(
    features=(
        Feature("sqft_living", "numerical", "float"),
        Feature("sqft_lot", "numerical", "float"),
        Feature("sqft_above", "numerical", "float"),
        Feature("bedrooms", "categorical", "int"),
        Feature("bathrooms", "categorical", "float"),
        Feature("waterfront", "categorical", "int"),
        Feature("zipcode", "categorical", "str"),
        Feature("condition", "categorical", "int"),
        Feature("view", "categorical", "int"),
    ),
    target="price",
    # Zip code has 70 categories: at the few hundred to thousand sales of a month, the Jensen-Shannon distance
    # between two samples of one unchanging market is 0.1-0.2 (measured on the no-drift scenario), so
    # Evidently's default (distance >= 0.1) flags it every month. Chi-square's p-value does not grow with fewer
    # rows per category; at p < 0.001 the no-drift control stays quiet and new zip codes are still caught at once.
    drift_overrides=MappingProxyType({"zipcode": MappingProxyType({"test": "chisquare", "threshold": 0.001})}),
)
