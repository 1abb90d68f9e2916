"""What a window's predictions say before their labels are in: label coverage, realized MAE so far.

A window's label-time view (`windows`: the sales whose price arrived in it) is complete the day it ends, but
it is about predictions made weeks earlier. This is the prediction-time view: the predictions made in the
window (`predicted_at` in [start, end)), labelled or not. How many have their truth yet (`LabelCoverage`)
says how far to trust the realized MAE of those labelled: under `min_coverage` it is provisional, since the
houses that sell first are not a random sample of those listed.

Labels count when they arrived before `as_of` (the run's end), so re-monitoring an old window shows what
was known at the time rather than what is known now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from forwardlab.monitor.base import Calculator
from forwardlab.monitor.columns import ColumnRoles
from forwardlab.monitor.errors import MonitoringRunError
from forwardlab.monitor.frames import require_columns
from forwardlab.monitor.segments import SegmentCalculator, SegmentResult

DEFAULT_MIN_COVERAGE = 0.8
TOP_SEGMENTS = 10  # segments a window's record keeps, by error increase
# What alert rules can name (`alerts.MetricRule`), from a window's `production` record; the two MAEs compare
# with the reference's `mae_usd` for `increase_pct`.
PRODUCTION_METRICS = ("label_coverage", "realized_mae_usd")
COMPARED_WITH_REFERENCE = {"realized_mae_usd": "mae_usd"}


@dataclass(frozen=True)
class LabelCoverage:
    """How many of a window's predictions have their truth; `provisional` below `min_coverage`."""

    n_predictions: int
    n_labelled: int
    min_coverage: float

    @property
    def label_coverage(self) -> float | None:
        return self.n_labelled / self.n_predictions if self.n_predictions else None

    @property
    def provisional(self) -> bool:
        coverage = self.label_coverage
        return coverage is None or coverage < self.min_coverage

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label_coverage": self.label_coverage, "provisional": self.provisional}


def check_min_coverage(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise MonitoringRunError(f"minimum label coverage {value}: use a share in (0, 1], e.g. 0.8")
    return value


def known_at(frame: pd.DataFrame, as_of: datetime | pd.Timestamp, *, target: str) -> pd.DataFrame:
    """A store frame as it was at `as_of`: labels that arrived later are blanked (a copy)."""
    late = (frame["label_at"].notna() & (frame["label_at"] >= pd.Timestamp(as_of))).to_numpy()
    if not late.any():
        return frame
    out = frame.copy()
    out.loc[late, target] = np.nan
    out.loc[late, "label_at"] = pd.NaT
    return out


@dataclass(frozen=True)
class ProductionResult:
    """The prediction-time view of one window: its record is the window's `production` entry."""

    coverage: LabelCoverage
    realized_mae_usd: float | None
    segments: SegmentResult | None = None

    def to_dict(self) -> dict[str, Any]:
        top = self.segments.top(TOP_SEGMENTS) if self.segments else ()
        return {
            **self.coverage.to_dict(),
            "realized_mae_usd": self.realized_mae_usd,
            "segments": [row.to_dict() for row in top],
        }


class ProductionCalculator(Calculator[ProductionResult]):
    """The prediction-time view of windows, fitted once on the reference (the training predictions).

    `calculate` takes the predictions made in a window as the store holds them (`known_at` first, to see
    them as they were at some time), labelled or not.
    """

    def __init__(self, columns: ColumnRoles, *, min_coverage: float = DEFAULT_MIN_COVERAGE) -> None:
        self.columns = columns
        self.min_coverage = check_min_coverage(min_coverage)
        self.segments: SegmentCalculator | None = None

    def _fit(self, reference: pd.DataFrame) -> None:
        columns = self.columns
        require_columns(reference, columns.monitored, "reference")
        usable = [s for s in columns.segments if s.column in reference.columns]
        if usable:
            self.segments = SegmentCalculator(usable, target=columns.target, prediction=columns.prediction)
            self.segments.fit(reference)

    def _calculate(self, current: pd.DataFrame) -> ProductionResult:
        if current.empty:  # a store frame of no rows has no feature columns either
            return ProductionResult(LabelCoverage(0, 0, self.min_coverage), None)
        require_columns(current, (*self.columns.features.columns, self.columns.prediction), "window's predictions")
        target, prediction = self.columns.target, self.columns.prediction
        labelled = current[target].notna().to_numpy() if target in current.columns else np.zeros(len(current), bool)
        coverage = LabelCoverage(len(current), int(labelled.sum()), self.min_coverage)
        errors = (current.loc[labelled, prediction] - current.loc[labelled, target]).abs()
        segments = self.segments.calculate(current) if self.segments else None
        return ProductionResult(coverage, float(errors.mean()) if len(errors) else None, segments)


def production_metrics(record: Mapping[str, Any] | None) -> dict[str, float | None]:
    """The alertable values of a window's `production` record (None where absent: older runs had none).

    A provisional realized MAE is withheld: the first houses to sell are not a fair sample of those listed,
    and a rule that fired on them would fire on noise.
    """
    record = record or {}
    values = {name: record.get(name) for name in PRODUCTION_METRICS}
    if record.get("provisional", True):
        values["realized_mae_usd"] = None
    return values
