"""The service's request and response bodies (pydantic): types, required fields and sane ranges.

Ranges are wide enough for any real King County house and narrow enough to reject typos and garbage
(a 0-square-foot house, 2.3 bathrooms, a 4-digit zip code). The feature fields are written out here, with
their ranges and examples (what the OpenAPI page shows), and checked against the house schema
(`features.HOUSE`) when this module is imported: a feature added to one and not the other, or typed
differently, stops the service from starting. Feature records reject unknown fields, so a
misspelt feature is an error rather than a silently imputed value. Strings that a database cannot hold
(NUL, lone surrogates) and times that do not fit in UTC are rejected here, as 422s, not as storage errors.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from forwardlab.monitor.errors import SchemaError
from forwardlab.monitor.features import HOUSE, FeatureSchema
from forwardlab.monitor.store import ENTITY_ID_MAX_CHARS

MAX_BATCH_RECORDS = 5000
MAX_PAGE_ROWS = 1000


def _to_utc(value: datetime) -> datetime:
    """Naive times are UTC; aware ones are converted, and must still fit a datetime after conversion."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time is out of range once converted to UTC") from None


UTCDatetime = Annotated[datetime, AfterValidator(_to_utc)]
EntityId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=ENTITY_ID_MAX_CHARS,
        pattern=r"^[^\x00]*$",
        description="Your id for the thing predicted (a house id); ground truth can be posted by it.",
        examples=["7129300520"],
    ),
]
PriceUSD = Annotated[float, Field(gt=0, le=1e10, allow_inf_nan=False, examples=[221900.0])]
Strict = ConfigDict(extra="forbid")


class HouseFeatures(BaseModel):
    """The nine inputs of the price model."""

    model_config = Strict

    sqft_living: float = Field(gt=0, le=100_000, allow_inf_nan=False, examples=[1180])
    sqft_lot: float = Field(gt=0, le=100_000_000, allow_inf_nan=False, examples=[5650])
    sqft_above: float = Field(gt=0, le=100_000, allow_inf_nan=False, examples=[1180])
    bedrooms: int = Field(ge=0, le=50, examples=[3])
    bathrooms: float = Field(ge=0, le=20, multiple_of=0.25, allow_inf_nan=False, examples=[1.0])
    waterfront: int = Field(ge=0, le=1, examples=[0])
    zipcode: str = Field(pattern=r"^[0-9]{5}$", examples=["98178"])
    condition: int = Field(ge=1, le=5, examples=[3])
    view: int = Field(ge=0, le=4, examples=[0])


def check_fields(model: type[BaseModel], schema: FeatureSchema) -> None:
    """Refuse (a `SchemaError` naming each difference) a request model whose fields are not the schema's
    features with their Python types, in the schema's order."""
    got = {name: field.annotation for name, field in model.model_fields.items()}
    wanted = schema.python_types
    problems = [f"{name} is missing" for name in wanted if name not in got]
    problems += [f"{name} is not a feature" for name in got if name not in wanted]
    problems += [
        f"{name} is {getattr(got[name], '__name__', got[name])}, not {kind.__name__}"
        for name, kind in wanted.items()
        if name in got and got[name] is not kind
    ]
    if not problems and list(got) != list(wanted):
        problems.append(f"the fields are not in the schema's order ({', '.join(wanted)})")
    if problems:
        raise SchemaError(f"{model.__name__} disagrees with the feature schema: {'; '.join(problems)}")


check_fields(HouseFeatures, HOUSE)


MAX_CLOCK_SKEW = timedelta(minutes=5)


def _not_in_future(value: datetime) -> datetime:
    """A prediction time later than now (beyond clock skew) is a client bug, and would sit in a window not yet
    monitored; a past one is a replay or a backfill."""
    if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise ValueError("predicted_at is in the future")
    return value


class PredictRecord(BaseModel):
    """One house to price."""

    model_config = Strict

    entity_id: EntityId | None = None
    features: HouseFeatures
    predicted_at: Annotated[UTCDatetime, AfterValidator(_not_in_future)] | None = Field(
        default=None,
        description=(
            "When the prediction counts as made (replays and backfills: the listing date); default: now. "
            "Monitoring windows of predictions (label coverage, estimated MAE) are cut by it."
        ),
    )


class PredictBatch(BaseModel):
    """Several houses to price in one request: predicted together, stored in one transaction."""

    model_config = Strict

    records: list[PredictRecord] = Field(min_length=1, max_length=MAX_BATCH_RECORDS)


def _predict_shape(value: Any) -> str:
    if isinstance(value, dict):
        return "batch" if "records" in value else "record"
    return "batch" if isinstance(value, PredictBatch) else "record"


PredictRequest = Annotated[
    Annotated[PredictRecord, Tag("record")] | Annotated[PredictBatch, Tag("batch")],
    Discriminator(_predict_shape),
]


class PredictionOut(BaseModel):
    uuid: str
    entity_id: str | None
    price_usd: float


class PredictResponse(BaseModel):
    """The stored predictions, in request order; each uuid is already in the store."""

    model_version: str
    predictions: list[PredictionOut]


class LabelIn(BaseModel):
    """Ground truth for one prediction (by uuid) or for every prediction of an entity (by entity id)."""

    model_config = Strict

    prediction_uuid: str | None = Field(default=None, pattern=r"^[0-9a-f-]{36}$")
    entity_id: EntityId | None = None
    price_usd: PriceUSD
    label_at: UTCDatetime = Field(description="When the truth was observed (the sale date).")

    @model_validator(mode="after")
    def _one_key(self) -> LabelIn:
        if (self.prediction_uuid is None) == (self.entity_id is None):
            raise ValueError("give exactly one of prediction_uuid or entity_id")
        return self


class LabelBatch(BaseModel):
    """Several labels in one request, stored all together or (on any unknown id or conflict) not at all."""

    model_config = Strict

    labels: list[LabelIn] = Field(min_length=1, max_length=MAX_BATCH_RECORDS)


def _label_shape(value: Any) -> str:
    if isinstance(value, dict):
        return "batch" if "labels" in value else "label"
    return "batch" if isinstance(value, LabelBatch) else "label"


GroundTruthRequest = Annotated[
    Annotated[LabelIn, Tag("label")] | Annotated[LabelBatch, Tag("batch")],
    Discriminator(_label_shape),
]


class LabelOut(BaseModel):
    prediction_uuid: str
    price_usd: float
    label_at: datetime


class GroundTruthResponse(BaseModel):
    """Every label now stored for the predictions the request named (new and earlier identical ones)."""

    labels: list[LabelOut]


class GroundTruthOut(BaseModel):
    price_usd: float
    label_at: datetime


class StoredPrediction(BaseModel):
    id: int = Field(description="Store order; pass the last one seen as `after` to read on.")
    uuid: str
    model_version: str
    predicted_at: datetime
    entity_id: str | None
    features: dict[str, Any]
    price_usd: float
    ground_truth: GroundTruthOut | None


class PredictionsPage(BaseModel):
    items: list[StoredPrediction]
    next_cursor: int | None = Field(description="`after` for the next page; null on the last page.")
