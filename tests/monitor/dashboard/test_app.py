"""The dashboard over real HTTP on loopback, mounted on the real service, over a store that a real monitoring
run (with Evidently reports and an alert) filled: its JSON equals the store, keys guard it, new windows appear
while it runs, and in headless Chromium it signs in, draws its charts and opens a window's Evidently report."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest

from forwardlab.monitor import results
from forwardlab.monitor.alerts import parse_alert_config
from forwardlab.monitor.dashboard import app_from_paths, dashboard_app, session, standalone_app
from forwardlab.monitor.drift.stattests import STATTESTS
from forwardlab.monitor.errors import ServiceConfigError
from forwardlab.monitor.features import HOUSE
from forwardlab.monitor.house import house_columns
from forwardlab.monitor.model import PriceModel
from forwardlab.monitor.server import RunningServer, start_server
from forwardlab.monitor.service import create_app
from forwardlab.monitor.store import Store
from forwardlab.monitor.windows import ReferenceSource, run_monitoring
from tests.monitor.conftest import API_KEY
from tests.support.browser import ARTIFACTS, open_page

REFERENCE = ReferenceSource(end=datetime(2014, 11, 1, tzinfo=UTC))
COLUMNS = house_columns()
BUSY_RULE = {"rules": [{"name": "busy-window", "type": "metric", "metric": "n_current", "above": 100}]}


def utc(text: str) -> datetime:
    return pd.Timestamp(text, tz="UTC").to_pydatetime()


@dataclass
class Board:
    """The service with the dashboard mounted, over a store with two monitored months and their reports."""

    server: RunningServer
    store: Store
    out: Path

    @property
    def url(self) -> str:
        return self.server.base_url + "/dashboard"


@pytest.fixture(scope="module")
def board(scored_store_file: Path, model: PriceModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    folder = tmp_path_factory.mktemp("dashboard")
    shutil.copyfile(scored_store_file, folder / "store.db")
    out = folder / "monitoring"
    with Store(f"sqlite:///{folder / 'store.db'}") as store:
        run_monitoring(
            store, window="month", reference=REFERENCE, columns=COLUMNS, end=utc("2015-01-01"), out_dir=out, workers=1,
            alerts=parse_alert_config(BUSY_RULE),
        )  # fmt: skip
        app = create_app(model, store, api_keys=[API_KEY], dashboard=dashboard_app(store, out, api_keys=[API_KEY]))
        with start_server(app) as server:
            yield Board(server, store, out)


def summary(client: httpx.Client, **params: str) -> dict:
    response = client.get("/dashboard/api/summary", params=params)
    assert response.status_code == 200, response.text
    return response.json()


# ------------------------------------------------------------------ units


def test_sessions_are_signed_by_a_key_and_expire() -> None:
    token = session.issue(b"key-a", now_s=1000, lifetime_s=60)
    assert session.verify(token, [b"key-b", b"key-a"], now_s=1059)
    assert not session.verify(token, [b"key-a"], now_s=1060)  # expired
    assert not session.verify(token, [b"key-b"], now_s=1000)  # the key that signed it was removed
    expires, _, signature = token.partition(".")
    assert not session.verify(f"{int(expires) + 3600}.{signature}", [b"key-a"], now_s=1000)  # extended by hand
    for bad in (None, "", "abc", ".", "1000", f"x.{signature}"):
        assert not session.verify(bad, [b"key-a"], now_s=0)


def test_severity_puts_p_values_and_distances_on_one_scale() -> None:
    assert STATTESTS["ks"].severity(0.01, 0.05) == pytest.approx(5.0)  # p below the threshold: drift, 5x
    assert STATTESTS["ks"].severity(0.5, 0.05) == pytest.approx(0.1)
    assert STATTESTS["wasserstein"].severity(0.3, 0.1) == pytest.approx(3.0)
    assert STATTESTS["psi"].severity(0.05, 0.1) == pytest.approx(0.5)
    assert STATTESTS["chisquare"].severity(0.0, 0.05) == float("inf")


def test_the_cli_refuses_a_missing_store_reports_or_keys(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(ServiceConfigError, match="no API keys"):
        app_from_paths(store_url, tmp_path, api_keys=[])
    with pytest.raises(ServiceConfigError, match="nowhere: the reports folder does not exist"):
        app_from_paths(store_url, tmp_path / "nowhere", api_keys=[API_KEY])
    with pytest.raises(ServiceConfigError, match=r"store\.db: no such store file"):
        app_from_paths(store_url, tmp_path, api_keys=[API_KEY])


# ------------------------------------------------------------------ JSON and auth over HTTP


@pytest.mark.slow
def test_summary_is_what_the_store_holds(board: Board) -> None:
    with httpx.Client(base_url=board.server.base_url, headers={"X-API-Key": API_KEY}, timeout=30) as client:
        data = summary(client)
        windows, columns = results.load_windows(board.store), results.load_columns(board.store)
        assert data["window_spec"] == "month" and data["window_specs"] == ["month"]
        assert [w["label"] for w in data["windows"]] == ["2014-11-01..2014-12-01", "2014-12-01..2015-01-01"]
        assert [w["n_current"] for w in data["windows"]] == windows["n_current"].tolist()
        assert [w["metrics"]["mae_usd"] for w in data["windows"]] == pytest.approx(windows["mae_usd"].tolist())
        assert [w["drift_share"] for w in data["windows"]] == pytest.approx(windows["drift_share"].tolist())
        assert [w["target_drift"]["drift"] for w in data["windows"]] == windows["target_drift"].tolist()
        run = results.latest_run(board.store)
        assert data["reference"]["metrics"]["mae_usd"] == pytest.approx(run["reference_metrics"]["mae_usd"])

        heat = data["heatmap"]
        assert heat["features"] == list(HOUSE.names)
        features = columns[columns["role"] == "feature"]
        for i, feature in enumerate(heat["features"]):
            stored = features[features["column_name"] == feature].sort_values("window_start")
            assert [c["drift"] for c in heat["cells"][i]] == stored["drift"].tolist()
            assert [c["score"] for c in heat["cells"][i]] == pytest.approx(stored["score"].tolist())
            for cell in heat["cells"][i]:
                assert (cell["severity"] >= 1) == cell["drift"]

        stored_alerts = results.load_alerts(board.store)
        assert [a["rule"] for a in data["alerts"]] == stored_alerts["rule"].tolist() == ["busy-window"] * 2

        for window in data["windows"]:
            assert {r["name"] for r in window["reports"]} == {"data_drift", "target_drift", "regression_performance"}
            for report in window["reports"]:
                page = client.get(f"/dashboard/{report['url']}")
                assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
                assert page.content.lstrip().startswith(b"<!DOCTYPE html>") and len(page.content) > 100_000
                if report["name"] == "data_drift":
                    assert b"Dataset Drift" in page.content

        etag = client.get("/dashboard/api/summary").headers["etag"]
        assert client.get("/dashboard/api/summary", headers={"If-None-Match": etag}).status_code == 304
        assert summary(client, window="week")["windows"] == []  # a spec with nothing stored


@pytest.mark.slow
def test_only_a_key_opens_the_dashboard(board: Board) -> None:
    base = board.server.base_url
    report = next(p for p in (board.out / "reports").rglob("data_drift.html")).relative_to(board.out)
    guarded_pages = ["/dashboard/", f"/dashboard/files/{report.as_posix()}"]
    with httpx.Client(base_url=base, timeout=30) as anonymous:
        for headers in ({}, {"X-API-Key": "wrong"}):
            assert anonymous.get("/dashboard/api/summary", headers=headers).status_code == 401
            for path in guarded_pages:
                response = anonymous.get(path, headers=headers)
                assert response.status_code == 303, path
                assert response.headers["location"].startswith("/dashboard/login?next=%2Fdashboard%2F")
        assert anonymous.get("/dashboard/static/vendor/uplot/uPlot.iife.min.js").status_code == 200  # no data there
        assert anonymous.get("/dashboard/login").status_code == 200

        refused = anonymous.post("/dashboard/login", data={"key": "wrong", "next": "/dashboard/"})
        assert refused.status_code == 401 and "not one of this service" in refused.text
        assert session.COOKIE_NAME not in refused.cookies

    with httpx.Client(base_url=base, timeout=30) as browser:
        signed = browser.post("/dashboard/login", data={"key": API_KEY, "next": guarded_pages[1]})
        assert signed.status_code == 303 and signed.headers["location"] == guarded_pages[1]
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/dashboard/" in cookie
        assert API_KEY.lower() not in cookie
        for path in guarded_pages:
            assert browser.get(path).status_code == 200, path
        assert browser.get("/dashboard/api/summary").status_code == 200
        assert browser.get("/dashboard/files/../store.db").status_code == 404  # nothing outside the reports
        assert browser.get("/v1/predictions").status_code == 401  # the session opens the dashboard only

        elsewhere = browser.post("/dashboard/login", data={"key": API_KEY, "next": "//evil.example/x"})
        assert elsewhere.headers["location"] == "/dashboard/"  # no open redirect
        browser.post("/dashboard/logout")
        assert browser.get("/dashboard/api/summary").status_code == 401


@pytest.mark.slow
def test_new_windows_appear_while_it_runs(scored_store: Store, tmp_path: Path) -> None:
    run_monitoring(scored_store, window="month", reference=REFERENCE, columns=COLUMNS, end=utc("2014-12-01"))
    app = standalone_app(
        str(scored_store.url), tmp_path, api_keys=[API_KEY], refresh_s=1.0
    )  # networkidle needs 0.5 s quiet
    with (
        start_server(app) as server,
        httpx.Client(base_url=server.base_url, headers={"X-API-Key": API_KEY}, timeout=30) as client,
        open_page(server.base_url + "/dashboard/", headers={"X-API-Key": API_KEY}) as page,
    ):
        assert client.get("/").headers["location"] == "/dashboard/"
        first = client.get("/dashboard/api/summary")
        assert [w["label"][:7] for w in first.json()["windows"]] == ["2014-11"]
        assert first.json()["windows"][0]["reports"] == []  # reports off: no links to missing files
        page.wait_for_selector("#chart-error[data-points='1']")

        run_monitoring(
            scored_store,
            window="month",
            reference=REFERENCE,
            columns=COLUMNS,
            start=utc("2014-12-01"),
            end=utc("2015-02-01"),
        )
        later = client.get("/dashboard/api/summary", headers={"If-None-Match": first.headers["etag"]})
        assert later.status_code == 200 and later.headers["etag"] != first.headers["etag"]
        assert [w["label"][:7] for w in later.json()["windows"]] == ["2014-11", "2014-12", "2015-01"]
        page.wait_for_selector("#chart-error[data-points='3']")  # the open page redrew by itself
        assert page.locator("#windows tbody tr").count() == 3

        run_monitoring(scored_store, window="14-days", reference=REFERENCE, columns=COLUMNS, end=utc("2014-12-01"))
        newest = summary(client)
        assert newest["window_specs"] == ["14-days", "month"] and newest["window_spec"] == "14-days"
        assert len(summary(client, window="month")["windows"]) == 3


@pytest.mark.slow
def test_the_command_serves_it(scored_store: Store, tmp_path: Path) -> None:
    run_monitoring(scored_store, window="month", reference=REFERENCE, columns=COLUMNS, end=utc("2014-12-01"))
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# dashboard keys\n{API_KEY}\n")
    command = [sys.executable, "-m", "forwardlab", "monitor", "dashboard", "--store", str(scored_store.url),
               "--reports", str(tmp_path), "--port", "0", "--api-keys-file", str(keys),
               "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"dashboard on (http://127\.0\.0\.1:\d+/dashboard/)\n", line)
        assert match, (line, process.stderr.read() if process.poll() is not None else "")
        response = httpx.get(match.group(1) + "api/summary", headers={"X-API-Key": API_KEY}, timeout=30)
        assert response.status_code == 200 and len(response.json()["windows"]) == 1
    finally:
        process.terminate()
        process.wait(timeout=30)

    missing = subprocess.run(
        [*command[:7], "--reports", str(tmp_path / "none"), "--api-keys-file", str(keys)],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "the reports folder does not exist" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr


@pytest.mark.slow
def test_serve_mounts_it_on_the_service(model_dir: Path, store_url: str, tmp_path: Path) -> None:
    from forwardlab.monitor.service import app_from_paths as service_from_paths

    with pytest.raises(ServiceConfigError, match="recording disabled"):
        service_from_paths(model_dir, store_url, api_keys=[API_KEY], record=False, dashboard_reports=tmp_path)
    app = service_from_paths(model_dir, store_url, api_keys=[API_KEY], dashboard_reports=tmp_path)
    with (
        start_server(app) as server,
        httpx.Client(base_url=server.base_url, headers={"X-API-Key": API_KEY}, timeout=30) as client,
    ):
        empty = summary(client)  # a store nothing was monitored in yet
        assert (empty["windows"], empty["window_specs"], empty["alerts"], empty["reference"]) == ([], [], [], None)
        assert client.get("/healthz").json()["status"] == "ok"


# ------------------------------------------------------------------ in the browser


CHARTS = ["chart-error", "chart-drift-share", "chart-target-drift", "chart-prediction-drift"]
PAINTED = """(id) => {
  const canvas = document.querySelector('#' + id + ' canvas');
  if (!canvas) return null;
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  return {width: canvas.width, height: canvas.height, points: document.getElementById(id).dataset.points, painted};
}"""


@pytest.mark.slow
def test_in_a_browser_it_signs_in_draws_and_opens_reports(board: Board) -> None:
    with open_page(board.url + "/", screenshot=ARTIFACTS / "dashboard.png") as page:
        assert "/dashboard/login" in page.url  # sent to the login form first
        page.fill("#key", API_KEY)
        page.click("button[type=submit]")
        page.wait_for_selector("#chart-error[data-points='2']")
        for chart in CHARTS:
            drawn = page.evaluate(PAINTED, chart)
            assert drawn and drawn["width"] > 200 and drawn["height"] > 100, (chart, drawn)
            assert drawn["points"] == "2" and drawn["painted"] > 1000, (chart, drawn)
        assert page.locator("#heatmap tbody tr").count() == len(HOUSE.names)
        assert page.locator("#heatmap tbody td").count() == len(HOUSE.names) * 2
        assert page.locator("#alerts tbody tr").count() == 2
        assert page.locator("#windows tbody tr").count() == 2
        assert page.locator("#windows a[data-report]").count() == 6
        assert page.locator("#production-table tbody tr").count() == 2  # the predictions made per window

        link = page.locator("#windows a[data-report=data_drift]").first
        is_report = "response", lambda r: r.url.endswith("/data_drift.html")
        with page.expect_popup() as popup_info, page.context.expect_event(*is_report) as response_info:
            link.click()
        report = popup_info.value
        report.wait_for_load_state("load")
        assert response_info.value.status == 200 and response_info.value.url.endswith("/data_drift.html")
        report.wait_for_selector("text=Dataset Drift")
        report.close()
        page.bring_to_front()


@pytest.mark.slow
def test_it_shows_the_predictions_made_per_window(scored_store: Store, tmp_path: Path) -> None:
    """Per window: coverage (provisional or not), realized and estimated MAE with its band (in the error
    chart too), multivariate values with alert marks, and the selected window's top segments, as stored."""
    run_monitoring(scored_store, window="month", reference=REFERENCE, columns=COLUMNS, end=utc("2015-03-01"))
    blocks = [record["production"] for record in results.stored_records(scored_store)]
    assert blocks[-1]["provisional"] and not blocks[0]["provisional"]  # February's houses mostly still for sale
    app = standalone_app(str(scored_store.url), tmp_path, api_keys=[API_KEY])
    with (
        start_server(app) as server,
        httpx.Client(base_url=server.base_url, headers={"X-API-Key": API_KEY}, timeout=30) as client,
        open_page(server.base_url + "/dashboard/", headers={"X-API-Key": API_KEY},
                  screenshot=ARTIFACTS / "dashboard-production.png") as page,
    ):  # fmt: skip
        data = summary(client)
        for window, block in zip(data["windows"], blocks, strict=True):
            shown = window["production"]
            assert shown["segments"] == block["segments"][:10]
            assert shown["pca"] == block["multivariate"]["pca"]
            assert shown["domain_classifier"] == block["multivariate"]["domain_classifier"]
            same = {k: v for k, v in block.items() if k not in ("segments", "multivariate")}
            assert {k: shown[k] for k in same} == same

        page.wait_for_selector(f"#chart-error[data-points='{len(blocks)}']")
        drawn = page.evaluate(PAINTED, "chart-error")
        assert drawn and drawn["painted"] > 1000
        legend = page.locator("#chart-error .u-legend").inner_text()
        assert "estimated MAE" in legend and "realized MAE" in legend
        rows = page.locator("#production-table tbody tr")
        assert rows.count() == len(blocks)
        for row, block in zip((rows.nth(i) for i in range(len(blocks))), reversed(blocks), strict=True):  # newest first
            assert row.locator(".badge").count() == (1 if block["provisional"] else 0)
            shown_pct = float(row.locator("td").nth(3).inner_text().split("%")[0])
            assert shown_pct == pytest.approx(100 * block["label_coverage"], abs=0.05)
            alerts = [block["estimated_mae_alert"], *(m["alert"] for m in block["multivariate"].values())]
            assert row.locator("td[data-alert=true] .alert-mark").count() == sum(a is True for a in alerts)

        segments = page.locator("#segments tbody tr")
        assert segments.count() == len(blocks[-1]["segments"][:10])
        assert segments.first.locator("td").nth(1).inner_text() == blocks[-1]["segments"][0]["segment"]
        page.select_option("#segment-window", data["windows"][0]["label"])
        assert segments.first.locator("td").nth(1).inner_text() == blocks[0]["segments"][0]["segment"]


