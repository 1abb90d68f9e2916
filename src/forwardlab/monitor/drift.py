"""Data drift per column: the test Evidently would run, on statistics computed once per reference.

Evidently's DataDriftPreset recomputes everything from raw rows for every report (each column's test, plus
histograms, correlations and plots, several times over). A monitoring run compares many windows with one
reference, so here each side of a column is summarised once (`ColumnStats`: distinct values with their
counts, sorted for numbers) and every test works from two summaries. The reference's summaries are made
by `DriftCalculator.fit` and reused by every `calculate`; numeric columns are summarised together with
one column-wise sort.

Parity contract with Evidently 0.7 (`evidently.legacy.calculations.stattests`), checked by
tests/monitor/test_drift_parity.py on identical frames: the same test per column, the same score (within
1e-9) and the same drift flag. That means copying its rules, including the odd ones:
- missing and infinite values are dropped before anything else;
- the default test depends on the column type, the reference's size (1,000 rows) and the number of
  distinct values of both sides together: K-S / chi-square / Z-test at small sizes, normed Wasserstein /
  Jensen-Shannon above (see `default_test`);
- the comparison differs per test: K-S drifts at p <= threshold, chi-square and Z at p < threshold,
  distances at score >= threshold;
- a category seen only in the current window has expected count 0 under chi-square, which makes its
  p-value 0 (drift) however small the change: we keep the verdict and say so in the column's note.

Tests are `StatTest` subclasses registered by key (`STATTESTS`), so a column can name one in its override.
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from scipy import stats
from scipy.spatial import distance

from forwardlab.monitor.base import Calculator, validation_message
from forwardlab.monitor.errors import FrameError

ColumnKind = Literal["numerical", "categorical"]
SMALL_REFERENCE_ROWS = 1000  # Evidently's switch from tests (p-values) to distances
FEW_VALUES = 5  # at most this many distinct values: a numerical column is tested like a categorical one
HISTOGRAM_MIN_VALUES = 20  # above this many distinct reference values, PSI/JS bin numbers (Sturges)
DEFAULT_DRIFT_SHARE = 0.5
DEFAULT_MIN_ROWS = 30
TARGET_COLUMNS = ("label_usd", "prediction_usd")  # monitored like features, reported apart from them
Status = Literal["ok", "insufficient data"]
INSUFFICIENT: Literal["insufficient data"] = "insufficient data"
NEW_CATEGORIES_LISTED = 20


# ============================================================================ column statistics


@dataclass(frozen=True, eq=False)
class ColumnStats:
    """One side of one column with missing and infinite values dropped: all any test needs.

    `keys` are the distinct values (sorted float64 for numerical columns, in first-seen order for
    categorical ones) and `counts` how often each occurs; `std` is the population standard deviation
    (numerical only, the normaliser of the Wasserstein distance).
    """

    kind: ColumnKind
    n: int
    n_missing: int
    keys: np.ndarray
    counts: np.ndarray
    std: float = math.nan

    @cached_property
    def values(self) -> np.ndarray:
        """Every kept value, sorted (numerical only; rebuilt on demand for K-S, which needs the samples)."""
        return np.repeat(self.keys, self.counts)

    @cached_property
    def cumulative(self) -> np.ndarray:
        """`cumulative[i]`: how many values are below `keys[i]` (and `cumulative[-1] == n`)."""
        return np.concatenate(([0], np.cumsum(self.counts)))


def numerical_stats(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, ColumnStats]:
    """Summarise numerical columns together: one float64 block, one column-wise sort (missing sort last)."""
    if not columns:
        return {}
    block = np.empty((len(frame), len(columns)), dtype=np.float64, order="F")
    for j, column in enumerate(columns):
        block[:, j] = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    block[np.isinf(block)] = np.nan
    block.sort(axis=0)  # Fortran order: each column is contiguous, so this is k contiguous sorts
    kept = np.count_nonzero(~np.isnan(block), axis=0)
    out: dict[str, ColumnStats] = {}
    for j, column in enumerate(columns):
        values = block[: kept[j], j]
        if values.size:
            starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
            keys, counts = values[starts], np.diff(np.append(starts, values.size))
            std = float(np.std(values))
        else:
            keys, counts, std = np.empty(0), np.empty(0, dtype=np.int64), math.nan
        out[column] = ColumnStats("numerical", int(kept[j]), len(frame) - int(kept[j]), keys, counts, std)
    return out


def categorical_stats(series: pd.Series) -> ColumnStats:
    """Count each category (missing dropped; infinities count as missing, as in Evidently)."""
    if series.dtype.kind == "f":
        series = series.replace([np.inf, -np.inf], np.nan)
    counts = series.value_counts(sort=False, dropna=True)
    counts = counts[counts > 0]  # a pandas Categorical also lists categories that never occur
    n = int(counts.sum())
    return ColumnStats("categorical", n, len(series) - n, counts.index.to_numpy(), counts.to_numpy(np.int64))


@dataclass(eq=False)
class ColumnPair:
    """A reference and a current summary of one column, with their union computed once, on demand."""

    reference: ColumnStats
    current: ColumnStats

    @cached_property
    def union(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distinct values of both sides, reference counts, current counts), aligned; zero where absent."""
        ref, cur = self.reference, self.current
        if ref.kind == "numerical":
            merged = np.concatenate((ref.keys, cur.keys))
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
            keys = merged[np.concatenate(([True], merged[1:] != merged[:-1]))]
            ref_counts = np.zeros(keys.size, dtype=np.int64)
            cur_counts = np.zeros(keys.size, dtype=np.int64)
            ref_counts[np.searchsorted(keys, ref.keys)] = ref.counts
            cur_counts[np.searchsorted(keys, cur.keys)] = cur.counts
            return keys, ref_counts, cur_counts
        ref_index, cur_index = pd.Index(ref.keys), pd.Index(cur.keys)
        union = ref_index.append(cur_index[~cur_index.isin(ref_index)])
        ref_counts = np.concatenate((ref.counts, np.zeros(len(union) - len(ref_index), dtype=np.int64)))
        cur_counts = np.zeros(len(union), dtype=np.int64)
        cur_counts[union.get_indexer(cur_index)] = cur.counts
        return union.to_numpy(), ref_counts, cur_counts

    @property
    def n_unique(self) -> int:
        return len(self.union[0])

    @property
    def only_in_current(self) -> list[str]:
        """Values of the current side that the reference never has, as sorted strings."""
        keys, ref_counts, _ = self.union
        return sorted(str(v) for v in keys[ref_counts == 0])


