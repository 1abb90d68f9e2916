"""The prediction service (FastAPI): predict, ground truth, queries, health and Prometheus metrics.

Every prediction is committed to the metrics store before the response that carries its uuid is sent.
Concurrent requests are micro-batched (`batching.MicroBatcher`): one model call and one transaction
serve many requests, in a worker thread, so the event loop keeps serving meanwhile. Every `/v1` route
needs an API key in the `X-API-Key` header; `/healthz`, `/metrics` and the OpenAPI spec do not. `/metrics`
also exports the latest monitored window stored in the store (`window_gauges`), read in a worker thread.

Keys are resolved by `auth.load_api_keys`: function arguments first, then the `serve` command's flags, then
the environment (`FORWARDLAB_API_KEYS`, `FORWARDLAB_API_KEYS_FILE`).
"""

import contextlib
import uuid as uuidlib
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from fastapi.security import APIKeyHeader

from forwardlab import __version__
from forwardlab.monitor import results, window_gauges
from forwardlab.monitor.auth import API_KEY_HEADER, key_is_valid, load_api_keys, required_keys
from forwardlab.monitor.batching import MicroBatcher
from forwardlab.monitor.dashboard import DASHBOARD_PATH, dashboard_app
from forwardlab.monitor.errors import LabelConflictError, NotFoundError, ServiceConfigError, StoreError
from forwardlab.monitor.model import PriceModel, load_model
from forwardlab.monitor.prometheus import MetricsMiddleware, ServiceMetrics
from forwardlab.monitor.schemas import (
    MAX_PAGE_ROWS,
    GroundTruthOut,
    GroundTruthRequest,
    GroundTruthResponse,
    LabelBatch,
    LabelOut,
    PredictBatch,
    PredictionOut,
    PredictionsPage,
    PredictRecord,
    PredictRequest,
    PredictResponse,
    StoredPrediction,
    UTCDatetime,
)
from forwardlab.monitor.store import LabelRequest, PredictionRecord, Store

DEFAULT_MAX_BATCH_RECORDS = 256
DEFAULT_MAX_WAIT_S = 0.002

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or not a valid one."},
    503: {"description": "The metrics store is unavailable; nothing was stored."},
}


