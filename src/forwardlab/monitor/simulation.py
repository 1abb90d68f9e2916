"""The production replay (the prototype's simulation), month by month, through the real service.

Steps: prepare the sales (a raw CSV, the downloaded King County file, or a built-in scenario), train the price
model on the training split, start the service on 127.0.0.1, sample both splits (`sample`, seeded: 0.05 is the
prototype's dev mode, 0.8 its default run), score the training sample and post its sale prices (the
reference). Then per calendar month of the production period: score the houses newly listed in it, post the
sale prices of those sold in it, and run the monitor for the month. The first month's listings start a year
early, as the prototype's did, so houses listed during the training period and sold later are scored before
they sell; the monitored window is the month itself (sales in it).

Scoring goes over HTTP with `concurrency` requests in flight (a thread pool on one pooled client), each
carrying `batch_size` houses (1: the prototype's one house per request). The monitor is `run_monitoring`
for one window, so everything it stores (windows, columns, alerts) lands in the store as each month
finishes: a dashboard reading the store is current after every month, and `on_month` is called then too.

Outputs in `out_dir`: `store.db` (unless `store_url` names another store), `monitoring.json` (every month so
far, rewritten from the store after each month), `reports/START_END/*.html`, `data/` (the prepared splits,
and the raw sales of a scenario), `model/`, and `simulation.json`, the replay's state.

Resumable: `simulation.json` records the settings and each finished month. A rerun with the same settings
continues at the first unfinished month; houses already scored are not scored again (the store is asked),
labels are idempotent, and re-monitoring a month replaces its results, so the end state equals an
uninterrupted run's. A rerun with other settings is refused unless `fresh` clears the folder's replay first.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from threadpoolctl import threadpool_limits

from forwardlab.download import sha256_file
from forwardlab.fileio import atomic_path, write_text_atomic
from forwardlab.monitor import results
from forwardlab.monitor.alerts import AlertConfig, parse_alert_config
from forwardlab.monitor.auth import API_KEY_HEADER
from forwardlab.monitor.dashboard import DASHBOARD_PATH, dashboard_app
from forwardlab.monitor.data import PreparedData, fetch_raw, load_raw, prepare, write_prepared
from forwardlab.monitor.drift.config import DriftConfig, drift_config
from forwardlab.monitor.errors import ModelError, SimulationError
from forwardlab.monitor.features import HOUSE
from forwardlab.monitor.house import ESTIMATION_REFERENCE_FILE, house_columns, save_estimation_reference
from forwardlab.monitor.model import PriceModel, data_sha256, load_model, resolve_model_dir, save_model, train
from forwardlab.monitor.monitor_worker import MonthlyMonitor
from forwardlab.monitor.scenarios import SCENARIOS, SYNTHETIC, get_scenario, is_scenario
from forwardlab.monitor.schemas import MAX_BATCH_RECORDS
from forwardlab.monitor.server import start_server
from forwardlab.monitor.service import create_app
from forwardlab.monitor.store import Store, display_url
from forwardlab.monitor.windows import JSON_FILE, REPORTS_DIR
from forwardlab.progress import Advance

STATE_FILE, STORE_FILE, DATA_DIR, MODEL_DIR, RAW_FILE = "simulation.json", "store.db", "data", "model", "raw.csv"
STATE_VERSION = 1
DEFAULT_SAMPLE, DEFAULT_SEED = 0.8, 42
DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY = 32, 8
REQUEST_TIMEOUT_S = 120.0
DASHBOARD_REFRESH_S = 1.0  # a month passes every few seconds in a replay
# Sales are a feed the replay posts, not client traffic: bigger batches, fewer store transactions.
LABEL_BATCH_RECORDS = 500
# What the replay alerts on unless told otherwise: any feature drifting, the sale prices drifting (concept
# drift shows there first), and the error growing by a fifth over the model's error on its training data.
DEFAULT_ALERT_RULES: dict[str, Any] = {
    "rules": [
        {"name": "data-drift", "type": "metric", "metric": "drift_share", "above": 0.0},
        {"name": "target-drift", "type": "drift", "column": "label_usd", "windows": 1},
        {"name": "mae-up", "type": "metric", "metric": "mae_usd", "increase_pct": 20},
    ]
}


@dataclass(frozen=True)
class MonthResult:
    """One replayed month: how many houses were listed and sold, and what the monitor found."""

    index: int
    start: str
    end: str
    listed_from: str
    listed: int
    sold: int
    status: str
    n_current: int
    mae_usd: float | None
    drift_share: float | None
    drifted_features: list[str]
    target_drift: bool | None
    alerts: list[str]
    # of the houses listed in the month (predictions made in it), as known at the month's end:
    label_coverage: float | None = None
    estimated_mae_usd: float | None = None
    estimated_mae_alert: bool | None = None


@dataclass(frozen=True)
class SimulationResult:
    """A replay as far as it got: every finished month (earlier runs' too), and where its outputs are."""

    out_dir: Path
    store_url: str
    source: str
    model_version: str
    reference_rows: int
    production_rows: int
    months: tuple[MonthResult, ...]
    months_total: int
    resumed_at: int
    json_path: Path
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return len(self.months) == self.months_total


@dataclass(frozen=True)
class MonthPlan:
    """One step of the replay clock: listings from `listed_from`, sales and the monitored window from `start`."""

    index: int
    listed_from: pd.Timestamp
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True)
class Source:
    """The sales replayed: what they are (for people and for the resume check) and the raw rows."""

    label: str
    sha256: str
    raw: pd.DataFrame
    scenario: str | None = None