# ============================================================================ tests


class StatTest(abc.ABC):
    """A drift test: a score from two column summaries, and the rule that turns score + threshold into a flag."""

    key: ClassVar[str]
    display_name: ClassVar[str]  # Evidently's name for it, as its reports print it
    default_threshold: ClassVar[float]
    kinds: ClassVar[frozenset[str]]
    p_value: ClassVar[bool] = False  # True: small scores mean drift

    def score(self, pair: ColumnPair) -> float:
        return float(self._score(pair))

    @abc.abstractmethod
    def _score(self, pair: ColumnPair) -> float: ...

    def drifted(self, score: float, threshold: float) -> bool:
        """Evidently's rule: p-values drift below the threshold, distances at or above it (K-S overrides)."""
        return score < threshold if self.p_value else score >= threshold

    def severity(self, score: float, threshold: float) -> float:
        """The score against the threshold on one scale for every test (1: at the threshold, above: toward
        drift), so a heat map can colour p-values and distances alike."""
        low, high = (score, threshold) if self.p_value else (threshold, score)
        return math.inf if low <= 0 else high / low

    def caveat(self, pair: ColumnPair) -> str | None:
        """Why this verdict should be read with care on this pair, if it should."""
        return None


STATTESTS: dict[str, StatTest] = {}


def register(cls: type[StatTest]) -> type[StatTest]:
    """Make a test available by its key, to the default selection and to per-column overrides."""
    STATTESTS[cls.key] = cls()
    return cls


