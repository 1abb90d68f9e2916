"""Data drift per column: the test Evidently would run, on statistics computed once per reference.

Evidently's DataDriftPreset recomputes everything from raw rows for every report (each column's test, plus
histograms, correlations and plots, several times over). A monitoring run compares many windows with one
reference, so here each side of a column is summarised once (`stats.ColumnStats`: distinct values with
their counts, sorted for numbers) and every test works from two summaries. The reference's summaries are
made by `calculator.DriftCalculator.fit` and reused by every `calculate`; numeric columns are summarised
together with one column-wise sort.

Parity contract with Evidently 0.7 (`evidently.legacy.calculations.stattests`), checked by
tests/monitor/drift/test_parity.py on identical frames: the same test per column, the same score (within
1e-9) and the same drift flag. That means copying its rules, including the odd ones:
- missing and infinite values are dropped before anything else;
- the default test depends on the column type, the reference's size (1,000 rows) and the number of
  distinct values of both sides together: K-S / chi-square / Z-test at small sizes, normed Wasserstein /
  Jensen-Shannon above (see `stattests.default_test`);
- the comparison differs per test: K-S drifts at p <= threshold, chi-square and Z at p < threshold,
  distances at score >= threshold;
- a category seen only in the current window has expected count 0 under chi-square, which makes its
  p-value 0 (drift) however small the change: we keep the verdict and say so in the column's note.

Modules: `stats` (one side of a column, and a pair of sides), `stattests` (the tests, registered by key, each
naming the Evidently test it reproduces), `config` (which columns, which tests: `DriftConfig`), `calculator`
(`DriftCalculator`, `compare` and their results).
"""
