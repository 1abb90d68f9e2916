"""Multivariate drift: a change in how the features go together, which no per-column test can see.

Two calculators on the `Calculator` pattern, NannyML's two multivariate methods, each fitted once on the
reference and then run per window:

`ReconstructionDrift` (NannyML's DataReconstructionDriftCalculator): PCA fitted on the encoded, standardized
reference keeps the directions that hold 65% of its variance; a row's reconstruction error is its distance
from that subspace. Rows that stop following the reference's correlations (or leave its ranges) lie further
from it, so a window's mean error rises. It is blind to moves along the directions it keeps: 30% larger
houses move living area and room counts together, along the first component, and fit as well as ever (their
error even falls a little, which the lower threshold sometimes catches); a quarter of sales in new zip codes
moves the zip-code share along a kept component too (NannyML's calculator misses both the same way). Those
are for the per-column tests and the classifier. Encoding: numerical columns as they are; categorical ones by their
share of the reference's rows (NannyML's CountEncoder). One number per column keeps PCA's variance about the
features: one-hot would make zip code 70 of 78 columns, nearly independent dummies that the 65% would be
spent on. Shares impose no false order on codes, and a category the reference never saw gets share 0, far
from every reference row, so new categories raise the error. Missing values: the reference's mean (numerical)
or most frequent category (categorical), as NannyML.

`DomainClassifierDrift` (NannyML's DomainClassifierCalculator): a gradient-boosted classifier (scikit-learn's
HistGradientBoostingClassifier, categorical columns as native categories) tries to tell window rows from as
many reference rows; its cross-validated AUC is 0.5 when it cannot, 1 when the two never overlap. Balancing
the two sides keeps AUCs of windows of different sizes on one scale.

Thresholds come from the reference, for the window's own size (monthly windows range from 800 to 1,600 rows):
- reconstruction: the reference rows' mean error +- 3 standard deviations of a window's mean. The rows'
  errors are held out (each from a PCA fitted without it), as a window's are. The deviation is the larger of
  the sampling error (the rows' spread / sqrt(n), from thousands of rows) and the spread of the means of the
  reference cut in order into chunks of the window's size (NannyML's whole estimate: from the six chunks of
  a six-month reference it is itself uncertain by about 30% and can come out narrow by chance; the chunks
  keep what sampling alone misses, such as seasons in the reference), widened by the uncertainty of the
  reference's own mean. On 96 no-drift months (8 market seeds) one alerted, at 3.2 deviations (NannyML's
  band, on the same months: three). The errors themselves equal NannyML's (within 1e-13);
- domain classifier: AUCs of reference-against-reference splits (`null_splits` of them) measure the
  classifier's AUC when nothing changed, in units of the Mann-Whitney standard deviation of an AUC for those
  sizes; the upper threshold is 0.5 + (mean + 4 sd) of those units at the window's size. The
  cross-validated AUC of samples from one population spreads wider than Mann-Whitney's (the classifier
  learns the sample's own chance imbalance of a 70-value zip code, which its held-out rows share: measured
  at 1.0-1.5 times, and in one split of about 300, 4.9 deviations), hence 4 rather than 3. NannyML's fixed
  0.65 ignores the window's size: at 1,200 rows a month it misses the sudden covariate shift and the new zip
  codes (AUC 0.62), which this threshold (about 0.55) catches in their first month, with no false alarm in
  the benchmark's 36 months before an onset (benchmarks/multivariate.py) nor in 96 no-drift months of 8
  market seeds. AUCs below 0.5 are no drift, so
  there is no lower threshold.

Both are cheap per window at the ~1,200 rows of a month: PCA is one matrix product; the classifier trains
`folds` times on about 1,600 rows, in one thread (on data this small OpenMP threads cost more than they
save, and on a busy machine their spinning made a fit 15 times slower).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from forwardlab.monitor.base import Calculator
from forwardlab.monitor.drift.config import DEFAULT_MIN_ROWS, DriftConfig, drift_config
from forwardlab.monitor.drift.stats import value_kind, value_kinds
from forwardlab.monitor.errors import FrameError
from forwardlab.monitor.frames import require_columns, require_numbers

DEFAULT_VARIANCE = 0.65  # NannyML's default share of variance the PCA keeps
RECONSTRUCTION_STD = 3.0
CLASSIFIER_STD = 4.0
NULL_SPLITS = 10
NULL_ROWS = 1_000  # rows a side of each reference-against-reference split, unless the reference is smaller
MAX_CATEGORIES = 254  # HistGradientBoostingClassifier takes category codes below 255 (its bins)


@dataclass(frozen=True)
class ReconstructionResult:
    """A window's mean reconstruction error and the reference's band for a window of its size; None (all but
    `n`) when the window has fewer rows than the calculator's minimum."""

    value: float | None
    lower: float | None
    upper: float | None
    alert: bool | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DomainClassifierResult:
    """A window's cross-validated AUC against the reference, and the highest AUC the reference gives a window
    of its size when nothing changed; None (all but `n`) when the window has too few rows."""

    value: float | None
    upper: float | None
    alert: bool | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Columns:
    """The compared columns, checked on every frame, and the kinds of value (numbers, strings) each categorical
    one held in the reference."""

    def __init__(self, numerical: Sequence[str], categorical: Sequence[str], min_rows: int) -> None:
        self.config: DriftConfig = drift_config(
            numerical=tuple(numerical), categorical=tuple(categorical), min_rows=min_rows
        )
        self.kinds: dict[str, frozenset[str]] = {}

    @property
    def numerical(self) -> tuple[str, ...]:
        return self.config.numerical

    @property
    def categorical(self) -> tuple[str, ...]:
        return self.config.categorical

    def fit(self, reference: pd.DataFrame) -> pd.DataFrame:
        self.kinds = {}  # a new reference sets them anew
        frame = self.check(reference, "reference")
        if len(frame) < self.config.min_rows:
            raise FrameError(f"reference: {len(frame)} rows, need at least {self.config.min_rows}")
        for column in self.config.columns:
            if frame[column].isna().all():
                raise FrameError(f"reference: column {column} has no values")
        self.kinds = {c: value_kinds(pd.unique(frame[c].dropna())) for c in self.categorical}
        return frame

    def check(self, frame: pd.DataFrame, side: str) -> pd.DataFrame:
        """The frame, if it has every column, numbers in the numerical ones and, in the categorical ones,
        values of the reference's kinds (98001 never matches "98001": every row would look new)."""
        if not isinstance(frame, pd.DataFrame):
            raise FrameError(f"{side}: expected a pandas DataFrame, got {type(frame).__name__}")
        require_columns(frame, self.config.columns, side)
        require_numbers(frame, self.numerical, side)
        for column, known in self.kinds.items():
            values = pd.unique(frame[column].dropna())
            if value_kinds(values) <= known:
                continue
            example = next(v for v in values if value_kind(v) not in known)
            example = example.item() if isinstance(example, np.generic) else example
            raise FrameError(
                f"{side}: column {column} holds {value_kind(example)} (e.g. {example!r}), the reference "
                f"{' and '.join(sorted(known))}; no category would match - read both with the same types"
            )
        return frame

    def numbers(self, frame: pd.DataFrame) -> np.ndarray:
        """The numerical columns as a float matrix, NaN where missing or infinite."""
        out = np.empty((len(frame), len(self.numerical)))
        for i, column in enumerate(self.numerical):
            out[:, i] = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        out[np.isinf(out)] = np.nan
        return out