@register
class KolmogorovSmirnov(StatTest):
    """Two-sample K-S p-value (scipy's `ks_2samp`, exact up to 10,000 rows, asymptotic beyond)."""

    key, display_name, default_threshold = "ks", "K-S p_value", 0.05
    p_value = True
    kinds = frozenset({"numerical"})

    def _score(self, pair: ColumnPair) -> float:
        return float(stats.ks_2samp(pair.reference.values, pair.current.values).pvalue)

    def drifted(self, score: float, threshold: float) -> bool:
        return score <= threshold


@register
class ChiSquare(StatTest):
    """Chi-square goodness of fit of the current counts to the reference shares scaled to the current size."""

    key, display_name, default_threshold = "chisquare", "chi-square p_value", 0.05
    p_value = True
    kinds = frozenset({"categorical"})

    def _score(self, pair: ColumnPair) -> float:
        _, ref_counts, cur_counts = pair.union
        expected = ref_counts * (pair.current.n / pair.reference.n)
        with np.errstate(divide="ignore", invalid="ignore"):  # expected 0: see `caveat`
            return float(stats.chisquare(cur_counts, expected).pvalue)

    def caveat(self, pair: ColumnPair) -> str | None:
        new = pair.only_in_current
        if not new:
            return None
        return (
            f"{_listing(new)} only in current: their expected count is 0, which makes chi-square's p-value 0 "
            "(drift) however few such rows there are; compare the counts, or use jensenshannon or psi"
        )


@register
class ZTest(StatTest):
    """Two-proportion Z-test on the share of rows that are not the smallest value (meant for binary columns)."""

    key, display_name, default_threshold = "z", "Z-test p_value", 0.05
    p_value = True
    kinds = frozenset({"categorical"})

    def _score(self, pair: ColumnPair) -> float:
        ref, cur = pair.reference, pair.current
        if ref.keys.size == 1 and cur.keys.size == 1 and ref.keys[0] == cur.keys[0]:
            return 1.0
        keys, ref_counts, cur_counts = pair.union
        first = min(range(len(keys)), key=keys.__getitem__)
        n1, n2 = ref.n, cur.n
        p1 = float(n1 - ref_counts[first]) / n1
        p2 = float(n2 - cur_counts[first]) / n2
        pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
        return float(2 * (1 - stats.norm.cdf(np.abs(z))))


@register
class WassersteinNormed(StatTest):
    """First Wasserstein distance divided by the reference's standard deviation (at least 0.001)."""

    key, display_name, default_threshold = "wasserstein", "Wasserstein distance (normed)", 0.1
    kinds = frozenset({"numerical"})

    def _score(self, pair: ColumnPair) -> float:
        keys, ref_counts, cur_counts = pair.union
        ref_cdf = np.cumsum(ref_counts)[:-1] / pair.reference.n
        cur_cdf = np.cumsum(cur_counts)[:-1] / pair.current.n
        distance_ = float(np.dot(np.abs(ref_cdf - cur_cdf), np.diff(keys)))
        return distance_ / max(pair.reference.std, 0.001)


@register
class JensenShannon(StatTest):
    """Jensen-Shannon distance (natural log) between the two sides' shares per value or per Sturges bin."""

    key, display_name, default_threshold = "jensenshannon", "Jensen-Shannon distance", 0.1
    kinds = frozenset({"numerical", "categorical"})

    def _score(self, pair: ColumnPair) -> float:
        ref_shares, cur_shares = binned_shares(pair, fill_zeros=False)
        return float(distance.jensenshannon(ref_shares, cur_shares))


@register
class PopulationStabilityIndex(StatTest):
    """PSI: sum of (ref - cur) * ln(ref / cur) over values or Sturges bins; empty cells get a tiny share."""

    key, display_name, default_threshold = "psi", "PSI", 0.1
    kinds = frozenset({"numerical", "categorical"})

    def _score(self, pair: ColumnPair) -> float:
        ref_shares, cur_shares = binned_shares(pair, fill_zeros=True)
        return float(np.sum((ref_shares - cur_shares) * np.log(ref_shares / cur_shares)))


