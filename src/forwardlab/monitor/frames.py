"""Checks on the frames callers hand the monitoring engine, so every calculator words a bad frame alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from forwardlab.monitor.errors import FrameError

if TYPE_CHECKING:
    import pandas as pd


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """A `FrameError` naming `what`, every column of `columns` that `frame` lacks, and the columns it has."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FrameError(f"{what}: missing column(s) {', '.join(missing)} (it has: {', '.join(map(str, frame))})")
