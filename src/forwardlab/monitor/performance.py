"""Regression performance per window, in USD (the store's unit), next to the same on the reference.

The caller names the truth and prediction columns (`PerformanceCalculator(target=..., prediction=...)`).

Definitions follow Evidently's regression metrics, so our numbers and its report agree: error is
prediction minus truth (a positive mean error means over-pricing), MAPE is in percent with the truth
floored at machine epsilon, R² is 1 - SS_res / SS_tot (undefined for fewer than 2 rows or a constant
truth). Rows missing either value are left out and counted.

Error by segment: the reference's truth is cut at its quartiles once, in `fit`, and every window is
reported on those same price bands, so a band's MAE can be followed over time (cutting each window at its
own quartiles would move the bands with the market).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from forwardlab.monitor.base import Calculator
from forwardlab.monitor.errors import FrameError
from forwardlab.monitor.frames import require_columns

SEGMENT_QUANTILES = (0.25, 0.5, 0.75)
PERFORMANCE_METRICS = ("mae_usd", "rmse_usd", "mape_pct", "mean_error_usd", "r2", "max_abs_error_usd")


@dataclass(frozen=True)
class SegmentError:
    """Errors of the rows whose truth falls in one reference price band [low_usd, high_usd)."""

    segment: str
    low_usd: float | None
    high_usd: float | None
    n: int
    mae_usd: float | None
    mean_error_usd: float | None


@dataclass(frozen=True)
class RegressionMetrics:
    """Error metrics of one frame; None where undefined (no rows, or R² of a constant truth)."""

    n: int
    n_missing: int
    mae_usd: float | None
    rmse_usd: float | None
    mape_pct: float | None
    mean_error_usd: float | None
    r2: float | None
    max_abs_error_usd: float | None
    segments: tuple[SegmentError, ...] = ()

    def value(self, metric: str) -> float | None:
        """A metric by name (one of `PERFORMANCE_METRICS`)."""
        return getattr(self, metric)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["segments"] = [asdict(s) for s in self.segments]
        return out


class PerformanceCalculator(Calculator[RegressionMetrics]):
    """Regression metrics of current frames, with price bands and reference metrics fixed by `fit`."""

    def __init__(self, *, target: str, prediction: str) -> None:
        self.target, self.prediction = target, prediction
        self.edges_usd: tuple[float, ...] = ()
        self.reference: RegressionMetrics | None = None

    def _fit(self, reference: pd.DataFrame) -> None:
        truth, _ = self._columns(reference, "reference")
        kept = truth[~np.isnan(truth)]
        if not kept.size:
            raise FrameError(f"reference: column {self.target} has no values")
        self.edges_usd = band_edges(kept)
        self.reference = self._metrics(reference, "reference")

    def _calculate(self, current: pd.DataFrame) -> RegressionMetrics:
        return self._metrics(current, "current")

    def _columns(self, frame: pd.DataFrame, side: str) -> tuple[np.ndarray, np.ndarray]:
        require_columns(frame, (self.target, self.prediction), side)
        try:
            return (
                frame[self.target].to_numpy(dtype=np.float64, na_value=np.nan),
                frame[self.prediction].to_numpy(dtype=np.float64, na_value=np.nan),
            )
        except (TypeError, ValueError) as exc:
            raise FrameError(f"{side}: {self.target} and {self.prediction} must be numbers: {exc}") from None

    def _metrics(self, frame: pd.DataFrame, side: str) -> RegressionMetrics:
        truth, predicted = self._columns(frame, side)
        keep = np.isfinite(truth) & np.isfinite(predicted)
        truth, predicted = truth[keep], predicted[keep]
        n, n_missing = int(keep.sum()), int((~keep).sum())
        if n == 0:
            return RegressionMetrics(0, n_missing, None, None, None, None, None, None, self._segments(truth, predicted))
        error = predicted - truth
        abs_error = np.abs(error)
        total = float(np.sum((truth - truth.mean()) ** 2))
        r2 = 1.0 - float(np.sum(error**2)) / total if n >= 2 and total > 0 else None
        return RegressionMetrics(
            n=n,
            n_missing=n_missing,
            mae_usd=float(abs_error.mean()),
            rmse_usd=float(np.sqrt(np.mean(error**2))),
            mape_pct=float(100.0 * np.mean(abs_error / np.maximum(truth, np.finfo(np.float64).eps))),
            mean_error_usd=float(error.mean()),
            r2=r2,
            max_abs_error_usd=float(abs_error.max()),
            segments=self._segments(truth, predicted),
        )

    def _segments(self, truth: np.ndarray, predicted: np.ndarray) -> tuple[SegmentError, ...]:
        bounds = [None, *self.edges_usd, None]
        band = np.searchsorted(np.asarray(self.edges_usd), truth, side="right")
        out = []
        for i, (low, high) in enumerate(itertools.pairwise(bounds)):
            error = predicted[band == i] - truth[band == i]
            out.append(
                SegmentError(
                    segment=band_name(low, high),
                    low_usd=low,
                    high_usd=high,
                    n=int(error.size),
                    mae_usd=float(np.abs(error).mean()) if error.size else None,
                    mean_error_usd=float(error.mean()) if error.size else None,
                )
            )
        return tuple(out)


def band_edges(values: np.ndarray, quantiles: Sequence[float] = SEGMENT_QUANTILES) -> tuple[float, ...]:
    """The distinct `quantiles` of `values` (finite, non-empty): edges cut once on a reference, so that every
    window is reported on the same bands (equal quantiles merge, so a lumpy column gives fewer bands)."""
    return tuple(float(q) for q in np.unique(np.quantile(values, quantiles)))


def band_name(low: float | None, high: float | None, unit: str = "USD") -> str:
    """A band [low, high) as people read it; None is an open end."""
    if low is None and high is None:
        return "all"
    if low is None:
        return f"< {high:,.0f} {unit}"
    if high is None:
        return f">= {low:,.0f} {unit}"
    return f"{low:,.0f}-{high:,.0f} {unit}"