def binned_shares(pair: ColumnPair, *, fill_zeros: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each side's share per distinct value, or per Sturges bin of both sides for many-valued numbers.

    `fill_zeros` (PSI) replaces empty cells by a millionth of the smallest share (at most 1e-4), so the
    logarithm stays finite, as Evidently does.
    """
    ref, cur = pair.reference, pair.current
    if ref.kind == "numerical" and ref.keys.size > HISTOGRAM_MIN_VALUES:
        edges = sturges_edges(min(ref.keys[0], cur.keys[0]), max(ref.keys[-1], cur.keys[-1]), ref.n + cur.n)
        ref_shares, cur_shares = _histogram(ref, edges) / ref.n, _histogram(cur, edges) / cur.n
    else:
        _, ref_counts, cur_counts = pair.union
        ref_shares, cur_shares = ref_counts / ref.n, cur_counts / cur.n
    if fill_zeros:
        for shares in (ref_shares, cur_shares):
            smallest = shares[shares != 0].min()
            np.place(shares, shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return ref_shares, cur_shares


def sturges_edges(low: float, high: float, size: int) -> np.ndarray:
    """`np.histogram_bin_edges(values, "sturges")` from the values' range and count alone."""
    first, last = float(low), float(high)
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = (last - first) / (np.log2(size) + 1.0)
    n_bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, n_bins + 1, endpoint=True)


def _histogram(column: ColumnStats, edges: np.ndarray) -> np.ndarray:
    """`np.histogram(values, edges)[0]` from the sorted distinct values and their counts."""
    cum = column.cumulative
    below = cum[np.searchsorted(column.keys, edges[:-1], side="left")]
    through_last = cum[np.searchsorted(column.keys, edges[-1:], side="right")]
    return np.diff(np.concatenate((below, through_last)))


def default_test(kind: ColumnKind, n_reference: int, n_unique: int) -> StatTest:
    """Evidently's default: by column type, reference size (non-missing rows) and distinct values of both."""
    many_valued_number = kind == "numerical" and n_unique > FEW_VALUES
    if n_reference <= SMALL_REFERENCE_ROWS:
        if many_valued_number:
            return STATTESTS["ks"]
        return STATTESTS["chisquare"] if n_unique > 2 else STATTESTS["z"]
    return STATTESTS["wasserstein"] if many_valued_number else STATTESTS["jensenshannon"]


# ============================================================================ configuration


class ColumnTest(BaseModel):
    """A per-column override: which test (a `STATTESTS` key) and/or which threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    test: str | None = None
    threshold: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @field_validator("test")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in STATTESTS:
            raise ValueError(f"unknown test {value!r} (known: {', '.join(sorted(STATTESTS))})")
        return value


class DriftConfig(BaseModel):
    """Which columns to compare and how: column types, per-column overrides, the dataset-drift share.

    `min_rows`: a side with fewer non-missing values than this is not tested (reported as insufficient
    data): a p-value or distance from a handful of rows is noise that would raise alerts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    numerical: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    overrides: dict[str, ColumnTest] = Field(default_factory=dict)
    drift_share: float = Field(default=DEFAULT_DRIFT_SHARE, gt=0, le=1)
    min_rows: int = Field(default=DEFAULT_MIN_ROWS, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> DriftConfig:
        columns = [*self.numerical, *self.categorical]
        if not columns:
            raise ValueError("no columns to compare: give numerical and/or categorical columns")
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"column(s) {', '.join(repeated)} listed twice (or as both numerical and categorical)")
        for column, override in self.overrides.items():
            if column not in columns:
                raise ValueError(f"override for column {column!r}, which is not compared")
            if override.test is not None and self.kind(column) not in STATTESTS[override.test].kinds:
                kinds = " or ".join(sorted(STATTESTS[override.test].kinds))
                raise ValueError(f"column {column!r} is {self.kind(column)}; test {override.test!r} takes {kinds}")
        return self

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.numerical, *self.categorical)

    def kind(self, column: str) -> ColumnKind:
        return "numerical" if column in self.numerical else "categorical"

    def restricted_to(self, columns: Sequence[str]) -> DriftConfig:
        """The same settings for a subset of the columns (e.g. those with enough values to test)."""
        keep = set(columns)
        return self.model_copy(
            update={
                "numerical": tuple(c for c in self.numerical if c in keep),
                "categorical": tuple(c for c in self.categorical if c in keep),
                "overrides": {c: o for c, o in self.overrides.items() if c in keep},
            }
        )


