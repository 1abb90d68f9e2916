"""Column statistics: one side of one column summarised once (`ColumnStats`), and two sides side by side
(`ColumnPair`); every drift test computes its score from a pair."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

ColumnKind = Literal["numerical", "categorical"]


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


def value_kinds(keys: np.ndarray) -> frozenset[str]:
    """What a column's distinct values are: "numbers", "strings", or other type names."""
    if keys.dtype.kind in "biuf":
        return frozenset({"numbers"}) if keys.size else frozenset()
    return frozenset(map(value_kind, keys))


def value_kind(value: Any) -> str:
    """A value's kind: "numbers", "strings", or its type name."""
    return (
        "numbers"
        if isinstance(value, numbers.Number)
        else "strings"
        if isinstance(value, str)
        else type(value).__name__
    )
