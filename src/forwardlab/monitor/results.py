"""Monitoring results in the metrics store: time series per window and column, runs, and alert deliveries.

Four tables beside the predictions (created on first use; SQLAlchemy Core, SQLite or PostgreSQL):
- `monitoring_runs`: one row per run (settings, reference, reference metrics), kept as a log;
- `monitoring_windows`: one row per window [start, end): counts, drift share, target/prediction drift,
  regression metrics, and the full `monitoring.json` record;
- `monitoring_columns`: one row per window and column: test, score, threshold, drift;
- `monitoring_alerts`: one row per (rule, window) ever raised, with when it was delivered.

A run is saved in one transaction: a failed run leaves earlier runs as they were, and re-running a window
replaces its rows. Alerts are insert-if-new, so a (rule, window) is never raised, or delivered, twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from forwardlab.monitor.store import Store, UTCDateTime

results_metadata = sa.MetaData()
JSONType = sa.JSON().with_variant(postgresql.JSONB, "postgresql")
runs_table = sa.Table(
    "monitoring_runs",
    results_metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("window_spec", sa.String(32), nullable=False),
    sa.Column("reference", sa.String(1024), nullable=False),
    sa.Column("n_reference", sa.Integer, nullable=False),
    sa.Column("settings", JSONType, nullable=False),
    sa.Column("reference_metrics", JSONType, nullable=True),
)
windows_table = sa.Table(
    "monitoring_windows",
    results_metadata,
    sa.Column("window_start", UTCDateTime, primary_key=True),
    sa.Column("window_end", UTCDateTime, primary_key=True),
    sa.Column("run_id", sa.String(36), nullable=False, index=True),
    sa.Column("window_spec", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("n_current", sa.Integer, nullable=False),
    sa.Column("n_reference", sa.Integer, nullable=False),
    sa.Column("drift_share", sa.Float, nullable=True),
    sa.Column("dataset_drift", sa.Boolean, nullable=True),
    sa.Column("target_drift", sa.Boolean, nullable=True),
    sa.Column("prediction_drift", sa.Boolean, nullable=True),
    sa.Column("mae_usd", sa.Float, nullable=True),
    sa.Column("rmse_usd", sa.Float, nullable=True),
    sa.Column("mape_pct", sa.Float, nullable=True),
    sa.Column("mean_error_usd", sa.Float, nullable=True),
    sa.Column("r2", sa.Float, nullable=True),
    sa.Column("max_abs_error_usd", sa.Float, nullable=True),
    sa.Column("record", JSONType, nullable=False),
)
columns_table = sa.Table(
    "monitoring_columns",
    results_metadata,
    sa.Column("window_start", UTCDateTime, primary_key=True),
    sa.Column("window_end", UTCDateTime, primary_key=True),
    sa.Column("column_name", sa.String(128), primary_key=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # feature, target or prediction
    sa.Column("test", sa.String(32), nullable=True),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("drift", sa.Boolean, nullable=True),
    sa.Column("n_current", sa.Integer, nullable=False),
)
alerts_table = sa.Table(
    "monitoring_alerts",
    results_metadata,
    sa.Column("rule", sa.String(128), primary_key=True),
    sa.Column("window_start", UTCDateTime, primary_key=True),
    sa.Column("window_end", UTCDateTime, primary_key=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("raised_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
)


def ensure_tables(store: Store) -> None:
    """Create the results tables if this store does not have them yet (idempotent, replica-safe)."""
    try:
        results_metadata.create_all(store.engine)
    except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
        results_metadata.create_all(store.engine)  # another process created them at the same moment


def save_run(
    store: Store,
    run: Mapping[str, Any],
    windows: Sequence[Mapping[str, Any]],
    columns: Sequence[Mapping[str, Any]],
    alerts: Sequence[Mapping[str, Any]],
) -> None:
    """Store one run in one transaction: replace its windows' rows, add the run, add alerts not yet raised."""
    ensure_tables(store)
    with store.transaction() as conn:
        for window in windows:
            for table in (windows_table, columns_table):
                conn.execute(
                    table.delete().where(
                        table.c.window_start == window["window_start"], table.c.window_end == window["window_end"]
                    )
                )
        conn.execute(runs_table.insert(), [_finite(run)])
        if windows:
            conn.execute(windows_table.insert(), [_finite(w) for w in windows])
        if columns:
            conn.execute(columns_table.insert(), [_finite(c) for c in columns])
        if alerts:
            conn.execute(_insert_new(conn, alerts_table), [_finite(a) for a in alerts])


def undelivered(store: Store, keys: Iterable[tuple[str, datetime, datetime]]) -> set[tuple[str, datetime, datetime]]:
    """Which of these (rule, window start, window end) alerts have not been delivered yet."""
    wanted = set(keys)
    if not wanted:
        return set()
    a = alerts_table
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(a.c.rule, a.c.window_start, a.c.window_end).where(a.c.delivered_at.is_(None)))
        return wanted & {(r.rule, r.window_start, r.window_end) for r in rows}


