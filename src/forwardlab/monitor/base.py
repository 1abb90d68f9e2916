"""The shape every monitoring calculation shares (NannyML's): fit once on the reference, then calculate per window.

`fit` and `calculate` are public and do the bookkeeping (checking the order of calls); subclasses implement
`_fit` (summarise the reference, once) and `_calculate` (compare one window with that summary). Keeping the
reference's summary in the calculator is what lets a monitoring run reuse it for every window.

`validation_message` turns a pydantic error into the one-line message our errors carry (settings and
alert rules are pydantic models).
"""

from __future__ import annotations

import abc
from typing import Generic, Self, TypeVar

import pandas as pd
from pydantic import ValidationError

ResultT = TypeVar("ResultT")


class Calculator(abc.ABC, Generic[ResultT]):
    """Fit on a reference frame, then calculate a result for any number of current frames."""

    _fitted: bool = False

    def fit(self, reference: pd.DataFrame) -> Self:
        """Summarise `reference` once; later `calculate` calls compare against this summary."""
        self._fit(reference)
        self._fitted = True
        return self

    @property
    def fitted(self) -> bool:
        return self._fitted

    def calculate(self, current: pd.DataFrame) -> ResultT:
        """Compare `current` with the fitted reference."""
        if not self._fitted:
            raise RuntimeError(f"{type(self).__name__}.calculate called before fit(reference)")
        return self._calculate(current)

    @abc.abstractmethod
    def _fit(self, reference: pd.DataFrame) -> None: ...

    @abc.abstractmethod
    def _calculate(self, current: pd.DataFrame) -> ResultT: ...


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as one line: `field.path: message; ...`."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")  # pydantic's prefix for our own checks
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
