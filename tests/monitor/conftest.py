"""Fixtures of the monitoring tests: the real King County data, one trained model per session, and
metrics stores on SQLite and PostgreSQL (FORWARDLAB_TEST_POSTGRES_URL's server, else a throwaway cluster
started from the installed binaries)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from forwardlab.monitor import results
from forwardlab.monitor.data import PreparedData, load_raw, prepare, write_prepared
from forwardlab.monitor.features import HOUSE
from forwardlab.monitor.market import Change, generate_market
from forwardlab.monitor.model import PriceModel, save_model, train
from forwardlab.monitor.server import RunningServer, start_server
from forwardlab.monitor.service import create_app
from forwardlab.monitor.store import Store, metadata
from tests.support.postgres import bin_dir, throwaway_postgres

API_KEY = "test-key-0123456789"
POSTGRES_ENV = "FORWARDLAB_TEST_POSTGRES_URL"
REPO = Path(__file__).resolve().parents[2]
STAND_IN_INFLATION = pd.Timestamp("2015-02-01")  # when the stand-in market's prices jump


def kc_csv_path() -> Path:
    """$FORWARDLAB_SHARED_DATA (the shared data folder, or the CSV itself), else ../shared/data/."""
    env = os.environ.get("FORWARDLAB_SHARED_DATA")
    if env:
        given = Path(env)
        return given if given.suffix == ".csv" else given / "kc_house_data.csv"
    return REPO / ".." / "shared" / "data" / "kc_house_data.csv"


@pytest.fixture(scope="session")
def kc_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real King County file where it is (../shared or $FORWARDLAB_SHARED_DATA); on a clone without it,
    the built-in stationary market in the same schema, so every monitoring test still runs offline."""
    path = kc_csv_path()
    if path.is_file():
        return path
    stand_in = tmp_path_factory.mktemp("market") / "kc_house_data.csv"
    stand_in_market().to_csv(stand_in, index=False)
    return stand_in


def stand_in_market() -> pd.DataFrame:
    """The built-in market on the real file's calendar and about its size, with prices 25% up from February
    2015, so the windows are the real data's and drift alerts have something to find."""
    inflation = Change("price-inflation", 0.25, STAND_IN_INFLATION)
    return generate_market(
        [inflation], rows_per_month=1300, seed=7, start=pd.Timestamp("2014-05-02"), end=pd.Timestamp("2015-05-27")
    )


@pytest.fixture(scope="session")
def kc_is_real(kc_csv: Path) -> bool:
    """Whether `kc_csv` is the published file, for the tests about that file itself."""
    return kc_csv == kc_csv_path()


@pytest.fixture(scope="session")
def prepared(kc_csv: Path) -> PreparedData:
    return prepare(load_raw(kc_csv))


@pytest.fixture(scope="session")
def data_dir(prepared: PreparedData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("monitor-data")
    write_prepared(prepared, out)
    return out


@pytest.fixture(scope="session")
def model(prepared: PreparedData) -> PriceModel:
    return train(prepared.train)


@pytest.fixture(scope="session")
def model_dir(model: PriceModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    save_model(model, root)
    return root


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """$FORWARDLAB_TEST_POSTGRES_URL when set, else a throwaway cluster from the installed server binaries."""
    if os.environ.get(POSTGRES_ENV):
        yield os.environ[POSTGRES_ENV]
        return
    with throwaway_postgres(bin_dir()) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store of each backend: a new SQLite file, or the test PostgreSQL with all tables dropped
    (the monitoring results' too, so no test sees another's windows or alerts)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url = str(request.getfixturevalue("postgres_url"))
    engine = sa.create_engine(url)
    results.results_metadata.drop_all(engine)
    metadata.drop_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url) as opened:
        yield opened


@pytest.fixture
def service(model: PriceModel, store: Store) -> Iterator[RunningServer]:
    """The real service on a free loopback port, recording into `store`."""
    with start_server(create_app(model, store, api_keys=[API_KEY])) as server:
        yield server


def house(**overrides: object) -> dict[str, object]:
    """A valid feature record (the first house in the raw file), with `overrides` applied."""
    features: dict[str, object] = {
        "sqft_living": 1180,
        "sqft_lot": 5650,
        "sqft_above": 1180,
        "bedrooms": 3,
        "bathrooms": 1.0,
        "waterfront": 0,
        "zipcode": "98178",
        "condition": 3,
        "view": 0,
    }
    return features | overrides


@pytest.fixture(scope="session")
def scored_store_file(model: PriceModel, prepared: PreparedData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store as the simulation leaves it: the training set, then production, scored through the real
    service over HTTP on each house's listing day (predicted_at), and every sale's price posted back as
    ground truth (label_at = the sale date)."""
    path = tmp_path_factory.mktemp("scored") / "store.db"
    with (
        Store(f"sqlite:///{path}") as store,
        start_server(create_app(model, store, api_keys=[API_KEY])) as server,
        httpx.Client(base_url=server.base_url, headers={"X-API-Key": API_KEY}, timeout=120) as client,
    ):
        for frame in (prepared.train, prepared.prod):
            rows = frame[["id", "price", "date_listed", "date_sold", *HOUSE.names]].to_dict("records")
            for i in range(0, len(rows), 5000):
                chunk = rows[i : i + 5000]
                records = [
                    {
                        "entity_id": r["id"],
                        "features": {f: r[f] for f in HOUSE.names},
                        "predicted_at": r["date_listed"].isoformat(),
                    }
                    for r in chunk
                ]
                labels = [
                    {"entity_id": r["id"], "price_usd": r["price"], "label_at": r["date_sold"].isoformat()}
                    for r in chunk
                ]
                assert client.post("/v1/predict", json={"records": records}).status_code == 200
                assert client.post("/v1/ground-truth", json={"labels": labels}).status_code == 200
    return path


@pytest.fixture
def scored_store(scored_store_file: Path, tmp_path: Path) -> Iterator[Store]:
    """A private copy of the scored store, so a test may add runs (or bad rows) without affecting others."""
    copy = tmp_path / "scored.db"
    shutil.copyfile(scored_store_file, copy)
    with Store(f"sqlite:///{copy}") as store:
        yield store
