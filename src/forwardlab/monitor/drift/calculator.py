"""`DriftCalculator`: per-column drift of current frames against one reference summarised once, and its
results (`ColumnDrift` per column, `DriftResult` per comparison); `compare` for a single comparison."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from forwardlab.monitor.base import Calculator
from forwardlab.monitor.drift.config import ColumnTest, DriftConfig
from forwardlab.monitor.drift.stats import (
    ColumnKind,
    ColumnPair,
    ColumnStats,
    categorical_stats,
    numerical_stats,
    value_kind,
    value_kinds,
)
from forwardlab.monitor.drift.stattests import STATTESTS, StatTest, default_test, listing
from forwardlab.monitor.errors import FrameError
from forwardlab.monitor.frames import require_columns, require_numbers

Status = Literal["ok", "insufficient data"]
INSUFFICIENT: Literal["insufficient data"] = "insufficient data"


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
    require_columns(frame, config.columns, side)
    require_numbers(frame, config.numerical, side)
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


def _check_same_kinds(column: str, ref: ColumnStats, cur: ColumnStats) -> None:
    """Categories of another kind than the reference's (98001 for "98001") would all count as new: refuse them."""
    ref_kinds, cur_kinds = value_kinds(ref.keys), value_kinds(cur.keys)
    if ref_kinds and not cur_kinds <= ref_kinds:
        example = next(v for v in cur.keys if value_kind(v) not in ref_kinds)
        example = example.item() if isinstance(example, np.generic) else example
        raise FrameError(
            f"column {column}: the reference holds {' and '.join(sorted(ref_kinds))}, the current "
            f"{' and '.join(sorted(cur_kinds))} (e.g. {example!r}); no category would match - "
            "read both sides with the same types"
        )


def _new_values_note(new: tuple[str, ...], test: StatTest) -> str | None:
    if not new or test.key == "chisquare":  # chi-square's caveat already names them
        return None
    return f"new in current: {listing(new)}"