def simulate(
    data: str | Path | None = None,
    *,
    out_dir: str | Path,
    sample: float = DEFAULT_SAMPLE,
    seed: int = DEFAULT_SEED,
    store_url: str | None = None,
    alerts: AlertConfig | None = None,
    drift: DriftConfig | None = None,
    reports: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_months: int | None = None,
    fresh: bool = False,
    api_keys: Sequence[str] = (),
    on_serving: Callable[[str], None] | None = None,
    on_month: Callable[[MonthResult], None] | None = None,
    progress: Advance | None = None,
) -> SimulationResult:
    """Replay the production period month by month (see the module); only its first `max_months` if given.

    `data`: a raw kc_house_data.csv path, a scenario name (or `synthetic`), or None to download the King
    County file. `alerts` default to `DEFAULT_ALERT_RULES`; `drift` (the feature tests) to Evidently's choices
    with the house schema's overrides (`features.HOUSE.drift_overrides`). The replay's service carries the
    dashboard at /dashboard, live while it runs (the page redraws as each month is stored); `api_keys` may
    sign in to it and `on_serving(url)` is told its address. `on_month(result)` runs after each month is
    stored; `progress(done, total)` follows the months.
    """
    _check_arguments(sample, batch_size, concurrency, max_months)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SimulationError(f"{out}: exists and is not a folder")
    rules = alerts if alerts is not None else parse_alert_config(DEFAULT_ALERT_RULES, source="default rules")
    drift = drift or drift_config(
        numerical=HOUSE.numerical,
        categorical=HOUSE.categorical,
        overrides={c: dict(o) for c, o in HOUSE.drift_overrides.items()},
    )
    timings: dict[str, float] = {}
    # BLAS threads only fight the service, the clients and the monitor for the same cores: the matrices are small.
    with threadpool_limits(limits=1, user_api="blas"):
        clock = time.perf_counter()
        source = resolve_source(data)
        prepared = prepare(source.raw, seed=seed, source_sha256=source.sha256)
        timings["prepare_s"] = time.perf_counter() - clock
        store_url = store_url or f"sqlite:///{(out / STORE_FILE).resolve()}"
        settings = {
            "source": source.label,
            "source_sha256": source.sha256,
            "sample": sample,
            "seed": seed,
            "store": display_url(store_url),
            "reports": reports,
            "alerts": rules.model_dump(mode="json"),
            "drift": drift.model_dump(mode="json"),
        }
        if fresh:
            _clear(out)
        state = _open_state(out, settings)
        _write_data(out, source, prepared)

        train_rows, prod_rows = (_sample(frame, sample, seed) for frame in (prepared.train, prepared.prod))
        plan = plan_months(prod_rows)
        monitor: MonthlyMonitor[MonthPlan] = MonthlyMonitor(
            store_url, out, plan[0].start, reports=reports, alerts=rules, columns=house_columns(drift)
        )
        counts: dict[int, tuple[int, int]] = {}
        done = [MonthResult(**m) for m in state["months"]]
        todo = plan[len(done) : max_months]
        try:
            clock = time.perf_counter()
            model, monitor.estimation_reference = _trained_model(prepared, out / MODEL_DIR)
            timings["train_s"] = time.perf_counter() - clock
            with _service(model, store_url, out, api_keys, batch_size, concurrency) as (store, client, url):
                if on_serving:
                    on_serving(url)
                if done and store.count() == 0:
                    raise SimulationError(
                        f"{out / STATE_FILE}: {len(done)} months are done but {store.display_url} is empty; use --fresh"
                    )
                clock = time.perf_counter()
                client.predict(_unscored(store, train_rows))
                client.label(train_rows)
                state["reference_rows"] = len(train_rows)
                _save_state(out, state)
                timings["reference_s"] = time.perf_counter() - clock
                if progress:
                    progress(len(done), len(plan))

                def finish(month: MonthPlan, found: dict[str, Any]) -> None:
                    listed, sold = counts.pop(month.index)
                    result = MonthResult(
                        index=month.index,
                        start=f"{month.start:%Y-%m-%d}",
                        end=f"{month.end:%Y-%m-%d}",
                        listed_from=f"{month.listed_from:%Y-%m-%d}",
                        listed=listed,
                        sold=sold,
                        **found,
                    )
                    done.append(result)
                    state["months"].append(asdict(result))
                    _save_state(out, state)
                    if on_month:
                        on_month(result)
                    if progress:
                        progress(len(done), len(plan))

                clock = time.perf_counter()
                for month in todo:
                    listed = prod_rows[
                        (prod_rows["date_listed"] >= month.listed_from) & (prod_rows["date_listed"] < month.end)
                    ]
                    sold = prod_rows[(prod_rows["date_sold"] >= month.start) & (prod_rows["date_sold"] < month.end)]
                    client.predict(_unscored(store, listed))
                    client.label(sold)
                    counts[month.index] = (len(listed), len(sold))
                    monitor.submit(month, month.start, month.end)
                    for finished in monitor.finished(store):
                        finish(*finished)
                timings["replay_s"] = time.perf_counter() - clock
                clock = time.perf_counter()
                for finished in monitor.finished(store, wait=True):
                    finish(*finished)
                timings["last_monitor_s"] = time.perf_counter() - clock
        finally:
            monitor.close()
    return SimulationResult(
        out,
        display_url(store_url),
        source.label,
        model.version,
        len(train_rows),
        len(prod_rows),
        tuple(done),
        len(plan),
        len(state["months"]) - len(todo),
        out / JSON_FILE,
        timings,
    )


