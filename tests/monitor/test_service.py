"""The prediction service over real HTTP on loopback, recording into SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from forwardlab.monitor.auth import load_api_keys
from forwardlab.monitor.errors import ServiceConfigError
from forwardlab.monitor.model import PriceModel
from forwardlab.monitor.server import RunningServer, start_server
from forwardlab.monitor.service import create_app
from forwardlab.monitor.store import Store
from tests.monitor.conftest import API_KEY, house


@pytest.fixture
def client(service: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.base_url, headers={"X-API-Key": API_KEY}, timeout=30) as c:
        yield c


def predict(client: httpx.Client, body: dict[str, object]) -> list[dict[str, object]]:
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_every_v1_route_needs_a_valid_key(service: RunningServer) -> None:
    calls = [
        ("POST", "/v1/predict", {"features": house()}),
        ("POST", "/v1/ground-truth", {"entity_id": "a", "price_usd": 1.0, "label_at": "2015-01-01"}),
        ("GET", "/v1/predictions", None),
    ]
    with httpx.Client(base_url=service.base_url) as anonymous:
        for method, path, body in calls:
            for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": API_KEY + "x"}):
                response = anonymous.request(method, path, json=body, headers=headers)
                assert response.status_code == 401, (path, headers)
                assert response.json()["detail"] == "missing or invalid API key (header X-API-Key)"
        assert anonymous.get("/healthz").json()["status"] == "ok"
        assert anonymous.get("/metrics").status_code == 200
        spec = anonymous.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/ground-truth", "/v1/predictions", "/healthz", "/metrics"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


def test_predictions_are_stored_before_the_answer(client: httpx.Client, store: Store, model: PriceModel) -> None:
    one = predict(client, {"entity_id": "house-1", "features": house()})
    batch = predict(client, {"records": [{"entity_id": f"b{i}", "features": house(bedrooms=i)} for i in range(5)]})
    assert store.missing([p["uuid"] for p in one + batch]) == set()  # type: ignore[misc]
    expected = model.predict([house()] + [house(bedrooms=i) for i in range(5)])
    np.testing.assert_allclose([p["price_usd"] for p in one + batch], expected)
    assert [p["entity_id"] for p in batch] == [f"b{i}" for i in range(5)]
    frame = store.predictions()
    assert frame["model_version"].unique().tolist() == [model.version]
    assert frame.loc[frame["entity_id"] == "house-1", "zipcode"].tolist() == ["98178"]


def test_invalid_input_is_422_naming_each_field_and_stores_nothing(client: httpx.Client, store: Store) -> None:
    bad = house(bedrooms=-1, bathrooms=2.3, zipcode="9817", sqft_living="big")
    del bad["view"]
    response = client.post("/v1/predict", json={"records": [{"features": house()}, {"features": bad}]})
    assert response.status_code == 422
    fields = {tuple(e["loc"][-2:]) for e in response.json()["detail"]}
    assert {("features", f) for f in ("bedrooms", "bathrooms", "zipcode", "sqft_living", "view")} <= fields
    for body in (
        {"features": house(colour="red")},
        {"records": []},
        {"entity_id": "x\u0000", "features": house()},
    ):
        assert client.post("/v1/predict", json=body).status_code == 422, body
    assert (
        client.post("/v1/predict", content=b"{not json", headers={"Content-Type": "application/json"}).status_code
        == 422
    )
    assert store.count() == 0


def test_ground_truth_by_uuid_and_entity(client: httpx.Client, store: Store) -> None:
    [first] = predict(client, {"entity_id": "sold-1", "features": house()})
    predict(client, {"entity_id": "sold-2", "features": house()})
    predict(client, {"entity_id": "sold-2", "features": house(bedrooms=4)})
    label = {"prediction_uuid": first["uuid"], "price_usd": 230_000, "label_at": "2015-01-02"}
    once, twice = client.post("/v1/ground-truth", json=label), client.post("/v1/ground-truth", json=label)
    assert once.status_code == twice.status_code == 200 and once.json() == twice.json()
    assert once.json()["labels"][0]["label_at"] == "2015-01-02T00:00:00Z"
    conflict = client.post("/v1/ground-truth", json=label | {"price_usd": 1})
    assert conflict.status_code == 409 and first["uuid"] in conflict.json()["detail"]
    by_entity = client.post(
        "/v1/ground-truth",
        json={"entity_id": "sold-2", "price_usd": 5e5, "label_at": "2015-02-01T10:00:00+01:00"},
    )
    assert len(by_entity.json()["labels"]) == 2
    assert by_entity.json()["labels"][0]["label_at"] == "2015-02-01T09:00:00Z"
    assert (
        client.post(
            "/v1/ground-truth", json={"entity_id": "nobody", "price_usd": 1, "label_at": "2015-01-01"}
        ).status_code
        == 404
    )
    unknown = {
        "prediction_uuid": "00000000-0000-0000-0000-000000000000",
        "price_usd": 1,
        "label_at": "2015-01-01",
    }
    assert client.post("/v1/ground-truth", json=unknown).status_code == 404
    both = {"entity_id": "sold-2", "prediction_uuid": first["uuid"], "price_usd": 1, "label_at": "2015-01-01"}
    assert client.post("/v1/ground-truth", json=both).status_code == 422
    batch = {"labels": [label, unknown]}
    assert client.post("/v1/ground-truth", json=batch).status_code == 404
    assert sorted(store.predictions(with_ground_truth=True)["label_usd"]) == [230_000, 5e5, 5e5]


def test_concurrent_ground_truth_posts_store_one_label(
    client: httpx.Client, service: RunningServer, store: Store
) -> None:
    [target] = predict(client, {"features": house()})
    label = {"prediction_uuid": target["uuid"], "price_usd": 250_000, "label_at": "2015-03-01"}
    statuses: list[int] = []
    barrier = threading.Barrier(16)

    def post() -> None:
        with httpx.Client(base_url=service.base_url, headers={"X-API-Key": API_KEY}, timeout=30) as c:
            barrier.wait()
            statuses.append(c.post("/v1/ground-truth", json=label).status_code)

    threads = [threading.Thread(target=post) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 16
    labelled = store.predictions(with_ground_truth=True)
    assert labelled["uuid"].tolist() == [target["uuid"]] and labelled["label_usd"].tolist() == [250_000]


def test_concurrent_single_predictions_are_all_stored(
    client: httpx.Client, service: RunningServer, store: Store
) -> None:
    uuids: list[str] = []

    def worker(k: int) -> None:
        with httpx.Client(base_url=service.base_url, headers={"X-API-Key": API_KEY}, timeout=30) as c:
            for i in range(10):
                r = c.post("/v1/predict", json={"entity_id": f"w{k}-{i}", "features": house(bedrooms=i)})
                uuids.append(r.json()["predictions"][0]["uuid"])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(uuids)) == 160 and store.missing(uuids) == set() and store.count() == 160
    metrics = client.get("/metrics").text
    assert "forwardlab_predictions_stored_total 160" in metrics
    assert re.search(r'forwardlab_http_requests_total\{method="POST",route="/v1/predict",status="200"\} 160', metrics)
    assert "forwardlab_batch_records_count" in metrics


def test_predictions_query_pages_through_everything(client: httpx.Client) -> None:
    made = predict(client, {"records": [{"entity_id": f"p{i}", "features": house()} for i in range(7)]})
    client.post(
        "/v1/ground-truth",
        json={"prediction_uuid": made[2]["uuid"], "price_usd": 1e5, "label_at": "2015-01-01"},
    )
    seen, params = [], {"limit": 3}
    while True:
        page = client.get("/v1/predictions", params=params).json()
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        params = {"limit": 3, "after": page["next_cursor"]}
    assert [x["uuid"] for x in seen] == [p["uuid"] for p in made]
    labelled = client.get("/v1/predictions", params={"with_ground_truth": "true"}).json()["items"]
    assert [x["ground_truth"]["price_usd"] for x in labelled] == [1e5]
    assert client.get("/v1/predictions", params={"start": "2100-01-01"}).json()["items"] == []
    assert client.get("/v1/predictions", params={"start": "9999-12-31T23:00:00-05:00"}).status_code == 422


def test_recording_disabled_stores_nothing(model: PriceModel) -> None:
    with (
        start_server(create_app(model, None, api_keys=[API_KEY])) as server,
        httpx.Client(base_url=server.base_url, headers={"X-API-Key": API_KEY}) as c,
    ):
        assert len(predict(c, {"records": [{"features": house()}] * 3})) == 3
        assert c.get("/healthz").json()["recording"] is False
        assert c.get("/v1/predictions").status_code == 503


def test_api_keys_come_from_arguments_then_file_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: PriceModel
) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("# service keys\nalpha\n  beta  \n\n")
    monkeypatch.setenv("FORWARDLAB_API_KEYS", "gamma, delta,")
    assert load_api_keys(["given"], keys_file) == {"given"}
    assert load_api_keys(None, keys_file) == {"alpha", "beta"}
    assert load_api_keys() == {"gamma", "delta"}
    monkeypatch.delenv("FORWARDLAB_API_KEYS")
    monkeypatch.setenv("FORWARDLAB_API_KEYS_FILE", str(keys_file))
    assert load_api_keys() == {"alpha", "beta"}
    with pytest.raises(ServiceConfigError, match="no API keys"):
        create_app(model, None, api_keys=[" "])
    with pytest.raises(ServiceConfigError, match="missing-keys: cannot read the API keys file"):
        load_api_keys(None, tmp_path / "missing-keys")
