"""Error per segment of a window (zip code, price band, model version), against the same segment on the reference,
and the segments whose error grew most: where a window's MAE moved, not only that it moved.

Segments are declared by small definitions; the caller names the columns (the price service's are in
`house.house_segments`):
- `ColumnSegments(column)`: each value of a categorical column is a segment. For the houses, the "zip code area"
  is the zip code itself. King County's sales fall in 70 zip codes with about a hundred training sales each, enough
  for a baseline of their own; three-digit prefixes give only 980 and 981 (Seattle against the rest of the county),
  too coarse to point at a neighbourhood, and zip codes from outside the county that the model never saw (e.g.
  Snohomish County's 98012) share the 980 prefix, so prefixes would hide exactly the change this view should show.
  The model version is a column segment too: a newly deployed model shows up as its own segment.
- `BandSegments(column, quantiles)`: bands of a numeric column cut at the reference's quantiles once, in `fit`, so
  a band can be followed from window to window (`performance` cuts its realized-metric bands the same way, with the
  same names). For the houses the banded column is the predicted price, not the sale price: a window's predictions
  are segmented before their labels arrive, and a row must stay in its segment whether it is labelled yet or not.

Per segment of a window (`SegmentRow`): rows, labelled rows, the realized MAE on the labelled rows, the estimated
MAE (the mean of per-row estimated absolute errors from a label-free estimator, when given), and the increase: the
realized MAE when at least `min_rows` rows are labelled, else the estimated one, minus the baseline. The baseline
(`reference_mae_usd`) is the segment's own MAE on the reference when the reference holds at least `min_rows`
labelled rows of it, else the whole reference's MAE: a segment the reference never had (`new`: a zip code the
model never saw, a model version deployed after it) has no error of its own to compare with, and the overall MAE
is what the model was accepted on; a segment seen only a few times has an own MAE too noisy to be a baseline.

`min_rows` (default 30) keeps small segments' numbers out: an MAE over n sales has a standard error of about
0.75 / sqrt(n) of itself (absolute errors scatter that much around their mean), 14% at 30 rows but 34% at 5. Below
it a segment's realized or estimated MAE is None and `top` leaves the segment out; otherwise a zip code with three
unlucky sales would head the list in every window.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from forwardlab.monitor.base import Calculator
from forwardlab.monitor.errors import FrameError
from forwardlab.monitor.frames import require_columns
from forwardlab.monitor.performance import SEGMENT_QUANTILES, band_edges, band_name

DEFAULT_MIN_ROWS = 30
MISSING = "(missing)"  # the segment of rows without a value in the segment column


@dataclass(frozen=True)
class ColumnSegments:
    """One segment per value of a categorical `column`; `name` (default: the column) is the row's `by`."""

    column: str
    name: str = ""

    @property
    def by(self) -> str:
        return self.name or self.column


@dataclass(frozen=True)
class BandSegments:
    """Bands of a numeric `column` cut at the reference's `quantiles`; `unit` ends the band names ("< 300,000 USD");
    `name` (default: the column) is the row's `by`."""

    column: str
    quantiles: tuple[float, ...] = SEGMENT_QUANTILES
    name: str = ""
    unit: str = "USD"

    def __post_init__(self) -> None:
        q = self.quantiles
        if not q or not all(0 < x < 1 for x in q) or any(a >= b for a, b in itertools.pairwise(q)):
            raise FrameError(f"segments by {self.by}: quantiles {list(q)} must rise strictly, each between 0 and 1")

    @property
    def by(self) -> str:
        return self.name or self.column


Segments = ColumnSegments | BandSegments


