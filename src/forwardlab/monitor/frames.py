"""Checks on the frames callers hand the monitoring engine, so every calculator words a bad frame alike."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from forwardlab.monitor.errors import FrameError


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """A `FrameError` naming `what`, every column of `columns` that `frame` lacks, and the columns it has."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FrameError(f"{what}: missing column(s) {', '.join(missing)} (it has: {', '.join(map(str, frame))})")


def require_numbers(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """A `FrameError` naming `what` and the first of `columns` holding something else than numbers (a column
    with no value at all passes whatever its dtype: read from a file, it often comes as object)."""
    for column in columns:
        series = frame[column]
        if not pd.api.types.is_numeric_dtype(series.dtype) and series.notna().any():
            raise FrameError(
                f"{what}: column {column} must hold numbers but holds {series.dtype} values "
                f"(e.g. {series.dropna().iloc[0]!r}); convert it, or declare it categorical if it is a feature"
            )
