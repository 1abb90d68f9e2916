"""Schemathesis against the served OpenAPI spec: generated valid and invalid requests, no 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from forwardlab.monitor.model import PriceModel
from forwardlab.monitor.server import RunningServer, start_server
from forwardlab.monitor.service import create_app
from forwardlab.monitor.store import Store
from tests.monitor.conftest import API_KEY, house

MAX_EXAMPLES = 100


@pytest.fixture(scope="module")
def fuzzed_service(model: PriceModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'store.db'}")
    with start_server(create_app(model, store, api_keys=[API_KEY])) as server:
        body = {"records": [{"entity_id": f"seed-{i}", "features": house(bedrooms=i)} for i in range(5)]}
        made = httpx.post(f"{server.base_url}/v1/predict", json=body, headers={"X-API-Key": API_KEY}).json()
        label = {
            "prediction_uuid": made["predictions"][0]["uuid"],
            "price_usd": 1e5,
            "label_at": "2015-01-01",
        }
        httpx.post(f"{server.base_url}/v1/ground-truth", json=label, headers={"X-API-Key": API_KEY})
        yield server
    store.close()


def _operations(base_url: str) -> list[Any]:
    spec = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    return [result.ok() for result in spec.get_all_operations()]


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_no_server_errors(fuzzed_service: RunningServer, mode: GenerationMode) -> None:
    """Every operation with data that fits its schema; those with inputs also with data that does not."""
    tried = []
    for operation in _operations(fuzzed_service.base_url):
        if mode is GenerationMode.NEGATIVE and not operation.path.startswith("/v1/"):
            continue  # /healthz, /metrics, /openapi.json take no input to get wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: Any) -> None:
            case.call_and_validate(
                base_url=fuzzed_service.base_url, headers={"X-API-Key": API_KEY}, checks=[not_a_server_error]
            )

        call()
        tried.append(operation.label)
    assert {"POST /v1/predict", "POST /v1/ground-truth", "GET /v1/predictions"} <= set(tried)


def test_the_spec_declares_security_and_errors(fuzzed_service: RunningServer) -> None:
    spec = httpx.get(f"{fuzzed_service.base_url}/openapi.json").json()
    predict = spec["paths"]["/v1/predict"]["post"]
    assert predict["security"] == [{"APIKeyHeader": []}]
    assert {"200", "401", "422", "503"} <= set(predict["responses"])
