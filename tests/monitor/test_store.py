"""The metrics store, the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from forwardlab.monitor.errors import LabelConflictError, NotFoundError, StoreError
from forwardlab.monitor.store import LabelRequest, PredictionRecord, Store, ground_truth_table, schema_table
from tests.monitor.conftest import house

T0 = datetime(2015, 1, 1, tzinfo=UTC)
NASTY = "x'); DROP TABLE predictions; -- \" ; SELECT * FROM ground_truth WHERE '1'='1 \\ % _ ☃"


def record(i: int, *, entity: str | None = None, at: datetime = T0) -> PredictionRecord:
    return PredictionRecord(
        uuid=str(uuid.uuid4()),
        model_version="v-test",
        predicted_at=at + timedelta(hours=i),
        entity_id=entity if entity is not None else f"house-{i}",
        features=house(sqft_living=1000 + i),
        prediction_usd=100_000.0 + i,
    )


def test_predictions_round_trip_and_page_in_order(store: Store) -> None:
    records = [record(i) for i in range(25)]
    store.add_predictions(records[:10])
    store.add_predictions(records[10:])
    assert store.count() == 25
    seen, after = [], None
    while True:
        page = store.page(after=after, limit=10)
        seen += page.rows
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert [r["uuid"] for r in seen] == [r.uuid for r in records]
    first = seen[0]
    assert first["features"] == records[0].features and first["prediction_usd"] == 100_000.0
    assert first["predicted_at"] == T0 and first["label_usd"] is None


def test_time_window_and_ground_truth_filters(store: Store) -> None:
    records = [record(i) for i in range(10)]
    store.add_predictions(records)
    store.add_labels([LabelRequest(label_usd=1.0, label_at=T0, prediction_uuid=records[3].uuid)])
    window = store.page(start=T0 + timedelta(hours=2), end=T0 + timedelta(hours=5), limit=100)
    assert [r["uuid"] for r in window.rows] == [r.uuid for r in records[2:5]]
    assert [r["uuid"] for r in store.page(with_ground_truth=True).rows] == [records[3].uuid]
    assert len(store.page(with_ground_truth=False, limit=100).rows) == 9


def test_labels_are_idempotent_and_the_first_one_stands(store: Store) -> None:
    target = record(0)
    store.add_predictions([target])
    label = LabelRequest(label_usd=250_000.0, label_at=T0, prediction_uuid=target.uuid)
    assert store.add_labels([label]) == store.add_labels([label])
    with pytest.raises(LabelConflictError, match=f"prediction {target.uuid}: already labelled 250000.0 USD"):
        store.add_labels([LabelRequest(label_usd=1.0, label_at=T0, prediction_uuid=target.uuid)])
    assert store.predictions(with_ground_truth=True)["label_usd"].tolist() == [250_000.0]


def test_labels_by_entity_cover_each_of_its_predictions(store: Store) -> None:
    twice = [record(0, entity="house-a"), record(1, entity="house-a"), record(2, entity="house-b")]
    store.add_predictions(twice)
    labels = store.add_labels([LabelRequest(label_usd=5.0, label_at=T0, entity_id="house-a")])
    assert sorted(x.prediction_uuid for x in labels) == sorted(r.uuid for r in twice[:2])


def test_a_batch_with_an_unknown_id_stores_nothing(store: Store) -> None:
    known = record(0)
    store.add_predictions([known])
    batch = [
        LabelRequest(label_usd=5.0, label_at=T0, prediction_uuid=known.uuid),
        LabelRequest(label_usd=5.0, label_at=T0, entity_id="never-seen"),
    ]
    with pytest.raises(NotFoundError, match="entity never-seen: no prediction for it"):
        store.add_labels(batch)
    with pytest.raises(NotFoundError, match="prediction 00000000-0000-0000-0000-000000000000: no such"):
        store.add_labels([LabelRequest(label_usd=5.0, label_at=T0, prediction_uuid=str(uuid.UUID(int=0)))])
    assert store.page(with_ground_truth=True).rows == []


def test_concurrent_labels_for_one_prediction_leave_one_row(store: Store) -> None:
    target = record(0)
    store.add_predictions([target])
    label = LabelRequest(label_usd=7.0, label_at=T0, prediction_uuid=target.uuid)
    errors: list[BaseException] = []
    barrier = threading.Barrier(12)

    def post() -> None:
        barrier.wait()
        try:
            store.add_labels([label])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ground_truth_table)).scalar_one() == 1


def test_sql_metacharacters_are_stored_verbatim(store: Store) -> None:
    nasty = record(0, entity=NASTY)
    nasty.features["zipcode"] = NASTY
    store.add_predictions([nasty])
    store.add_labels([LabelRequest(label_usd=3.0, label_at=T0, entity_id=NASTY)])
    frame = store.predictions()
    assert frame["entity_id"].tolist() == [NASTY] and frame["zipcode"].tolist() == [NASTY]
    assert frame["label_usd"].tolist() == [3.0] and store.count() == 1


def test_dataframe_window_by_label_time(store: Store) -> None:
    records = [record(i) for i in range(6)]
    store.add_predictions(records)
    for i, r in enumerate(records[:4]):
        store.add_labels([LabelRequest(label_usd=1000.0 * i, label_at=T0 + timedelta(days=i), prediction_uuid=r.uuid)])
    frame = store.predictions(T0 + timedelta(days=1), T0 + timedelta(days=3), time_column="label_at")
    assert frame["uuid"].tolist() == [records[1].uuid, records[2].uuid]
    assert frame["label_usd"].tolist() == [1000.0, 2000.0]
    assert {"sqft_living", "zipcode", "prediction_usd", "label_at", "predicted_at"} <= set(frame.columns)
    assert str(frame["label_at"].dt.tz) == "UTC"
    everything = store.predictions()
    assert len(everything) == 6 and everything["label_usd"].isna().sum() == 2


def test_missing_reports_unknown_uuids(store: Store) -> None:
    records = [record(i) for i in range(3)]
    store.add_predictions(records)
    assert store.missing([r.uuid for r in records]) == set()
    assert store.missing([records[0].uuid, "not-there"]) == {"not-there"}


def test_a_store_of_another_schema_version_is_refused(store_url: str) -> None:
    with Store(store_url) as first, first.engine.begin() as conn:
        conn.execute(sa.update(schema_table).values(version=99))
    with pytest.raises(StoreError, match=r"schema version \[99\], this code reads 1"):
        Store(store_url)


def test_unusable_urls_are_store_errors(tmp_path: object) -> None:
    with pytest.raises(StoreError, match="unsupported store backend 'mysql'"):
        Store("mysql://u:secret@localhost/db")
    with pytest.raises(StoreError, match=r"postgresql\+psycopg://u:\*\*\*@127.0.0.1:1/db: cannot open the store"):
        Store("postgresql+psycopg://u:secret@127.0.0.1:1/db")
