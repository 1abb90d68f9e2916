"""The real `forwardlab monitor serve` process killed with SIGKILL under load: whatever it acknowledged
is in the store after a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from forwardlab.monitor.store import Store
from tests.monitor.conftest import API_KEY, house

TARGET_ACKNOWLEDGED = 400
LOAD_LIMIT_S = 60.0


def start_serve(model_dir: Path, store_url: str, log: Path) -> tuple[subprocess.Popen[str], str]:
    env = os.environ | {"FORWARDLAB_API_KEYS": API_KEY}
    args = ["--port", "0", "--model", str(model_dir), "--store", store_url, "--log-level", "warning"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "forwardlab", "monitor", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=log.open("a"),
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "serving on URL", or "" if it died
    if not line.startswith("serving on "):
        proc.kill()
        pytest.fail(f"serve did not start: {line!r}\n{log.read_text()}")
    return proc, line.split()[-1]


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_prediction(model_dir: Path, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    log = tmp_path / "serve.log"
    proc, url = start_serve(model_dir, store_url, log)
    acknowledged: list[str] = []
    stop = threading.Event()

    def hammer(k: int) -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=10) as client:
            i = 0
            while not stop.is_set():
                i += 1
                body: dict[str, object] = {"entity_id": f"t{k}-{i}", "features": house(bedrooms=i % 6)}
                if i % 5 == 0:
                    body = {"records": [{"entity_id": f"t{k}-{i}-{j}", "features": house()} for j in range(8)]}
                try:
                    response = client.post("/v1/predict", json=body)
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 200:
                    acknowledged.extend(p["uuid"] for p in response.json()["predictions"])

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + LOAD_LIMIT_S
    while len(acknowledged) < TARGET_ACKNOWLEDGED and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # mid-load: requests are in flight, batches mid-commit
    proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len(acknowledged) >= TARGET_ACKNOWLEDGED, log.read_text()

    restarted, url = start_serve(model_dir, store_url, log)
    try:
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}) as client:
            assert client.post("/v1/predict", json={"features": house()}).status_code == 200
        with Store(store_url) as store:
            assert store.missing(acknowledged) == set()
            assert store.count() >= len(acknowledged) + 1
    finally:
        restarted.terminate()
        restarted.wait(timeout=30)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: exit by SIGTERM, no traceback.
    assert restarted.returncode in (0, -signal.SIGTERM) and "Traceback" not in log.read_text()