def create_app(
    model: PriceModel,
    store: Store | None,
    *,
    api_keys: Iterable[str],
    max_batch_records: int = DEFAULT_MAX_BATCH_RECORDS,
    max_wait_s: float = DEFAULT_MAX_WAIT_S,
    close_store: bool = False,
    dashboard: FastAPI | None = None,
) -> FastAPI:
    """The service for `model`, recording into `store` (None: recording disabled, for comparison).

    The caller owns `store` unless `close_store` is set, in which case the app closes it on shutdown.
    `dashboard` (`forwardlab.monitor.dashboard.dashboard_app`) is mounted at /dashboard when given.
    """
    keys = required_keys(api_keys)
    metrics = ServiceMetrics()

    def predict_and_store(items: list[PredictRecord]) -> list[PredictionRecord]:
        features = [item.features.model_dump() for item in items]
        prices = model.predict(features)
        now = datetime.now(UTC)
        records = [
            PredictionRecord(
                str(uuidlib.uuid4()), model.version, item.predicted_at or now, item.entity_id, f, float(price)
            )
            for item, f, price in zip(items, features, prices, strict=True)
        ]
        if store is not None:
            store.add_predictions(records)
        return records

    def count_batch(n: int) -> None:
        metrics.batch_records.observe(n)
        if store is not None:
            metrics.predictions_stored += n

    batcher: MicroBatcher[PredictRecord, PredictionRecord] = MicroBatcher(
        predict_and_store, max_records=max_batch_records, max_wait_s=max_wait_s, on_batch=count_batch
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            if close_store and store is not None:
                store.close()

    app = FastAPI(
        title="forwardlab price service",
        version=__version__,
        description="King County house prices; every prediction is stored for monitoring.",
        lifespan=lifespan,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="One of the service's keys.")

    def require_key(key: Annotated[str | None, Security(key_header)]) -> None:
        if not key_is_valid(key, keys):
            raise HTTPException(
                401, f"missing or invalid API key (header {API_KEY_HEADER})", {"WWW-Authenticate": "ApiKey"}
            )

    def need_store() -> Store:
        if store is None:
            raise HTTPException(503, "recording is disabled in this service; there is no store to read")
        return store

    secured = [Depends(require_key)]

    @app.post(
        "/v1/predict",
        dependencies=secured,
        responses=_ERRORS,
        summary="Price one house or a batch; each prediction is stored before the response.",
    )
    async def predict(body: PredictRequest) -> PredictResponse:
        items = body.records if isinstance(body, PredictBatch) else [body]
        try:
            records = await batcher.submit(items)
        except (StoreError, sa.exc.SQLAlchemyError) as exc:
            raise HTTPException(503, f"metrics store unavailable, nothing stored: {_first_line(exc)}") from exc
        metrics.predictions_made += len(records)
        return PredictResponse(
            model_version=model.version,
            predictions=[
                PredictionOut(uuid=r.uuid, entity_id=r.entity_id, price_usd=r.prediction_usd) for r in records
            ],
        )

    @app.post(
        "/v1/ground-truth",
        dependencies=secured,
        responses={
            **_ERRORS,
            404: {"description": "Unknown prediction uuid or entity id; nothing was stored."},
            409: {"description": "A different label is already stored; nothing was stored."},
        },
        summary="Record the observed price for a prediction (uuid) or an entity's predictions. Idempotent.",
    )
    async def ground_truth(body: GroundTruthRequest, db: Annotated[Store, Depends(need_store)]) -> GroundTruthResponse:
        labels = body.labels if isinstance(body, LabelBatch) else [body]
        requests = [
            LabelRequest(
                label_usd=x.price_usd,
                label_at=x.label_at,
                prediction_uuid=x.prediction_uuid,
                entity_id=x.entity_id,
            )
            for x in labels
        ]
        try:
            stored = await run_in_threadpool(db.add_labels, requests)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from exc
        except LabelConflictError as exc:
            raise HTTPException(409, str(exc)) from exc
        except (StoreError, sa.exc.SQLAlchemyError) as exc:
            raise HTTPException(503, f"metrics store unavailable, nothing stored: {_first_line(exc)}") from exc
        return GroundTruthResponse(
            labels=[
                LabelOut(prediction_uuid=s.prediction_uuid, price_usd=s.label_usd, label_at=s.label_at) for s in stored
            ]
        )

    @app.get("/v1/predictions", dependencies=secured, responses=_ERRORS, summary="Stored predictions, paged.")
    async def predictions(
        db: Annotated[Store, Depends(need_store)],
        start: Annotated[UTCDatetime | None, Query(description="Made at or after (ISO 8601; naive = UTC).")] = None,
        end: Annotated[UTCDatetime | None, Query(description="Made before (ISO 8601; naive = UTC).")] = None,
        with_ground_truth: Annotated[
            bool | None, Query(description="Only with (true) or without (false) a label.")
        ] = None,
        after: Annotated[int | None, Query(ge=0, le=2**62, description="`next_cursor` of the previous page.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_ROWS)] = 100,
    ) -> PredictionsPage:
        try:
            page = await run_in_threadpool(
                db.page, start=start, end=end, with_ground_truth=with_ground_truth, after=after, limit=limit
            )
        except (StoreError, sa.exc.SQLAlchemyError) as exc:
            raise HTTPException(503, f"metrics store unavailable: {_first_line(exc)}") from exc
        items = [
            StoredPrediction(
                id=row["id"],
                uuid=row["uuid"],
                model_version=row["model_version"],
                predicted_at=row["predicted_at"],
                entity_id=row["entity_id"],
                features=row["features"],
                price_usd=row["prediction_usd"],
                ground_truth=None
                if row["label_usd"] is None
                else GroundTruthOut(price_usd=row["label_usd"], label_at=row["label_at"]),
            )
            for row in page.rows
        ]
        return PredictionsPage(items=items, next_cursor=page.next_cursor)

    @app.get("/healthz", summary="Liveness: the model version served and whether predictions are recorded.")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "model_version": model.version,
            "recording": store is not None,
            "store": None if store is None else store.backend,
        }

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text format 0.0.4).")
    async def prometheus_metrics() -> PlainTextResponse:
        monitored = ""
        if store is not None:
            try:
                monitored = await run_in_threadpool(_monitored_text, store)
            except sa.exc.SQLAlchemyError:  # the service's own metrics still matter when the store is down
                metrics.results_read_errors += 1
        return PlainTextResponse(metrics.render() + monitored, media_type="text/plain; version=0.0.4; charset=utf-8")

    if dashboard is not None:
        app.mount(DASHBOARD_PATH, dashboard)
    return app


def app_from_paths(
    model_path: str | Path,
    store_url: str,
    *,
    api_keys: Iterable[str] | None = None,
    api_keys_file: str | Path | None = None,
    record: bool = True,
    dashboard_reports: str | Path | None = None,
) -> FastAPI:
    """Load the model, open the store, resolve the keys: the app `forwardlab monitor serve` runs.

    `dashboard_reports`: also serve the dashboard at /dashboard, over this store and these reports.
    """
    keys = load_api_keys(api_keys, api_keys_file)
    required_keys(keys)  # refused before the model and the store are opened
    if dashboard_reports is not None and not record:
        raise ServiceConfigError("the dashboard reads the store: it cannot be served with recording disabled")
    model = load_model(model_path)
    store = Store(store_url) if record else None
    dashboard = None
    if dashboard_reports is not None and store is not None:
        dashboard = dashboard_app(store, dashboard_reports, api_keys=keys)
    return create_app(model, store, api_keys=keys, close_store=True, dashboard=dashboard)


def _monitored_text(store: Store) -> str:
    return window_gauges.render(results.latest_window(store))


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
