"""Serving benchmark: the prediction service under load on loopback, ours vs the prototype's shape.

Run by `make bench` as `.venv/bin/python benchmarks/serve.py [--duration S] [--data CSV]`.

Each server runs in its own subprocess (so the load generator does not share its interpreter), on a
fresh SQLite store of the same settings, serving the same freshly trained model:
  naive       the prototype's shape: a sync endpoint; one request -> one predict -> one committed insert
  ours        `forwardlab monitor serve`: concurrent requests micro-batched into one predict + one commit
  ours, no recording   the same with `--no-record` (what recording costs)
The load generator is asyncio over raw keep-alive HTTP/1.1 connections (cheap per request, so the
servers, not the client, are measured): 32 clients sending single records for a fixed time, then a few
clients sending batches of 500. Latency is from request write to response end, per request. Afterwards
every acknowledged uuid is looked up in its store. Ratios come from this one run; nothing asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException

from forwardlab.monitor.schemas import PredictionOut, PredictRecord, PredictResponse

HERE = Path(__file__).resolve().parent
API_KEY = "bench-key"
CLIENTS = 32
BATCH_CLIENTS = 4
BATCH_RECORDS = 500
ROUNDS = 3
TARGET_THROUGHPUT_RATIO = 3.0
TARGET_BATCH_PER_S = 1500.0
TARGET_RECORDING_OVERHEAD = 1.3


# ============================================================================ naive server (subprocess)


def naive_app(model_dir: str, store_url: str) -> Any:
    """The prototype's serving shape on our schema and store: no batching, one commit per request."""
    from forwardlab.monitor.model import load_model
    from forwardlab.monitor.store import PredictionRecord, Store

    model = load_model(model_dir)
    store = Store(store_url)
    app = FastAPI()

    @app.post("/v1/predict")
    def predict(body: PredictRecord, x_api_key: Annotated[str, Header()] = "") -> PredictResponse:
        if x_api_key != API_KEY:
            raise HTTPException(401, "missing or invalid API key")
        features = body.features.model_dump()
        price = float(model.predict([features])[0])
        record = PredictionRecord(str(uuid.uuid4()), model.version, datetime.now(UTC), body.entity_id, features, price)
        store.add_predictions([record])
        return PredictResponse(
            model_version=model.version,
            predictions=[PredictionOut(uuid=record.uuid, entity_id=record.entity_id, price_usd=price)],
        )

    return app


def run_naive_server(model_dir: str, store_url: str) -> None:
    from forwardlab.monitor.server import serve_forever

    serve_forever(
        naive_app(model_dir, store_url),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        on_ready=lambda url: print(f"serving on {url}", flush=True),
    )


# ============================================================================ load generator