def drift_config(**fields: Any) -> DriftConfig:
    """`DriftConfig(**fields)`, with validation failures as a `FrameError` naming each field."""
    try:
        return DriftConfig(**fields)
    except ValidationError as exc:
        raise FrameError(f"drift settings: {validation_message(exc)}") from None


# ============================================================================ results


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict. `test` is None when it was not tested; `note` then says why."""

    column: str
    kind: ColumnKind
    test: str | None
    test_name: str | None
    score: float | None
    threshold: float | None
    drift: bool | None
    n_reference: int
    n_current: int
    missing_current: int
    new_categories: tuple[str, ...] = ()
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["new_categories"] = list(self.new_categories)
        return out


@dataclass(frozen=True)
class DriftResult:
    """Every compared column's verdict, and the share of drifted columns among those tested."""

    columns: tuple[ColumnDrift, ...]
    n_reference: int
    n_current: int
    drift_share_threshold: float
    drifted_columns: int
    tested_columns: int
    drift_share: float | None
    dataset_drift: bool | None
    status: Status
    note: str | None = None

    def column(self, name: str) -> ColumnDrift:
        for column in self.columns:
            if column.column == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["columns"] = [c.to_dict() for c in self.columns]
        return out


# ============================================================================ the calculator


class DriftCalculator(Calculator[DriftResult]):
    """Per-column drift of current frames against one reference, whose statistics are computed once.

    Example: `DriftCalculator(drift_config(numerical=["a"], categorical=["b"])).fit(ref).calculate(cur)`
    """

    def __init__(self, config: DriftConfig) -> None:
        self.config = config
        self._reference: dict[str, ColumnStats] = {}
        self._n_reference = 0

    def _fit(self, reference: pd.DataFrame) -> None:
        frame = _checked_frame(reference, self.config, "reference")
        if len(frame) < self.config.min_rows:
            raise FrameError(
                f"reference: {len(frame)} rows, need at least {self.config.min_rows} to compare anything with it"
            )
        self._reference = _column_stats(frame, self.config)
        self._n_reference = len(frame)

    def _calculate(self, current: pd.DataFrame) -> DriftResult:
        config = self.config
        frame = _checked_frame(current, config, "current")
        if len(frame) < config.min_rows:
            return DriftResult(
                (), self._n_reference, len(frame), config.drift_share, 0, 0, None, None, INSUFFICIENT,
                f"{len(frame)} current rows, need at least {config.min_rows}",
            )  # fmt: skip
        current_stats = _column_stats(frame, config)
        for column in config.categorical:
            _check_same_kinds(column, self._reference[column], current_stats[column])
        verdicts = tuple(self._column(c, self._reference[c], current_stats[c]) for c in config.columns)
        tested = [v for v in verdicts if v.drift is not None]
        drifted = sum(bool(v.drift) for v in tested)
        if not tested:
            return DriftResult(
                verdicts, self._n_reference, len(frame), config.drift_share, 0, 0, None, None, INSUFFICIENT,
                "no column has enough values on both sides",
            )  # fmt: skip
        share = drifted / len(tested)
        return DriftResult(
            verdicts,
            self._n_reference,
            len(frame),
            config.drift_share,
            drifted,
            len(tested),
            share,
            share >= config.drift_share,
            "ok",
        )

    def _column(self, column: str, ref: ColumnStats, cur: ColumnStats) -> ColumnDrift:
        kind = self.config.kind(column)
        pair = ColumnPair(ref, cur)
        new = tuple(pair.only_in_current) if kind == "categorical" and cur.n and ref.n else ()
        short = [(side, s) for side, s in (("reference", ref), ("current", cur)) if s.n < self.config.min_rows]
        if short:
            side, s = short[0]
            what = "no values (all missing)" if s.n == 0 else f"{s.n} values ({s.n_missing} missing)"
            note = f"{side} has {what}; need at least {self.config.min_rows} to test"
            return ColumnDrift(column, kind, None, None, None, None, None, ref.n, cur.n, cur.n_missing, new, note)
        override = self.config.overrides.get(column, ColumnTest())
        test = STATTESTS[override.test] if override.test else default_test(kind, ref.n, pair.n_unique)
        threshold = override.threshold if override.threshold is not None else test.default_threshold
        score = test.score(pair)
        notes = [n for n in (test.caveat(pair), _new_values_note(new, test)) if n]
        return ColumnDrift(
            column,
            kind,
            test.key,
            test.display_name,
            score,
            threshold,
            bool(test.drifted(score, threshold)),
            ref.n,
            cur.n,
            cur.n_missing,
            new,
            "; ".join(notes) or None,
        )