def resolve_source(data: str | Path | None) -> Source:
    """A scenario name, a raw CSV path, or None (the King County file, downloaded once and cached)."""
    if data is not None and is_scenario(str(data)):
        scenario = get_scenario(str(data))
        raw = scenario.sales()
        digest = hashlib.sha256(pd.util.hash_pandas_object(raw, index=False).to_numpy().tobytes()).hexdigest()
        return Source(f"scenario {scenario.name}", digest, raw, scenario.name)
    if data is not None and not Path(data).is_file():
        raise SimulationError(
            f"--data {data}: no such file, and not a scenario (known: {SYNTHETIC}, {', '.join(SCENARIOS)})"
        )
    path = fetch_raw(data)
    return Source(f"file {path}", sha256_file(path), load_raw(path))


def plan_months(prod: pd.DataFrame) -> list[MonthPlan]:
    """Calendar months from the first production sale's to the last's; the first lists from a year earlier."""
    first = prod["date_sold"].min().to_period("M").to_timestamp()
    starts = pd.date_range(first, prod["date_sold"].max(), freq="MS")
    early = min(first - pd.DateOffset(years=1), prod["date_listed"].min().normalize())
    return [
        MonthPlan(i, early if i == 0 else start, start, start + pd.DateOffset(months=1))
        for i, start in enumerate(starts)
    ]