@dataclass
class PhaseResult:
    name: str
    seconds: float
    requests: int = 0
    predictions: int = 0
    errors: int = 0
    latencies_s: list[float] = field(default_factory=list)
    uuids: list[str] = field(default_factory=list)

    @property
    def req_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def pred_per_s(self) -> float:
        return self.predictions / self.seconds

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def http_request(host: str, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    return status, await reader.readexactly(length)


async def client_loop(
    url: str, bodies: list[bytes], result: PhaseResult, warmup_end: float, stop_at: float, offset: int
) -> None:
    host_port = url.removeprefix("http://")
    host, port = host_port.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    i = offset
    loop = asyncio.get_running_loop()
    try:
        while True:
            now = loop.time()
            if now >= stop_at:
                return
            writer.write(http_request(host_port, "/v1/predict", bodies[i % len(bodies)]))
            i += 1
            status, payload = await read_response(reader)
            done = loop.time()
            if status != 200:
                result.errors += 1
                continue
            made = json.loads(payload)["predictions"]
            result.uuids.extend(p["uuid"] for p in made)  # every acknowledged uuid, warm-up too
            if now >= warmup_end:
                result.requests += 1
                result.predictions += len(made)
                result.latencies_s.append(done - now)
    finally:
        writer.close()


async def drive(name: str, url: str, bodies: list[bytes], clients: int, seconds: float) -> PhaseResult:
    result = PhaseResult(name, seconds)
    loop = asyncio.get_running_loop()
    warmup_end = loop.time() + min(1.0, seconds / 4)
    stop_at = warmup_end + seconds
    await asyncio.gather(*(client_loop(url, bodies, result, warmup_end, stop_at, k * 7) for k in range(clients)))
    return result


# ============================================================================ orchestration


def start(args: list[str], log: Path) -> tuple[subprocess.Popen[str], str]:
    env = os.environ | {"FORWARDLAB_API_KEYS": API_KEY}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log.open("a"), text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("serving on "):
        proc.kill()
        raise SystemExit(f"server did not start: {' '.join(args)}\n{log.read_text()}")
    return proc, line.split()[-1]


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def prepare_model(data: Path | None, work: Path) -> tuple[Path, list[dict[str, Any]]]:
    from forwardlab.monitor.data import fetch_raw, load_raw, prepare
    from forwardlab.monitor.features import HOUSE
    from forwardlab.monitor.model import save_model, train

    prepared = prepare(load_raw(fetch_raw(data)))
    model_dir = work / "model"
    save_model(train(prepared.train), model_dir)
    prod = prepared.prod
    records = [
        {"entity_id": str(row["id"]), "features": {k: row[k] for k in HOUSE.names}}
        for row in prod[["id", *HOUSE.names]].to_dict("records")
    ]
    return model_dir, json.loads(json.dumps(records, default=lambda v: v.item()))


def default_data() -> Path | None:
    env = os.environ.get("FORWARDLAB_SHARED_DATA")
    candidates = [Path(env) if env else None, HERE.parent / ".." / "shared" / "data" / "kc_house_data.csv"]
    for c in candidates:
        if c is not None:
            path = c if c.suffix == ".csv" else c / "kc_house_data.csv"
            if path.is_file():
                return path
    return None  # fetch_raw downloads it into the cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=6.0, help="Measured seconds per phase.")
    parser.add_argument("--data", type=Path, default=None, help="kc_house_data.csv (default: ../shared).")
    parser.add_argument("--serve-naive", nargs=2, metavar=("MODEL", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_naive:
        run_naive_server(*args.serve_naive)
        return

    from forwardlab.monitor.store import Store

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="forwardlab-bench-") as tmp:
        work = Path(tmp)
        model_dir, records = prepare_model(args.data or default_data(), work)
        singles = [json.dumps(r).encode() for r in records]
        batches = [
            json.dumps({"records": records[i : i + BATCH_RECORDS]}).encode()
            for i in range(0, len(records) - BATCH_RECORDS, BATCH_RECORDS)
        ]
        print(f"model trained, {len(records)} production records; {os.cpu_count()} CPUs, SQLite stores")
        serve = [
            sys.executable,
            "-m",
            "forwardlab",
            "monitor",
            "serve",
            "--port",
            "0",
            "--model",
            str(model_dir),
        ]
        phases: list[tuple[str, list[str], list[bytes], int]] = [
            ("naive", [sys.executable, __file__, "--serve-naive", str(model_dir)], singles, CLIENTS),
            ("ours", [*serve, "--log-level", "warning", "--store"], singles, CLIENTS),
            (
                "ours, no recording",
                [*serve, "--no-record", "--log-level", "warning", "--store"],
                singles,
                CLIENTS,
            ),
            ("ours, batch endpoint", [*serve, "--log-level", "warning", "--store"], batches, BATCH_CLIENTS),
        ]
        results: dict[str, PhaseResult] = {}
        missing: dict[str, int] = {}
        servers = []
        try:
            for name, cmd, _, _ in phases:
                store_url = f"sqlite:///{work / (name.replace(' ', '_').replace(',', '') + '.db')}"
                servers.append((store_url, *start([*cmd, store_url], work / "servers.log")))
            # Phases take turns, ROUNDS times, and each keeps its best round: a noisy neighbour on a
            # 2-core machine then slows every phase alike instead of whichever ran at the wrong moment.
            acknowledged: dict[str, list[str]] = {name: [] for name, *_ in phases}
            for _ in range(ROUNDS):
                for (name, _, bodies, clients), (_, _, url) in zip(phases, servers, strict=True):
                    got = asyncio.run(drive(name, url, bodies, clients, args.duration / ROUNDS))
                    acknowledged[name].extend(got.uuids)
                    if name not in results or got.pred_per_s > results[name].pred_per_s:
                        results[name] = got
            for name, uuids in acknowledged.items():
                results[name].uuids = uuids  # the store check covers every round, not just the best
        finally:
            for _, proc, _ in servers:
                stop(proc)
        for (name, _, _, _), (store_url, _, _) in zip(phases, servers, strict=True):
            if "no recording" not in name:
                with Store(store_url) as store:
                    missing[name] = len(store.missing(results[name].uuids))
        report(results, missing)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


def report(results: dict[str, PhaseResult], missing: dict[str, int]) -> None:
    naive, ours, bare, batch = (results[k] for k in ("naive", "ours", "ours, no recording", "ours, batch endpoint"))
    print()
    header = (
        f"{'scenario':<38}{'clients':>8}{'req/s':>10}{'pred/s':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'vs naive':>10}{'errors':>8}"
    )
    print(header)
    print("-" * len(header))
    rows = [
        ("naive: 1 request, 1 predict, 1 commit", CLIENTS, naive),
        ("ours: micro-batched", CLIENTS, ours),
        ("ours: recording disabled", CLIENTS, bare),
        (f"ours: batch endpoint ({BATCH_RECORDS}/request)", BATCH_CLIENTS, batch),
    ]
    for label, clients, r in rows:
        ratio = r.pred_per_s / naive.pred_per_s
        print(
            f"{label:<38}{clients:>8}{r.req_per_s:>10,.0f}{r.pred_per_s:>10,.0f}"
            f"{r.percentile_ms(0.5):>9.1f}{r.percentile_ms(0.99):>9.1f}{ratio:>9.1f}x{r.errors:>8}"
        )
    throughput = ours.req_per_s / naive.req_per_s
    overhead = bare.req_per_s / ours.req_per_s
    acknowledged = sum(len(results[k].uuids) for k in missing)
    lost = sum(missing.values())
    p99_ours, p99_naive = ours.percentile_ms(0.99), naive.percentile_ms(0.99)
    checks = [
        (
            throughput >= TARGET_THROUGHPUT_RATIO,
            f"single-record throughput ours/naive {throughput:.1f}x (>= {TARGET_THROUGHPUT_RATIO:g}x)",
        ),
        (
            p99_ours < p99_naive,
            f"single-record p99 ours {p99_ours:.1f} ms < naive {p99_naive:.1f} ms",
        ),
        (
            batch.pred_per_s >= TARGET_BATCH_PER_S,
            f"batch endpoint {batch.pred_per_s:,.0f} predictions/s (>= {TARGET_BATCH_PER_S:,.0f})",
        ),
        (
            overhead <= TARGET_RECORDING_OVERHEAD,
            f"recording overhead {overhead:.2f}x (<= {TARGET_RECORDING_OVERHEAD:g}x)",
        ),
        (lost == 0, f"acknowledged predictions in the store: {acknowledged - lost:,}/{acknowledged:,}"),
        (all(r.errors == 0 for r in results.values()), "no failed requests"),
    ]
    print()
    for ok, text in checks:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    median_ms = statistics.median(batch.latencies_s) * 1000
    print(f"\nmedian batch latency {median_ms:.0f} ms for {BATCH_RECORDS} records")


if __name__ == "__main__":
    main()