# ------------------------------------------------------------------ after (and during) a replay


@pytest.mark.slow
def test_a_replay_serves_it_live_and_it_shows_every_month_afterwards(tmp_path: Path) -> None:
    """The replay's own service carries the dashboard: after each month it already lists that month. Then,
    served on its own over the replay's store and folder, Chromium draws every month and opens a report."""
    from forwardlab.monitor.simulation import MonthResult, simulate

    urls: list[str] = []
    listed_live: list[list[str]] = []

    def after_month(month: MonthResult) -> None:
        response = httpx.get(urls[0] + "api/summary", headers={"X-API-Key": API_KEY}, timeout=30)
        listed_live.append([w["label"][:7] for w in response.json()["windows"]])

    replay = simulate(
        "synthetic", out_dir=tmp_path, sample=0.1, max_months=3, api_keys=[API_KEY],
        on_serving=urls.append, on_month=after_month,
    )  # fmt: skip
    months = [m.start[:7] for m in replay.months]
    assert listed_live == [months[:1], months[:2], months[:3]]

    app = app_from_paths(replay.store_url, replay.out_dir, api_keys=[API_KEY])
    with (
        start_server(app) as server,
        open_page(server.base_url + "/dashboard/", screenshot=ARTIFACTS / "dashboard-after-replay.png") as page,
    ):
        page.fill("#key", API_KEY)
        page.click("button[type=submit]")
        page.wait_for_selector("#chart-error[data-points='3']")
        for chart in CHARTS:
            drawn = page.evaluate(PAINTED, chart)
            assert drawn and drawn["points"] == "3" and drawn["painted"] > 1000, (chart, drawn)
        assert page.locator("#windows tbody tr").count() == 3
        assert page.locator("#heatmap tbody td").count() == len(HOUSE.names) * 3
        link = page.locator("#windows a[data-report=data_drift]").first  # newest month first
        with page.expect_popup() as popup_info:
            link.click()
        report = popup_info.value
        report.wait_for_load_state("load")
        assert report.url.endswith(f"/reports/{replay.months[-1].start}_{replay.months[-1].end}/data_drift.html")
        report.wait_for_selector("text=Dataset Drift")
        report.close()
