"""The production replay through the real service on 127.0.0.1: months that add up to the data, results in the
store and in monitoring.json, the scenarios' verdicts, and a killed replay that resumes to the same end."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from forwardlab.monitor import results
from forwardlab.monitor.data import prepare
from forwardlab.monitor.detection import markdown_table, score
from forwardlab.monitor.errors import SimulationError
from forwardlab.monitor.scenarios import ONSET, get_scenario
from forwardlab.monitor.simulation import STATE_FILE, MonthResult, plan_months, simulate
from forwardlab.monitor.store import Store

SMALL = 0.05  # the prototype's dev mode: about 60 sales a month of the synthetic market


def cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "forwardlab", "monitor", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"COLUMNS": "200", "NO_COLOR": "1"},
    )


def expected_months(name: str, sample: float, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the replay should see, computed from the data alone: the sampled splits."""
    prepared = prepare(get_scenario(name).sales())
    return (
        prepared.train.sample(frac=sample, random_state=seed),
        prepared.prod.sample(frac=sample, random_state=seed),
    )


def rounded(value: object) -> object:
    """Floats to 12 significant digits, at any depth: a prediction's last bit depends on which houses the
    service happened to batch it with, so results agree to rounding, not to the bit."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def stored_outcome(out: Path) -> dict[str, object]:
    """Everything a replay leaves that must not depend on being interrupted (ids and clocks left out)."""
    with Store(f"sqlite:///{out / 'store.db'}") as store:
        frame = store.predictions()
        windows = results.load_windows(store).drop(columns=["run_id"])
        columns = results.load_columns(store).drop(columns=["run_id"])
        alerts = results.load_alerts(store)[["rule", "window_start", "window_end", "message", "value"]]
    predictions = frame[["entity_id", "prediction_usd", "label_usd", "label_at"]].sort_values("entity_id")
    state = json.loads((out / STATE_FILE).read_text())
    return {
        "predictions": predictions.reset_index(drop=True),
        "windows": windows,
        "columns": columns,
        "alerts": alerts,
        "months": state["months"],
        "json_windows": [
            {k: v for k, v in w.items() if k != "reports"}
            for w in json.loads((out / "monitoring.json").read_text())["windows"]
        ],
        "reports": sorted(str(p.relative_to(out)) for p in (out / "reports").rglob("*.html")),
    }


def test_the_clock_lists_from_a_year_early_then_steps_by_calendar_month() -> None:
    _, prod = expected_months("no-drift", SMALL)
    plan = plan_months(prod)
    assert [f"{m.start:%Y-%m}" for m in plan] == [str(p) for p in pd.period_range("2014-11", "2015-10", freq="M")]
    assert plan[0].listed_from == pd.Timestamp("2013-11-01")
    assert all(m.listed_from == m.start for m in plan[1:])
    assert all(a.end == b.start for a, b in itertools.pairwise(plan))


@pytest.mark.slow
def test_a_replay_scores_every_listing_labels_every_sale_and_monitors_every_month(tmp_path: Path) -> None:
    seen: list[MonthResult] = []
    result = simulate("synthetic", out_dir=tmp_path, sample=SMALL, reports=False, on_month=seen.append)

    train, prod = expected_months("synthetic", SMALL)
    plan = plan_months(prod)
    assert result.complete and len(result.months) == len(plan) == 12 and seen == list(result.months)
    for month, step in zip(result.months, plan, strict=True):
        listed = prod["date_listed"].between(step.listed_from, step.end, inclusive="left").sum()
        sold = prod["date_sold"].between(step.start, step.end, inclusive="left").sum()
        assert (month.listed, month.sold, month.n_current) == (listed, sold, sold)
    assert sum(m.listed for m in result.months) == sum(m.sold for m in result.months) == len(prod)
    assert result.reference_rows == len(train) and result.production_rows == len(prod)

    with Store(result.store_url) as store:
        stored = store.predictions()
        windows = results.load_windows(store)
    assert len(stored) == len(train) + len(prod) and stored["entity_id"].is_unique  # one prediction a house
    assert stored["label_usd"].notna().all()  # every house sold, within the replay
    assert set(stored["entity_id"]) == set(train["id"]) | set(prod["id"])
    assert list(windows["n_current"]) == [m.sold for m in result.months]
    assert [f"{t:%Y-%m}" for t in windows["window_start"]] == [m.start[:7] for m in result.months]
    document = json.loads(result.json_path.read_text())
    assert [w["n_current"] for w in document["windows"]] == [m.sold for m in result.months]
    assert document["reference"]["n"] == len(train)

    again = simulate("synthetic", out_dir=tmp_path, sample=SMALL, reports=False)  # all done: nothing to do
    assert again.resumed_at == 12 and again.months == result.months
    with Store(result.store_url) as store:
        assert store.count() == len(stored)

    with pytest.raises(SimulationError, match=r"holds a replay with other settings \(sample\); use another --out"):
        simulate("synthetic", out_dir=tmp_path, sample=0.1, reports=False)


@pytest.mark.slow
def test_the_no_drift_control_stays_quiet_and_a_covariate_shift_alerts_at_once(tmp_path: Path) -> None:
    months = 6  # four before the onset, the onset's month and one more
    calm = simulate("no-drift", out_dir=tmp_path / "calm", reports=False, max_months=months)
    shifted = simulate("covariate-shift-sudden", out_dir=tmp_path / "shift", reports=False, max_months=months)

    assert not [m for m in calm.months if "data-drift" in m.alerts]
    assert all(m.status == "ok" and not m.drifted_features for m in calm.months)
    detection = score(get_scenario("covariate-shift-sudden"), shifted.months)
    assert detection.onset == f"{ONSET:%Y-%m}" and detection.false_alarms == 0
    assert detection.delay_windows is not None and detection.delay_windows <= 1
    assert "data-drift" in detection.alerts_at_detection
    onset_month = next(m for m in shifted.months if m.start == f"{ONSET:%Y-%m-%d}")
    assert {"sqft_living", "sqft_above"} <= set(onset_month.drifted_features)
    assert "| covariate-shift-sudden |" in markdown_table([detection])


@pytest.mark.slow
def test_a_killed_replay_resumes_where_it_stopped_and_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    args = ["simulate", "--data", "synthetic", "--sample", str(SMALL), "--months", "5"]
    killed = cli(*args, "--out", str(tmp_path / "killed"))
    state = tmp_path / "killed" / STATE_FILE
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # kill it once two months are done, somewhere in the third to fifth
        if state.is_file() and len(json.loads(state.read_text() or "{}").get("months", [])) >= 2:
            break
        assert killed.poll() is None, killed.communicate()
        time.sleep(0.05)
    workers = psutil.Process(killed.pid).children(recursive=True)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert len(json.loads(state.read_text())["months"]) < 5, "the replay finished before it could be killed"
    assert workers and psutil.wait_procs(workers, timeout=10)[1] == []  # its monitor worker went with it

    resumed = cli(*args, "--out", str(tmp_path / "killed"))
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert "resumed after" in stdout and "5 of 12 months done" in stdout

    whole = simulate("synthetic", out_dir=tmp_path / "whole", sample=SMALL, max_months=5)
    assert len(whole.months) == 5
    got, want = stored_outcome(tmp_path / "killed"), stored_outcome(tmp_path / "whole")
    assert len(got["reports"]) == 15  # type: ignore[arg-type]
    for key in want:
        if isinstance(want[key], pd.DataFrame):
            pd.testing.assert_frame_equal(got[key], want[key], check_exact=False, rtol=1e-9)  # type: ignore[arg-type]
        else:
            assert rounded(got[key]) == rounded(want[key]), key


def test_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    for kwargs, message in (
        ({"sample": 0.0}, r"sample 0.0: must be in \(0, 1\]"),
        ({"batch_size": 0}, "batch size 0: must be 1 to 5000"),
        ({"data": str(tmp_path / "nope.csv")}, r"nope.csv: no such file, and not a scenario \(known: synthetic"),
    ):
        with pytest.raises(SimulationError, match=message):
            simulate(**({"data": "synthetic"} | kwargs), out_dir=tmp_path / "out")  # type: ignore[arg-type]
    (tmp_path / "file").write_text("x")
    with pytest.raises(SimulationError, match="exists and is not a folder"):
        simulate("synthetic", out_dir=tmp_path / "file")


def test_the_command_names_a_bad_data_argument_in_one_line(tmp_path: Path) -> None:
    process = cli("simulate", "--data", "bigger-houses", "--out", str(tmp_path))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr
    assert "--data bigger-houses: no such file, and not a scenario (known: synthetic, no-drift," in stderr
    assert "Traceback" not in stderr
