"""The drift tests, registered by key: each scores a `ColumnPair` as the Evidently test it names does.

A test declares its key (what `--test` and `DriftConfig` overrides name, and what results record), the
Evidently stattest it reproduces (`evidently_name`, written out in the class: reports hand per-column
overrides to Evidently by that name), the name Evidently's reports print, its default threshold, the column
kinds it takes and its drift rule. `register` refuses a test that does not name its Evidently test;
`check_in_evidently` refuses, naming it, one whose name the installed Evidently does not register for every
kind the test takes. That check imports Evidently (seconds), so it runs where Evidently is used anyway:
when `reports` is imported, before any window is computed, rather than as a failed report per window.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Sequence
from typing import ClassVar

import numpy as np
from scipy import stats
from scipy.spatial import distance

from forwardlab.monitor.drift.stats import ColumnKind, ColumnPair, ColumnStats
from forwardlab.monitor.errors import StatTestError

SMALL_REFERENCE_ROWS = 1000  # Evidently's switch from tests (p-values) to distances
FEW_VALUES = 5  # at most this many distinct values: a numerical column is tested like a categorical one
HISTOGRAM_MIN_VALUES = 20  # above this many distinct reference values, PSI/JS bin numbers (Sturges)
NEW_CATEGORIES_LISTED = 20


class StatTest(abc.ABC):
    """A drift test: a score from two column summaries, and the rule that turns score + threshold into a flag."""

    key: ClassVar[str]
    evidently_name: ClassVar[str]  # the Evidently stattest it reproduces (its registry key)
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
    """Make a test available by its key, to the default selection and to per-column overrides.

    The test must name its Evidently stattest in its own class body (not inherit one: each test is checked
    against Evidently by that name), and its key must be new.
    """
    name = cls.__dict__.get("evidently_name")
    if not isinstance(name, str) or not name:
        raise StatTestError(f"drift test {cls.__name__}: declare evidently_name, the Evidently stattest it reproduces")
    if cls.key in STATTESTS:
        raise StatTestError(
            f"drift test {cls.__name__}: key {cls.key!r} is already {type(STATTESTS[cls.key]).__name__}'s"
        )
    STATTESTS[cls.key] = cls()
    return cls


@register
class KolmogorovSmirnov(StatTest):
    """Two-sample K-S p-value (scipy's `ks_2samp`, exact up to 10,000 rows, asymptotic beyond)."""

    key, display_name, default_threshold = "ks", "K-S p_value", 0.05
    evidently_name = "ks"
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
    evidently_name = "chisquare"
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
            f"{listing(new)} only in current: their expected count is 0, which makes chi-square's p-value 0 "
            "(drift) however few such rows there are; compare the counts, or use jensenshannon or psi"
        )


@register
class ZTest(StatTest):
    """Two-proportion Z-test on the share of rows that are not the smallest value (meant for binary columns)."""

    key, display_name, default_threshold = "z", "Z-test p_value", 0.05
    evidently_name = "z"
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
    evidently_name = "wasserstein"
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
    evidently_name = "jensenshannon"
    kinds = frozenset({"numerical", "categorical"})

    def _score(self, pair: ColumnPair) -> float:
        ref_shares, cur_shares = binned_shares(pair, fill_zeros=False)
        return float(distance.jensenshannon(ref_shares, cur_shares))


@register
class PopulationStabilityIndex(StatTest):
    """PSI: sum of (ref - cur) * ln(ref / cur) over values or Sturges bins; empty cells get a tiny share."""

    key, display_name, default_threshold = "psi", "PSI", 0.1
    evidently_name = "psi"
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


def listing(items: Sequence[str]) -> str:
    """Values for a message: the first `NEW_CATEGORIES_LISTED`, then how many more."""
    shown = ", ".join(repr(v) for v in items[:NEW_CATEGORIES_LISTED])
    more = f" and {len(items) - NEW_CATEGORIES_LISTED} more" if len(items) > NEW_CATEGORIES_LISTED else ""
    return f"value(s) {shown}{more}"


def check_in_evidently(tests: Iterable[StatTest] | None = None) -> None:
    """Refuse with a `StatTestError` naming them the tests (default: every registered one) whose
    `evidently_name` the installed Evidently does not register for each column kind the test takes."""
    from evidently.legacy.calculations.stattests.registry import (  # Evidently takes seconds to import
        StatTestInvalidFeatureTypeError,
        StatTestNotFoundError,
        get_registered_stattest,
    )
    from evidently.legacy.core import ColumnType

    column_types = {"numerical": ColumnType.Numerical, "categorical": ColumnType.Categorical}
    problems = []
    for test in STATTESTS.values() if tests is None else tests:
        for kind in sorted(test.kinds):
            try:
                get_registered_stattest(test.evidently_name, column_types[kind])
            except StatTestNotFoundError:
                problems.append(f"{test.key} names Evidently test {test.evidently_name!r}, which Evidently lacks")
                break
            except StatTestInvalidFeatureTypeError:
                problems.append(f"{test.key} takes {kind} columns, Evidently's {test.evidently_name!r} does not")
    if problems:
        raise StatTestError(f"drift tests Evidently cannot run: {'; '.join(problems)}")