@dataclass(frozen=True)
class SegmentRow:
    """One segment of one window. `mae_usd` is realized (None under `min_rows` labelled rows); `increase_usd` is
    measured from it when present, else from `estimated_mae_usd`; `new` says the reference never had the segment
    (its baseline is then the whole reference's MAE)."""

    by: str
    segment: str
    n: int
    n_labelled: int
    reference_mae_usd: float
    mae_usd: float | None
    estimated_mae_usd: float | None
    increase_usd: float | None
    new: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SegmentResult:
    """Every segment present in a window, by definition then segment (bands low to high, values sorted)."""

    rows: tuple[SegmentRow, ...]
    reference_mae_usd: float
    min_rows: int

    def top(self, k: int) -> tuple[SegmentRow, ...]:
        """The `k` segments of at least `min_rows` rows whose error grew most. Those without an increase (too few
        labels, no estimates) come last; equal increases go by more rows, then by name, so the order is stable.
        A segment holding the whole window (the only model version in use) is left out: it points nowhere."""
        if k < 0:
            raise ValueError(f"top({k}): k must be 0 or more")
        rows_by: dict[str, int] = {}
        for row in self.rows:
            rows_by[row.by] = rows_by.get(row.by, 0) + row.n
        eligible = [row for row in self.rows if row.n >= self.min_rows and row.n < rows_by[row.by]]
        return tuple(sorted(eligible, key=_rank)[:k])

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_mae_usd": self.reference_mae_usd,
            "min_rows": self.min_rows,
            "segments": [row.to_dict() for row in self.rows],
        }


def _rank(row: SegmentRow) -> tuple[bool, float, int, str, str]:
    increase = row.increase_usd
    return (increase is None, -increase if increase is not None else 0.0, -row.n, row.by, row.segment)


@dataclass(frozen=True)
class _Baseline:
    seen: frozenset[str]
    mae_usd: dict[str, float]  # segments with at least min_rows labelled reference rows