def compare(reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig) -> DriftResult:
    """One comparison: fit on `reference`, calculate on `current`."""
    return DriftCalculator(config).fit(reference).calculate(current)


def _checked_frame(frame: pd.DataFrame, config: DriftConfig, side: str) -> pd.DataFrame:
    """The frame if it has every column and numerical ones hold numbers; else a `FrameError` naming them."""
    missing = [c for c in config.columns if c not in frame.columns]
    if missing:
        raise FrameError(f"{side}: missing column(s) {', '.join(missing)} (it has: {', '.join(map(str, frame))})")
    for column in config.numerical:
        series = frame[column]
        if not _holds_numbers(series) and series.notna().any():
            raise FrameError(
                f"{side}: column {column} is numerical but holds {series.dtype} values "
                f"(e.g. {series.dropna().iloc[0]!r}); declare it categorical or convert it"
            )
    return frame


def _column_stats(frame: pd.DataFrame, config: DriftConfig) -> dict[str, ColumnStats]:
    numeric_frame = frame[list(config.numerical)]
    all_missing = [c for c in config.numerical if not _holds_numbers(numeric_frame[c])]
    if all_missing:  # an all-missing column may come with object dtype; its values are NaN all the same
        numeric_frame = numeric_frame.assign(**{c: np.nan for c in all_missing})
    out = numerical_stats(numeric_frame, config.numerical)
    out.update({c: categorical_stats(frame[c]) for c in config.categorical})
    return out


def _holds_numbers(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype)


def value_kinds(keys: np.ndarray) -> frozenset[str]:
    """What a column's distinct values are: "numbers", "strings", or other type names."""
    if keys.dtype.kind in "biuf":
        return frozenset({"numbers"}) if keys.size else frozenset()
    return frozenset(map(_kind, keys))


def _kind(value: Any) -> str:
    return (
        "numbers"
        if isinstance(value, numbers.Number)
        else "strings"
        if isinstance(value, str)
        else type(value).__name__
    )


def _check_same_kinds(column: str, ref: ColumnStats, cur: ColumnStats) -> None:
    """Categories of another kind than the reference's (98001 for "98001") would all count as new: refuse them."""
    ref_kinds, cur_kinds = value_kinds(ref.keys), value_kinds(cur.keys)
    if ref_kinds and not cur_kinds <= ref_kinds:
        example = next(v for v in cur.keys if _kind(v) not in ref_kinds)
        example = example.item() if isinstance(example, np.generic) else example
        raise FrameError(
            f"column {column}: the reference holds {' and '.join(sorted(ref_kinds))}, the current "
            f"{' and '.join(sorted(cur_kinds))} (e.g. {example!r}); no category would match - "
            "read both sides with the same types"
        )


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(repr(v) for v in items[:NEW_CATEGORIES_LISTED])
    more = f" and {len(items) - NEW_CATEGORIES_LISTED} more" if len(items) > NEW_CATEGORIES_LISTED else ""
    return f"value(s) {shown}{more}"


def _new_values_note(new: tuple[str, ...], test: StatTest) -> str | None:
    if not new or test.key == "chisquare":  # chi-square's caveat already names them
        return None
    return f"new in current: {_listing(new)}"
