"""The metrics store: every prediction the service made, and the ground truth joined to it later.

One schema on SQLAlchemy 2 Core: SQLite (WAL) is the built-in default for one service process;
PostgreSQL (`postgresql+psycopg://...`) serves several replicas writing at once. Tables are created on
first open and stamped with a schema version; a store written by another schema version is refused.

Two tables: `predictions` (one row per prediction: uuid, model version, time, entity id, the input
features as JSON, the prediction) and `ground_truth` (at most one label per prediction uuid, enforced by
its primary key, so concurrent or repeated label posts cannot duplicate). All SQL uses bound parameters.
Times are stored as naive UTC and returned timezone-aware.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from forwardlab.monitor.errors import LabelConflictError, NotFoundError, StoreError

SCHEMA_VERSION = 1
DEFAULT_STORE_URL = "sqlite:///forwardlab-monitor.db"
ENTITY_ID_MAX_CHARS = 128
MODEL_VERSION_MAX_CHARS = 64
# The columns of `Store.predictions` frames that hold the model's output and the truth: what a monitoring run
# over this store names as its prediction and target (`house.house_columns`).
PREDICTION_COLUMN, LABEL_COLUMN = "prediction_usd", "label_usd"
_IN_CHUNK = 500  # uuids per IN (...) list: well under every backend's bound-parameter limit


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored naive UTC so both backends sort alike."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else _aware_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _aware_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to it."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()
predictions_table = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("model_version", sa.String(MODEL_VERSION_MAX_CHARS), nullable=False),
    sa.Column("predicted_at", UTCDateTime, nullable=False, index=True),
    sa.Column("entity_id", sa.String(ENTITY_ID_MAX_CHARS), nullable=True, index=True),
    sa.Column("features", sa.JSON().with_variant(postgresql.JSONB, "postgresql"), nullable=False),
    sa.Column("prediction_usd", sa.Float, nullable=False),
)
ground_truth_table = sa.Table(
    "ground_truth",
    metadata,
    sa.Column("prediction_uuid", sa.String(36), sa.ForeignKey("predictions.uuid"), primary_key=True),
    sa.Column("label_usd", sa.Float, nullable=False),
    sa.Column("label_at", UTCDateTime, nullable=False, index=True),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
)
schema_table = sa.Table("forwardlab_schema", metadata, sa.Column("version", sa.Integer, nullable=False))


@dataclass(frozen=True)
class PredictionRecord:
    """One prediction as the service stores it, before the response that acknowledges it."""

    uuid: str
    model_version: str
    predicted_at: datetime
    entity_id: str | None
    features: dict[str, Any]
    prediction_usd: float


@dataclass(frozen=True)
class Label:
    """Ground truth for one prediction: the observed price and when it was observed (the sale)."""

    prediction_uuid: str
    label_usd: float
    label_at: datetime


@dataclass(frozen=True)
class LabelRequest:
    """Ground truth to store: for one prediction (`prediction_uuid`) or every prediction of `entity_id`."""

    label_usd: float
    label_at: datetime
    prediction_uuid: str | None = None
    entity_id: str | None = None

    def __post_init__(self) -> None:
        if (self.prediction_uuid is None) == (self.entity_id is None):
            raise ValueError("give exactly one of prediction_uuid or entity_id")


@dataclass(frozen=True)
class Page:
    """One page of a prediction query; pass `next_cursor` back as `after` for the next (None: done)."""

    rows: list[dict[str, Any]]
    next_cursor: int | None


TimeColumn = Literal["predicted_at", "label_at"]


class Store:
    """A connection pool to one metrics store; thread-safe, so one instance serves the whole process."""

    def __init__(self, url: str = DEFAULT_STORE_URL, *, synchronous: Literal["NORMAL", "FULL"] = "FULL") -> None:
        self.url = sa.make_url(url)
        self.display_url = display_url(url)
        self.engine = _make_engine(self.url, self.display_url, synchronous)
        try:
            self._create_schema()
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            raise StoreError(f"{self.display_url}: cannot open the store: {exc.orig}") from exc

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create_schema(self) -> None:
        try:
            metadata.create_all(self.engine)
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
            metadata.create_all(self.engine)  # another replica created the tables at the same moment
        with self._write() as conn:
            found = conn.execute(sa.select(schema_table.c.version)).scalars().all()
            if not found:
                conn.execute(schema_table.insert().values(version=SCHEMA_VERSION))
            elif found != [SCHEMA_VERSION]:
                raise StoreError(f"{self.display_url}: schema version {found}, this code reads {SCHEMA_VERSION}")

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction, for modules that keep their own tables in this store (monitoring results)."""
        return self._write()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A transaction that takes SQLite's write lock up front, so it never fails to upgrade a read lock."""
        with self.engine.connect() as conn:
            conn.execution_options(forwardlab_write=True)
            with conn.begin():
                yield conn

    # ------------------------------------------------------------------ writes

    def add_predictions(self, records: Sequence[PredictionRecord]) -> None:
        """Insert the records in one transaction: all of them are stored, or none."""
        if not records:
            return
        rows = [
            {
                "uuid": r.uuid,
                "model_version": r.model_version,
                "predicted_at": r.predicted_at,
                "entity_id": r.entity_id,
                "features": r.features,
                "prediction_usd": r.prediction_usd,
            }
            for r in records
        ]
        with self._write() as conn:
            conn.execute(predictions_table.insert(), rows)

    def add_labels(self, requests: Sequence[LabelRequest]) -> list[Label]:
        """Store ground truth, in one transaction; return the labels now stored for the named predictions.

        A request names one prediction (uuid) or every prediction of an entity (entity id). Idempotent:
        posting the same label again changes nothing. A label that differs from one already stored (or
        from another in the same call) raises `LabelConflictError`; an unknown uuid or entity raises
        `NotFoundError`. Either way nothing from the call is stored: the first label stands.
        """
        p, g = predictions_table, ground_truth_table
        wanted: dict[str, tuple[float, datetime]] = {}
        with self._write() as conn:
            uuids = [r.prediction_uuid for r in requests if r.prediction_uuid is not None]
            entities = [r.entity_id for r in requests if r.entity_id is not None]
            known = {row.uuid for row in _select_in(conn, sa.select(p.c.uuid), p.c.uuid, uuids)}
            by_entity: dict[str, list[str]] = {}
            for entity, uuid in _select_in(conn, sa.select(p.c.entity_id, p.c.uuid), p.c.entity_id, entities):
                by_entity.setdefault(entity, []).append(uuid)
            for r in requests:
                if r.prediction_uuid is not None:
                    if r.prediction_uuid not in known:
                        raise NotFoundError(f"prediction {r.prediction_uuid}: no such prediction in the store")
                    targets = [r.prediction_uuid]
                else:
                    targets = by_entity.get(str(r.entity_id), [])
                    if not targets:
                        raise NotFoundError(f"entity {r.entity_id}: no prediction for it in the store")
                label = (r.label_usd, _aware_utc(r.label_at))
                for uuid in targets:
                    if wanted.setdefault(uuid, label) != label:
                        raise LabelConflictError(f"prediction {uuid}: given two different labels in one request")
            now = datetime.now(UTC)
            rows = [
                {"prediction_uuid": u, "label_usd": usd, "label_at": at, "recorded_at": now}
                for u, (usd, at) in wanted.items()
            ]
            conn.execute(_insert_ignoring_duplicates(conn, g), rows)
            query = sa.select(g.c.prediction_uuid, g.c.label_usd, g.c.label_at)
            stored = {row.prediction_uuid: row for row in _select_in(conn, query, g.c.prediction_uuid, list(wanted))}
            for uuid, (usd, at) in wanted.items():
                row = stored[uuid]
                if (row.label_usd, row.label_at) != (usd, at):
                    raise LabelConflictError(
                        f"prediction {uuid}: already labelled {row.label_usd} USD at {row.label_at.isoformat()}"
                    )
        return [Label(u, usd, at) for u, (usd, at) in wanted.items()]

    # ------------------------------------------------------------------ reads

    def _query(
        self,
        start: datetime | None,
        end: datetime | None,
        with_ground_truth: bool | None,
        time_column: TimeColumn,
    ) -> sa.Select[Any]:
        p, g = predictions_table, ground_truth_table
        query = sa.select(
            p.c.id,
            p.c.uuid,
            p.c.model_version,
            p.c.predicted_at,
            p.c.entity_id,
            p.c.features,
            p.c.prediction_usd,
            g.c.label_usd,
            g.c.label_at,
        ).select_from(p.outerjoin(g, g.c.prediction_uuid == p.c.uuid))
        column = p.c.predicted_at if time_column == "predicted_at" else g.c.label_at
        if start is not None:
            query = query.where(column >= start)
        if end is not None:
            query = query.where(column < end)
        if with_ground_truth is True or time_column == "label_at":
            query = query.where(g.c.prediction_uuid.is_not(None))
        elif with_ground_truth is False:
            query = query.where(g.c.prediction_uuid.is_(None))
        return query

    def page(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        with_ground_truth: bool | None = None,
        after: int | None = None,
        limit: int = 100,
    ) -> Page:
        """Predictions made in [start, end), oldest stored first, `limit` at a time (keyset paging)."""
        query = self._query(start, end, with_ground_truth, "predicted_at")
        if after is not None:
            query = query.where(predictions_table.c.id > after)
        query = query.order_by(predictions_table.c.id).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1]["id"] if more else None)

    def predictions(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        with_ground_truth: bool | None = None,
        time_column: TimeColumn = "predicted_at",
    ) -> pd.DataFrame:
        """Predictions in the window [start, end) as a DataFrame, one column per input feature.

        The window is on `predicted_at` by default; with `time_column="label_at"` it is on the ground
        truth's time (only labelled predictions then). Columns: uuid, model_version, predicted_at,
        entity_id, the features, prediction_usd, label_usd, label_at (NaN/NaT where unlabelled).
        """
        query = self._query(start, end, with_ground_truth, time_column).order_by(predictions_table.c.id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        base = pd.DataFrame(
            [(r.uuid, r.model_version, r.predicted_at, r.entity_id) for r in rows],
            columns=["uuid", "model_version", "predicted_at", "entity_id"],
        )
        features = pd.DataFrame.from_records([r.features for r in rows])
        tail = pd.DataFrame(
            {
                PREDICTION_COLUMN: pd.array([r.prediction_usd for r in rows], dtype="float64"),
                LABEL_COLUMN: pd.array([r.label_usd for r in rows], dtype="Float64").astype("float64"),
                "label_at": pd.to_datetime([r.label_at for r in rows], utc=True),
            }
        )
        frame = pd.concat([base, features, tail], axis=1)
        frame["predicted_at"] = pd.to_datetime(frame["predicted_at"], utc=True)
        return frame

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(predictions_table)).scalar_one())

    def predicted_entities(self, entity_ids: Iterable[str]) -> set[str]:
        """The given entity ids that already have a prediction (a resumed replay scores only the others)."""
        column = predictions_table.c.entity_id
        with self.engine.connect() as conn:
            return {row.entity_id for row in _select_in(conn, sa.select(column).distinct(), column, list(entity_ids))}

    def missing(self, uuids: Iterable[str]) -> set[str]:
        """The given uuids that are not in the store (checks that acknowledged predictions were kept)."""
        wanted = set(uuids)
        column = predictions_table.c.uuid
        with self.engine.connect() as conn:
            found = {row.uuid for row in _select_in(conn, sa.select(column), column, list(wanted))}
        return wanted - found