# ============================================================================ PCA reconstruction error


class ReconstructionDrift(Calculator[ReconstructionResult]):
    """Mean PCA reconstruction error per window, against a band from the reference (see the module).

    `variance`: the share of the reference's variance the PCA keeps. `chunk_size`: the size of the reference
    chunks whose means' spread widens the band (default: each window's size). `min_rows`: smaller windows get
    no verdict.
    """

    def __init__(
        self,
        numerical: Sequence[str] = (),
        categorical: Sequence[str] = (),
        *,
        variance: float = DEFAULT_VARIANCE,
        n_std: float = RECONSTRUCTION_STD,
        chunk_size: int | None = None,
        min_rows: int = DEFAULT_MIN_ROWS,
    ) -> None:
        if not 0 < variance <= 1:
            raise FrameError(f"variance share {variance}: must be in (0, 1]")
        if chunk_size is not None and chunk_size < 1:
            raise FrameError(f"chunk size {chunk_size}: must be at least 1")
        if n_std <= 0:
            raise FrameError(f"n_std {n_std}: must be above 0")
        self.columns = _Columns(numerical, categorical, min_rows)
        self.variance, self.n_std, self.chunk_size = variance, n_std, chunk_size
        self._fill: np.ndarray = np.empty(0)
        self._shares: dict[str, pd.Series] = {}
        self._mean: np.ndarray = np.empty(0)
        self._scale: np.ndarray = np.empty(0)
        self._pca: PCA | None = None
        self._errors: np.ndarray = np.empty(0)

    @property
    def n_components(self) -> int:
        """How many principal components the fitted PCA keeps."""
        return 0 if self._pca is None else int(self._pca.n_components_)

    def _fit(self, reference: pd.DataFrame) -> None:
        frame = self.columns.fit(reference)
        self._fill = np.nanmean(self.columns.numbers(frame), axis=0) if self.columns.numerical else np.empty(0)
        self._shares = {c: frame[c].value_counts(normalize=True) for c in self.columns.categorical}
        encoded = self._encode(frame)
        self._mean = encoded.mean(axis=0)
        spread = encoded.std(axis=0)
        self._scale = np.where(spread > 0, spread, 1.0)  # a constant column stays 0 after centring
        standardized = (encoded - self._mean) / self._scale
        self._pca = PCA(n_components=self.variance if self.variance < 1 else None, svd_solver="full")
        self._pca.fit(standardized)
        self._errors = _held_out_errors(standardized, self._pca.n_components_)

    def _calculate(self, current: pd.DataFrame) -> ReconstructionResult:
        frame = self.columns.check(current, "current")
        n = len(frame)
        if n < self.columns.config.min_rows:
            return ReconstructionResult(None, None, None, None, n)
        value = float(self._row_errors((self._encode(frame) - self._mean) / self._scale).mean())
        lower, upper = self.band(n)
        return ReconstructionResult(value, lower, upper, not lower < value < upper, n)

    def band(self, n: int) -> tuple[float, float]:
        """(lower, upper): the reference's mean error -+ `n_std` deviations of a window's mean of `n` rows
        from it (the window's own spread, widened by the uncertainty of the reference's mean)."""
        errors = self._errors
        spread = float(errors.std(ddof=1)) / np.sqrt(n)
        size = self.chunk_size or n
        chunks = len(errors) // size
        if chunks >= 2:
            means = errors[: chunks * size].reshape(chunks, size).mean(axis=1)
            spread = max(spread, float(means.std(ddof=1)))
        spread *= np.sqrt(1 + n / len(errors))
        center = float(errors.mean())
        return max(center - self.n_std * float(spread), 0.0), center + self.n_std * float(spread)

    def _encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Numerical columns with missing values filled; categorical ones as their share of the reference."""
        numbers = self.columns.numbers(frame)
        numbers = np.where(np.isnan(numbers), self._fill, numbers)
        shares = []
        for column, share in self._shares.items():
            filled = frame[column].fillna(share.index[0])  # value_counts puts the most frequent first
            shares.append(filled.map(share).to_numpy(dtype=np.float64, na_value=0.0))  # unseen: share 0
        return np.column_stack([numbers, *shares])

    def _row_errors(self, standardized: np.ndarray) -> np.ndarray:
        assert self._pca is not None
        rebuilt = self._pca.inverse_transform(self._pca.transform(standardized))
        errors: np.ndarray = np.linalg.norm(standardized - rebuilt, axis=1)
        return errors


# ============================================================================ domain classifier


class DomainClassifierDrift(Calculator[DomainClassifierResult]):
    """Cross-validated AUC of a classifier telling window rows from reference rows (see the module).

    `seed` fixes the reference sample each window is compared with, the folds and the classifier, so a window
    gets the same AUC every run. `folds`: cross-validation folds. `max_iter`: boosting rounds. `null_splits`:
    reference-against-reference AUCs measured by `fit` for the threshold. `min_rows`: smaller windows get no
    verdict.
    """

    def __init__(
        self,
        numerical: Sequence[str] = (),
        categorical: Sequence[str] = (),
        *,
        seed: int = 0,
        folds: int = 3,
        max_iter: int = 50,
        n_std: float = CLASSIFIER_STD,
        null_splits: int = NULL_SPLITS,
        min_rows: int = DEFAULT_MIN_ROWS,
    ) -> None:
        if folds < 2:
            raise FrameError(f"folds {folds}: need at least 2 for cross-validation")
        if null_splits < 2:
            raise FrameError(f"null splits {null_splits}: need at least 2 to measure a spread")
        if n_std <= 0:
            raise FrameError(f"n_std {n_std}: must be above 0")
        self.columns = _Columns(numerical, categorical, max(min_rows, folds))
        self.seed, self.folds, self.max_iter = seed, folds, max_iter
        self.n_std, self.null_splits = n_std, null_splits
        self._categories: dict[str, pd.Index] = {}
        self._reference: np.ndarray = np.empty((0, 0))
        self.null_mean, self.null_std = 0.0, 1.0

    def _fit(self, reference: pd.DataFrame) -> None:
        frame = self.columns.fit(reference)
        self._categories = {
            c: frame[c].value_counts().index[:MAX_CATEGORIES] for c in self.columns.categorical
        }  # the most frequent; rarer and unseen ones share the next code
        self._reference = self._encode(frame)
        rng = np.random.default_rng(self.seed)
        size = min(NULL_ROWS, len(frame) // 2)
        units = []
        for _ in range(self.null_splits):
            rows = rng.permutation(len(frame))
            auc = self._auc(self._reference[rows[:size]], self._reference[rows[size : 2 * size]])
            units.append((auc - 0.5) / _mann_whitney_std(size, size))
        # Never below Mann-Whitney's own spread, nor centred below 0.5: ten splits can err both ways.
        self.null_mean = max(float(np.mean(units)), 0.0)
        self.null_std = max(float(np.std(units, ddof=1)), 1.0)

    def _calculate(self, current: pd.DataFrame) -> DomainClassifierResult:
        frame = self.columns.check(current, "current")
        n = len(frame)
        if n < self.columns.config.min_rows:
            return DomainClassifierResult(None, None, None, n)
        rng = np.random.default_rng(self.seed)
        size = min(n, len(self._reference))
        reference = self._reference[rng.choice(len(self._reference), size, replace=False)]
        window = self._encode(frame)
        window = window[np.lexsort(window.T[::-1])]  # rows in content order: a store's order is insertion order
        if n > size:
            window = window[rng.choice(n, size, replace=False)]
        value = self._auc(reference, window)
        upper = self.upper(size)
        return DomainClassifierResult(value, upper, value > upper, n)

    def upper(self, size: int) -> float:
        """The alert threshold for `size` rows a side: 0.5 + (mean + `n_std` sd) of the reference's null."""
        return min(0.5 + (self.null_mean + self.n_std * self.null_std) * _mann_whitney_std(size, size), 1.0)

    def _encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Numerical columns as numbers, categorical ones as codes of the reference's categories (rarer and
        unseen ones: one code past them); missing values stay NaN, which the classifier handles natively."""
        codes = []
        for column, categories in self._categories.items():
            series = frame[column]
            code = categories.get_indexer(series).astype(np.float64)
            code[code < 0] = len(categories)
            code[series.isna().to_numpy()] = np.nan
            codes.append(code)
        return np.column_stack([self.columns.numbers(frame), *codes])

    def _auc(self, reference: np.ndarray, window: np.ndarray) -> float:
        """Out-of-fold AUC of telling `window` rows (label 1) from `reference` rows (label 0)."""
        rows = np.concatenate([reference, window])
        labels = np.concatenate([np.zeros(len(reference)), np.ones(len(window))])
        categorical = [False] * len(self.columns.numerical) + [True] * len(self.columns.categorical)
        scores = np.empty(len(labels))
        folds = StratifiedKFold(self.folds, shuffle=True, random_state=self.seed)
        with threadpool_limits(1, user_api="openmp"):
            for train, test in folds.split(rows, labels):
                model = HistGradientBoostingClassifier(
                    max_iter=self.max_iter,
                    categorical_features=categorical,
                    early_stopping=False,
                    random_state=self.seed,
                )
                model.fit(rows[train], labels[train])
                scores[test] = model.predict_proba(rows[test])[:, 1]
        return float(roc_auc_score(labels, scores))


def _held_out_errors(standardized: np.ndarray, components: int, folds: int = 5) -> np.ndarray:
    """Each reference row's reconstruction error by a PCA fitted without it (same number of components).

    A PCA fits its own rows a little better than new ones: measured on the no-drift scenario, in-sample errors
    put windows 0.3 of their deviation above the reference's mean and spread them 13% wider than the
    rows' spread predicts; held-out errors, 0.16 and 4%. The number of components is fixed because near the
    variance share it can flip between folds (equal eigenvalues of independent columns).
    """
    fold = np.arange(len(standardized)) % folds  # interleaved: every fold spans the reference's whole period
    errors = np.empty(len(standardized))
    for k in range(folds):
        held = fold == k
        pca = PCA(n_components=components, svd_solver="full").fit(standardized[~held])
        rows = standardized[held]
        errors[held] = np.linalg.norm(rows - pca.inverse_transform(pca.transform(rows)), axis=1)
    return errors


def _mann_whitney_std(n_reference: int, n_current: int) -> float:
    """Standard deviation of an AUC (Mann-Whitney U / n1 n2) when scores carry no information about the side."""
    return float(np.sqrt((n_reference + n_current + 1) / (12.0 * n_reference * n_current)))