def record_delivery(
    store: Store, key: tuple[str, datetime, datetime], *, delivered: bool, attempts: int, error: str | None
) -> None:
    """Remember how delivering one alert went (delivered ones are never sent again)."""
    a = alerts_table
    rule, start, end = key
    values: dict[str, Any] = {"attempts": a.c.attempts + attempts, "last_error": error}
    if delivered:
        values["delivered_at"] = datetime.now(UTC)
    with store.transaction() as conn:
        conn.execute(
            a.update().where(a.c.rule == rule, a.c.window_start == start, a.c.window_end == end).values(**values)
        )


def stored_records(store: Store, *, window_spec: str | None = None, end_before: datetime | None = None) -> list[Any]:
    """Stored `monitoring.json` records, oldest window first; optionally one spec, ending by `end_before`."""
    ensure_tables(store)
    w = windows_table
    query = sa.select(w.c.record).order_by(w.c.window_start, w.c.window_end)
    if window_spec is not None:
        query = query.where(w.c.window_spec == window_spec)
    if end_before is not None:
        query = query.where(w.c.window_end <= end_before)
    with store.engine.connect() as conn:
        return [row.record for row in conn.execute(query)]


def window_specs(store: Store) -> list[str]:
    """The window specs (`month`, `week`, `N-days`) that have stored windows, most recently run first."""
    ensure_tables(store)
    w, r = windows_table, runs_table
    latest = sa.func.max(r.c.created_at)
    query = (
        sa.select(w.c.window_spec)
        .join(r, r.c.run_id == w.c.run_id)
        .group_by(w.c.window_spec)
        .order_by(latest.desc(), w.c.window_spec)
    )
    with store.engine.connect() as conn:
        return list(conn.execute(query).scalars())


def latest_run(store: Store, *, window_spec: str | None = None) -> dict[str, Any] | None:
    """The newest stored run (optionally of one window spec) as a row dict, or None when there is none."""
    ensure_tables(store)
    r = runs_table
    query = sa.select(r).order_by(r.c.created_at.desc()).limit(1)
    if window_spec is not None:
        query = query.where(r.c.window_spec == window_spec)
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else dict(row._mapping)


@dataclass(frozen=True)
class LatestWindow:
    """The newest window of the newest run's window spec, as stored: what `/metrics` exports.

    `window`: its `monitoring_windows` row (with the `record`); `columns`: its `monitoring_columns` rows;
    `raised`: the rules that raised an alert on it; `undelivered`: per rule, alerts of any window whose
    delivery has not succeeded yet.
    """

    window: dict[str, Any]
    columns: list[dict[str, Any]]
    raised: list[str]
    undelivered: dict[str, int]


def latest_window(store: Store) -> LatestWindow | None:
    """The newest window of the newest run's spec; None when no run stored one (or the tables do not exist).

    Read-only, unlike the loaders above: a Prometheus scrape must not create tables in a store that no
    monitoring run has used. Four indexed or small queries, cheap enough for every scrape. The spec is the
    newest run's so that a store monitored by months and by weeks does not flip between the two.
    """
    w, c, a, r = windows_table, columns_table, alerts_table, runs_table
    with store.engine.connect() as conn:
        if not {t.name for t in results_metadata.sorted_tables} <= set(sa.inspect(conn).get_table_names()):
            return None
        spec = sa.select(r.c.window_spec).order_by(r.c.created_at.desc()).limit(1).scalar_subquery()
        newest = sa.select(w).where(w.c.window_spec == spec).order_by(w.c.window_end.desc(), w.c.window_start.desc())
        row = conn.execute(newest.limit(1)).first()
        if row is None:
            return None
        window = dict(row._mapping)
        bounds = (window["window_start"], window["window_end"])
        columns = conn.execute(
            sa.select(c).where(c.c.window_start == bounds[0], c.c.window_end == bounds[1]).order_by(c.c.column_name)
        )
        raised = conn.execute(
            sa.select(a.c.rule).where(a.c.window_start == bounds[0], a.c.window_end == bounds[1]).order_by(a.c.rule)
        )
        pending = conn.execute(
            sa.select(a.c.rule, sa.func.count()).where(a.c.delivered_at.is_(None)).group_by(a.c.rule).order_by(a.c.rule)
        )
        return LatestWindow(
            window=window,
            columns=[dict(x._mapping) for x in columns],
            raised=list(raised.scalars()),
            undelivered={rule: int(n) for rule, n in pending},
        )


def load_windows(store: Store) -> pd.DataFrame:
    """The window time series: one row per stored window, oldest first (without the JSON records)."""
    return _frame(store, windows_table, [c for c in windows_table.columns if c.name != "record"])


def load_columns(store: Store) -> pd.DataFrame:
    """The per-column time series: one row per stored window and column."""
    return _frame(store, columns_table, list(columns_table.columns))


def load_alerts(store: Store) -> pd.DataFrame:
    """Every alert ever raised, with its delivery state."""
    return _frame(store, alerts_table, list(alerts_table.columns))


def _frame(store: Store, table: sa.Table, columns: list[Any]) -> pd.DataFrame:
    ensure_tables(store)
    query = sa.select(*columns).order_by(table.c.window_start, table.c.window_end)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=[c.name for c in columns])


def _finite(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: finite(v) for k, v in row.items()}


def finite(value: Any) -> Any:
    """`value` with NaN and infinities (at any depth) as None: PostgreSQL's JSONB and strict JSON reject them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _insert_new(conn: sa.Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()
