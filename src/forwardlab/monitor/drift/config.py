"""Which columns a drift comparison takes and how: column kinds, per-column test overrides (by `STATTESTS`
key), the dataset-drift share and the minimum rows; pydantic models, so settings from files and flags are
validated with messages that name the field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forwardlab.monitor.base import validation_message
from forwardlab.monitor.drift.stats import ColumnKind
from forwardlab.monitor.drift.stattests import STATTESTS
from forwardlab.monitor.errors import FrameError

DEFAULT_DRIFT_SHARE = 0.5
DEFAULT_MIN_ROWS = 30


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
