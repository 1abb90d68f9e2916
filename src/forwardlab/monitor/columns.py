"""What a monitoring run compares, as its caller names it: the engine (`windows`, `drift`, `performance`,
`reports`) knows no model and no dataset, only the roles its caller gives the columns.

The price service's roles are `house.house_columns()`; another model's caller builds its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forwardlab.monitor.drift.config import DriftConfig, drift_config

if TYPE_CHECKING:
    from forwardlab.monitor.segments import Segments


@dataclass(frozen=True)
class ColumnRoles:
    """The columns of a monitoring run and the role of each.

    `features`: the model's inputs with their drift settings (numerical and categorical columns, per-column
    tests, drift share, minimum rows). `target` and `prediction`: the truth and the model's output, numbers;
    the regression metrics compare them, and each is drift-tested like a numerical feature (`targets`) with
    `target_overrides` (column -> test and/or threshold, as `DriftConfig.overrides`) and the features' minimum
    rows. `strings`: columns kept as strings when a reference is read from a CSV file (identifiers such as
    zip codes, whose leading zeros matter). `segments`: how each window's error is broken down (`segments`);
    a segment whose column the reference lacks (a file without `model_version`) is left out of that run.
    A bad target override is a `FrameError` naming it.
    """

    features: DriftConfig
    target: str
    prediction: str
    target_overrides: Mapping[str, Any] = field(default_factory=dict)
    strings: tuple[str, ...] = ()
    segments: tuple[Segments, ...] = ()
    targets: DriftConfig = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        targets = drift_config(
            numerical=(self.target, self.prediction),
            overrides=dict(self.target_overrides),
            min_rows=self.features.min_rows,
        )
        object.__setattr__(self, "targets", targets)

    @property
    def monitored(self) -> tuple[str, ...]:
        """Every drift-tested column: the features, then the target and the prediction."""
        return (*self.features.columns, self.target, self.prediction)
