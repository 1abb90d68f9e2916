"""What a window's predictions say before their labels are in: label coverage, the realized MAE so far, the MAE
estimated without labels, multivariate drift and the segments whose error grew most.

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
from forwardlab.monitor.drift.multivariate import (
    DomainClassifierDrift,
    DomainClassifierResult,
    ReconstructionDrift,
    ReconstructionResult,
)
from forwardlab.monitor.errors import MonitoringRunError
from forwardlab.monitor.estimation import RECORD_KEYS as ESTIMATE_KEYS
from forwardlab.monitor.estimation import EstimatedPerformance, LossEstimator
from forwardlab.monitor.frames import require_columns
from forwardlab.monitor.performance import PerformanceCalculator
from forwardlab.monitor.segments import SegmentCalculator, SegmentResult

DEFAULT_MIN_COVERAGE = 0.8
TOP_SEGMENTS = 10  # segments a window's record keeps, by error increase
# What alert rules can name (`alerts.MetricRule`), from a window's `production` record; the two MAEs compare
# with the reference's `mae_usd` for `increase_pct`.
PRODUCTION_METRICS = (
    "label_coverage",
    "realized_mae_usd",
    "estimated_mae_usd",
    "pca_reconstruction_error",
    "domain_classifier_auc",
)
COMPARED_WITH_REFERENCE = {"realized_mae_usd": "mae_usd", "estimated_mae_usd": "mae_usd"}


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
    estimated: EstimatedPerformance | None = None
    reconstruction: ReconstructionResult | None = None
    domain_classifier: DomainClassifierResult | None = None
    segments: SegmentResult | None = None

    def to_dict(self) -> dict[str, Any]:
        top = self.segments.top(TOP_SEGMENTS) if self.segments else ()
        return {
            **self.coverage.to_dict(),
            "realized_mae_usd": self.realized_mae_usd,
            **(self.estimated.to_dict() if self.estimated else dict.fromkeys(ESTIMATE_KEYS)),
            "multivariate": {
                "pca": self.reconstruction.to_dict() if self.reconstruction else None,
                "domain_classifier": self.domain_classifier.to_dict() if self.domain_classifier else None,
            },
            "segments": [row.to_dict() for row in top],
        }


class ProductionCalculator(Calculator[ProductionResult]):
    """The prediction-time view of windows, fitted once on the reference (the training predictions).

    `calculate` takes the predictions made in a window as the store holds them (`known_at` first, to see
    them as they were at some time), labelled or not. The label-free estimate of the MAE (`estimation`) is
    learned from `estimation_reference` when given (out-of-fold scored training rows: see
    `estimation.cross_fitted_reference`, and `house.estimation_reference` for the price model), else from the
    reference itself, whose in-sample errors make it a little optimistic. Multivariate drift
    (`drift.multivariate`) compares the window's features with the reference's; segments (`segments`) break
    the window's error down, with each row's estimated error standing in where labels are missing.
    """

    def __init__(
        self,
        columns: ColumnRoles,
        *,
        min_coverage: float = DEFAULT_MIN_COVERAGE,
        estimation_reference: pd.DataFrame | None = None,
        seed: int = 0,
    ) -> None:
        self.columns = columns
        self.min_coverage = check_min_coverage(min_coverage)
        self.estimation_reference = estimation_reference
        features = columns.features
        self.estimator = LossEstimator(
            numerical=features.numerical,
            categorical=features.categorical,
            prediction=columns.prediction,
            target=columns.target,
            seed=seed,
        )
        self.reconstruction = ReconstructionDrift(features.numerical, features.categorical, min_rows=features.min_rows)
        self.domain_classifier = DomainClassifierDrift(
            features.numerical, features.categorical, seed=seed, min_rows=features.min_rows
        )
        self.performance = PerformanceCalculator(target=columns.target, prediction=columns.prediction)
        self.segments: SegmentCalculator | None = None

    def _fit(self, reference: pd.DataFrame) -> None:
        columns = self.columns
        require_columns(reference, columns.monitored, "reference")
        self.estimator.fit(reference if self.estimation_reference is None else self.estimation_reference)
        self.performance.fit(reference)
        self.reconstruction.fit(reference)
        self.domain_classifier.fit(reference)
        usable = [s for s in columns.segments if s.column in reference.columns]
        if usable:
            self.segments = SegmentCalculator(usable, target=columns.target, prediction=columns.prediction)
            self.segments.fit(reference)

    def _calculate(self, current: pd.DataFrame) -> ProductionResult:
        if current.empty:  # a store frame of no rows has no feature columns either
            return ProductionResult(LabelCoverage(0, 0, self.min_coverage), None)
        require_columns(current, (*self.columns.features.columns, self.columns.prediction), "window's predictions")
        target = self.columns.target
        labelled = int(current[target].notna().sum()) if target in current.columns else 0
        coverage = LabelCoverage(len(current), labelled, self.min_coverage)
        estimated = self.estimator.calculate(current)
        return ProductionResult(
            coverage,
            self.performance.calculate(current).mae_usd,
            estimated,
            self.reconstruction.calculate(current),
            self.domain_classifier.calculate(current),
            self.segments.calculate(current, estimated.row_estimates_usd) if self.segments else None,
        )


def production_metrics(record: Mapping[str, Any] | None) -> dict[str, float | None]:
    """The alertable values of a window's `production` record (None where absent: older runs had none).

    A provisional realized MAE is withheld: the first houses to sell are not a fair sample of those listed,
    and a rule that fired on them would fire on noise.
    """
    record = record or {}
    multivariate = record.get("multivariate") or {}
    values = {name: record.get(name) for name in PRODUCTION_METRICS}
    values["pca_reconstruction_error"] = (multivariate.get("pca") or {}).get("value")
    values["domain_classifier_auc"] = (multivariate.get("domain_classifier") or {}).get("value")
    if record.get("provisional", True):
        values["realized_mae_usd"] = None
    return values