def display_url(url: str) -> str:
    """The store URL as it may be printed: the password hidden."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"{url!r}: not a valid store URL: {exc}") from exc


def _select_in(conn: Connection, query: sa.Select[Any], column: Any, values: Sequence[str]) -> list[Any]:
    """Rows of `query` whose `column` is one of `values`, asked in chunks of bound parameters."""
    unique = sorted(set(values))
    rows: list[Any] = []
    for i in range(0, len(unique), _IN_CHUNK):
        rows.extend(conn.execute(query.where(column.in_(unique[i : i + _IN_CHUNK]))).all())
    return rows


def _insert_ignoring_duplicates(conn: Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise StoreError(f"backend {conn.dialect.name}: not supported (use sqlite or postgresql)")


def _make_engine(url: sa.URL, display_url: str, synchronous: str) -> Engine:
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(f"{display_url}: unsupported store backend {backend!r} (use sqlite or postgresql)")
    try:
        if backend == "sqlite":
            engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            _configure_sqlite(engine, synchronous)
            return engine
        return sa.create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"{display_url}: driver {exc.name} is not installed (pip install 'forwardlab[monitor]')"
        ) from exc
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"{display_url}: not a valid store URL: {exc}") from exc


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    """WAL for concurrent readers, a long busy timeout, and explicit BEGIN so writes lock up front."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("forwardlab_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