class SegmentCalculator(Calculator[SegmentResult]):
    """Error per segment of current frames, against baselines and bands fixed by `fit` on the reference.

    Example: `SegmentCalculator([ColumnSegments("zipcode"), BandSegments("prediction_usd")], target="label_usd",
    prediction="prediction_usd").fit(reference).calculate(window, estimated_abs_error=estimates).top(5)`
    """

    def __init__(
        self,
        segments: Sequence[Segments],
        *,
        target: str,
        prediction: str,
        min_rows: int = DEFAULT_MIN_ROWS,
    ) -> None:
        if not segments:
            raise FrameError("segments: none given")
        names = [s.by for s in segments]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise FrameError(f"segments: {', '.join(repeated)} defined twice; give each definition its own name")
        if min_rows < 1:
            raise FrameError(f"segments: min_rows {min_rows} must be at least 1")
        self.segments, self.target, self.prediction, self.min_rows = tuple(segments), target, prediction, min_rows
        self.edges: dict[str, tuple[float, ...]] = {}
        self.reference_mae_usd: float | None = None
        self._baselines: dict[str, _Baseline] = {}

    def calculate(self, current: pd.DataFrame, estimated_abs_error: npt.ArrayLike | None = None) -> SegmentResult:
        """Segments of `current` (target NaN for unlabelled rows); `estimated_abs_error`: one estimated absolute
        error per row of `current`, in its order (NaN where a row has none)."""
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__}.calculate called before fit(reference)")
        return self._segments(current, estimated_abs_error)

    def _fit(self, reference: pd.DataFrame) -> None:
        abs_error = self._abs_error(reference, "reference")
        labelled = np.isfinite(abs_error)
        if labelled.sum() < self.min_rows:
            raise FrameError(
                f"reference: {int(labelled.sum())} rows with both {self.target} and {self.prediction}, "
                f"need at least {self.min_rows}"
            )
        self.reference_mae_usd = float(abs_error[labelled].mean())
        self.edges, self._baselines = {}, {}
        for definition in self.segments:
            if isinstance(definition, BandSegments):
                values = _numbers(reference, definition.column, "reference")
                values = values[np.isfinite(values)]
                if not values.size:
                    raise FrameError(f"reference: column {definition.column} has no values to cut bands at")
                self.edges[definition.by] = band_edges(values, definition.quantiles)
            keys = self._keys(reference, definition, "reference")
            stats = pd.Series(abs_error).groupby(keys, observed=True).agg(["count", "mean"])
            own = stats[stats["count"] >= self.min_rows]["mean"]
            self._baselines[definition.by] = _Baseline(
                frozenset(map(str, keys.unique())), {str(k): float(v) for k, v in own.items()}
            )

    def _calculate(self, current: pd.DataFrame) -> SegmentResult:
        return self._segments(current, None)

    def _segments(self, current: pd.DataFrame, estimated_abs_error: npt.ArrayLike | None) -> SegmentResult:
        assert self.reference_mae_usd is not None  # set by fit, which calculate requires
        abs_error = self._abs_error(current, "current")
        estimates = None if estimated_abs_error is None else _estimates(estimated_abs_error, len(current))
        work = pd.DataFrame({"abs_error": abs_error, "estimate": np.nan if estimates is None else estimates})
        rows = []
        for definition in self.segments:
            keys = self._keys(current, definition, "current")
            stats = work.groupby(keys, observed=True, sort=True).agg(
                n=("abs_error", "size"),
                n_labelled=("abs_error", "count"),
                mae=("abs_error", "mean"),
                n_estimated=("estimate", "count"),
                estimated=("estimate", "mean"),
            )
            baseline = self._baselines[definition.by]
            for key, s in stats.iterrows():
                segment = str(key)
                realized = float(s["mae"]) if s["n_labelled"] >= self.min_rows else None
                estimated = float(s["estimated"]) if s["n_estimated"] >= self.min_rows else None
                reference = baseline.mae_usd.get(segment, self.reference_mae_usd)
                basis = realized if realized is not None else estimated
                rows.append(
                    SegmentRow(
                        by=definition.by,
                        segment=segment,
                        n=int(s["n"]),
                        n_labelled=int(s["n_labelled"]),
                        reference_mae_usd=reference,
                        mae_usd=realized,
                        estimated_mae_usd=estimated,
                        increase_usd=None if basis is None else basis - reference,
                        new=segment not in baseline.seen,
                    )
                )
        return SegmentResult(tuple(rows), self.reference_mae_usd, self.min_rows)

    def _abs_error(self, frame: pd.DataFrame, side: str) -> np.ndarray:
        """|prediction - target| per row; NaN where either is missing or infinite (an unlabelled prediction): such
        rows count in a segment's rows but not in its MAE, as `performance` leaves them out of its metrics."""
        _check_columns(frame, [self.target, self.prediction, *(s.column for s in self.segments)], side)
        abs_error = np.abs(_numbers(frame, self.prediction, side) - _numbers(frame, self.target, side))
        return np.where(np.isfinite(abs_error), abs_error, np.nan)

    def _keys(self, frame: pd.DataFrame, definition: Segments, side: str) -> pd.Series:
        """Each row's segment, as an ordered categorical (bands low to high, values sorted, missing last)."""
        if isinstance(definition, BandSegments):
            edges = self.edges[definition.by]
            bounds = [None, *edges, None]
            names = [band_name(low, high, definition.unit) for low, high in itertools.pairwise(bounds)]
            values = _numbers(frame, definition.column, side)
            band = np.searchsorted(np.asarray(edges), values, side="right")
            labels = np.where(np.isnan(values), MISSING, np.asarray(names, dtype=object)[band])
            return pd.Series(pd.Categorical(labels, categories=[*names, MISSING], ordered=True))
        values = frame[definition.column].astype("string")
        present = sorted(values.dropna().unique())
        return pd.Series(pd.Categorical(values.fillna(MISSING), categories=[*present, MISSING], ordered=True))


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], side: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise FrameError(f"{side}: a pandas DataFrame is needed, not {type(frame).__name__}")
    require_columns(frame, list(dict.fromkeys(columns)), side)


def _numbers(frame: pd.DataFrame, column: str, side: str) -> np.ndarray:
    try:
        return frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise FrameError(f"{side}: column {column} must hold numbers: {exc}") from None


def _estimates(values: npt.ArrayLike, n_rows: int) -> np.ndarray:
    try:
        array = np.asarray(pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan))
    except (TypeError, ValueError) as exc:
        raise FrameError(f"estimated_abs_error: must be a 1-D array of numbers: {exc}") from None
    if len(array) != n_rows:
        raise FrameError(
            f"estimated_abs_error: {len(array)} values for a current frame of {n_rows} rows; "
            "give one estimate per row, in the frame's order"
        )
    if np.isinf(array).any() or (array < 0).any():
        raise FrameError("estimated_abs_error: absolute errors must be finite and 0 or more (NaN for no estimate)")
    return array
