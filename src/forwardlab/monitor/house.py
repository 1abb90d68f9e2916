"""The price service as the monitoring engine sees it: which columns a run compares and what each is.

The engine (`windows`, `drift`, `performance`, `reports`) is told its columns (`columns.ColumnRoles`); for the
price service they are the house features (`features.HOUSE`), the sale price as the target and the predicted
price, as the store holds them, and zip codes read as strings; the segments a window's error is broken down by
(`segments`). `monitor run` and the replay say so here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forwardlab.fileio import atomic_path
from forwardlab.monitor.columns import ColumnRoles
from forwardlab.monitor.drift.config import DriftConfig
from forwardlab.monitor.features import HOUSE
from forwardlab.monitor.segments import BandSegments, ColumnSegments, Segments
from forwardlab.monitor.store import LABEL_COLUMN, PREDICTION_COLUMN

ESTIMATION_REFERENCE_FILE = "estimation_reference.parquet"  # beside the model it was scored by

if TYPE_CHECKING:
    import pandas as pd

    from forwardlab.monitor.model import PriceModel


def house_columns(
    features: DriftConfig | None = None, *, target_overrides: Mapping[str, Any] | None = None
) -> ColumnRoles:
    """The price service's column roles: `features` (default: the nine house features with `DriftConfig`'s
    defaults), the store's label and prediction columns as target and prediction (`target_overrides`: their
    per-column tests, as `DriftConfig.overrides`), the house schema's string features, and the segments."""
    return ColumnRoles(
        features=features or DriftConfig(numerical=HOUSE.numerical, categorical=HOUSE.categorical),
        target=LABEL_COLUMN,
        prediction=PREDICTION_COLUMN,
        target_overrides=target_overrides or {},
        strings=HOUSE.strings,
        segments=house_segments(),
    )


def house_segments() -> tuple[Segments, ...]:
    """The price service's segments: the zip code itself (see `segments` for why not a prefix), bands of the
    predicted price at the reference's quartiles, and the model version (a new model is a new segment)."""
    return (
        ColumnSegments("zipcode"),
        BandSegments(PREDICTION_COLUMN, name="price_band"),
        ColumnSegments("model_version"),
    )


def estimation_reference(model: PriceModel, train: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """What the label-free MAE estimate learns from: the training sales scored out of fold by the price model's
    pipeline, plus a share scored by models that never saw their zip code (`estimation.cross_fitted_reference`),
    in the store's column names. Made where the model is trained: the monitor has the store, not the pipeline.
    """
    from forwardlab.monitor.estimation import cross_fitted_reference

    scored = cross_fitted_reference(
        model.pipeline,
        train,
        features=HOUSE.names,
        target=HOUSE.target,
        prediction=PREDICTION_COLUMN,
        unknown=("zipcode",),
        seed=seed,
    )
    return scored[[*HOUSE.names, PREDICTION_COLUMN, HOUSE.target]].rename(columns={HOUSE.target: LABEL_COLUMN})


def save_estimation_reference(model: PriceModel, train: pd.DataFrame, folder: str | Path) -> Path:
    """`estimation_reference` written into the model's folder (`monitor run --estimation-reference`)."""
    path = Path(folder) / ESTIMATION_REFERENCE_FILE
    with atomic_path(path) as tmp:
        estimation_reference(model, train).to_parquet(tmp, index=False)
    return path