# ============================================================================ the service and its clients


class ServiceClient:
    """Posts to the service as production clients would: `concurrency` requests in flight, `batch_size` houses each."""

    def __init__(self, base_url: str, api_key: str, *, batch_size: int, concurrency: int) -> None:
        self.batch_size = batch_size
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._http = httpx.Client(
            base_url=base_url, headers={API_KEY_HEADER: api_key}, timeout=REQUEST_TIMEOUT_S, limits=limits
        )
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="forwardlab-client")

    def close(self) -> None:
        self._pool.shutdown()
        self._http.close()

    def predict(self, houses: pd.DataFrame) -> None:
        """Score the houses (id and the nine features); each prediction is stored under the house's id, made
        on the house's listing day (what windows of predictions are cut by)."""
        features = HOUSE.typed(houses)
        records = [
            {"entity_id": entity, "features": f, "predicted_at": f"{listed:%Y-%m-%dT%H:%M:%S}"}
            for entity, f, listed in zip(houses["id"], features.to_dict("records"), houses["date_listed"], strict=True)
        ]
        self._post_all("/v1/predict", records, "records")

    def label(self, sales: pd.DataFrame) -> None:
        """Post each sale's price as the ground truth of its house's predictions, observed on the sale day."""
        labels = [
            {"entity_id": entity, "price_usd": float(price), "label_at": f"{sold:%Y-%m-%dT%H:%M:%S}"}
            for entity, price, sold in zip(sales["id"], sales["price"], sales["date_sold"], strict=True)
        ]
        self._post_all("/v1/ground-truth", labels, "labels", max(self.batch_size, LABEL_BATCH_RECORDS))

    def _post_all(self, path: str, items: Sequence[dict[str, Any]], batch_key: str, size: int | None = None) -> None:
        size = size or self.batch_size
        if size == 1:
            bodies: list[dict[str, Any]] = list(items)
        else:
            bodies = [{batch_key: list(items[i : i + size])} for i in range(0, len(items), size)]
        for _ in self._pool.map(lambda body: self._post(path, body), bodies):
            pass

    def _post(self, path: str, body: dict[str, Any]) -> None:
        try:
            response = self._http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise SimulationError(f"POST {path}: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise SimulationError(f"POST {path}: HTTP {response.status_code}: {response.text[:300]}")


@contextmanager
def _service(
    model: PriceModel, store_url: str, out: Path, api_keys: Sequence[str], batch_size: int, concurrency: int
) -> Iterator[tuple[Store, ServiceClient, str]]:
    """The store, the service over it on a free port of 127.0.0.1 with a one-off key (plus `api_keys`) and the
    dashboard mounted, a client of it, and the dashboard's URL."""
    key = secrets.token_urlsafe(24)
    keys = [key, *api_keys]
    # NORMAL: in WAL mode a commit survives a killed process (what resuming needs), only not a power cut.
    with Store(store_url, synchronous="NORMAL") as store:
        board = dashboard_app(store, out, api_keys=keys, refresh_s=DASHBOARD_REFRESH_S)
        with start_server(create_app(model, store, api_keys=keys, dashboard=board)) as server:
            # The results tables exist before the monitor worker reads them: SQLite refuses (rather than waits
            # for) a CREATE in a transaction that began reading while the service writes.
            results.ensure_tables(store)
            client = ServiceClient(server.base_url, key, batch_size=batch_size, concurrency=concurrency)
            try:
                yield store, client, f"{server.base_url}{DASHBOARD_PATH}/"
            finally:
                client.close()


# ============================================================================ state, data, model, outputs


def _open_state(out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The replay's state: resumed when its settings are these, refused when they are not, else a new one."""
    path = out / STATE_FILE
    if path.is_file():
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SimulationError(f"{path}: not a replay state file ({exc}); use --fresh") from exc
        if state.get("version") != STATE_VERSION or not isinstance(state.get("months"), list):
            raise SimulationError(f"{path}: not a replay state file of this version; use --fresh")
        changed = sorted(k for k in settings.keys() | state.get("settings", {}).keys()
                         if settings.get(k) != state.get("settings", {}).get(k))  # fmt: skip
        if changed:
            raise SimulationError(
                f"{out}: holds a replay with other settings ({', '.join(changed)}); use another --out, or --fresh"
            )
        return dict(state)
    if (out / STORE_FILE).exists():
        raise SimulationError(f"{out}: has a {STORE_FILE} but no {STATE_FILE}; use another --out, or --fresh")
    state = {"version": STATE_VERSION, "settings": settings, "reference_rows": None, "months": []}
    _save_state(out, state)
    return state


def _save_state(out: Path, state: dict[str, Any]) -> None:
    write_text_atomic(out / STATE_FILE, json.dumps(results.finite(state), indent=2) + "\n")


def _clear(out: Path) -> None:
    """Remove what a replay writes into `out` (only that: the folder may hold other files)."""
    for name in (STATE_FILE, JSON_FILE, STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm"):
        (out / name).unlink(missing_ok=True)
    for name in (REPORTS_DIR, DATA_DIR, MODEL_DIR):
        shutil.rmtree(out / name, ignore_errors=True)


def _write_data(out: Path, source: Source, prepared: PreparedData) -> None:
    """The prepared splits (and a scenario's raw sales) as CSV files beside the results, to look at."""
    write_prepared(prepared, out / DATA_DIR)
    if source.scenario is not None and not (out / DATA_DIR / RAW_FILE).is_file():
        with atomic_path(out / DATA_DIR / RAW_FILE) as tmp:
            source.raw.to_csv(tmp, index=False)


def _trained_model(prepared: PreparedData, folder: Path) -> tuple[PriceModel, Path]:
    """The model of an earlier run on the same training rows, or a newly trained (and saved) one, and its
    estimation reference (the training rows scored out of fold: what the label-free MAE estimate learns)."""
    if folder.is_dir():
        try:
            model = load_model(folder)
        except ModelError:
            model = None
        if model is not None and model.metadata.data_sha256 == data_sha256(prepared.train):
            saved = resolve_model_dir(folder) / ESTIMATION_REFERENCE_FILE
            if saved.is_file():
                return model, saved
            return model, save_estimation_reference(model, prepared.train, resolve_model_dir(folder))
    model = train(prepared.train)
    version_dir = save_model(model, folder)
    return model, save_estimation_reference(model, prepared.train, version_dir)


def _sample(frame: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """The prototype's seeded sample, in listing order (the order houses come to market)."""
    sampled = frame if fraction >= 1 else frame.sample(frac=fraction, random_state=seed)
    return sampled.sort_values(["date_listed", "id"], kind="stable").reset_index(drop=True)


def _unscored(store: Store, houses: pd.DataFrame) -> pd.DataFrame:
    """The houses without a stored prediction yet (all of them, unless a killed run scored some)."""
    known = store.predicted_entities(houses["id"])
    return houses[~houses["id"].isin(known)] if known else houses


def _check_arguments(sample: float, batch_size: int, concurrency: int, max_months: int | None) -> None:
    if not 0 < sample <= 1:
        raise SimulationError(f"sample {sample}: must be in (0, 1]")
    if not 1 <= batch_size <= MAX_BATCH_RECORDS:
        raise SimulationError(f"batch size {batch_size}: must be 1 to {MAX_BATCH_RECORDS}")
    if concurrency < 1:
        raise SimulationError(f"concurrency {concurrency}: must be at least 1")
    if max_months is not None and max_months < 0:
        raise SimulationError(f"months {max_months}: must be 0 or more")
