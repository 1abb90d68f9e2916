"""`forwardlab monitor drift` and `forwardlab monitor run` as a user runs them: real subprocesses, real files,
a real store and webhook receiver; results equal the library's, user errors are one line and exit 2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from forwardlab.monitor.data import PreparedData
from forwardlab.monitor.drift.calculator import compare
from forwardlab.monitor.drift.config import drift_config
from forwardlab.monitor.features import HOUSE
from forwardlab.monitor.store import Store
from forwardlab.monitor.windows import read_frame
from tests.support.cli_runner import run as run_cli
from tests.support.webhook import webhook_receiver

NUMERICAL, CATEGORICAL = ",".join(HOUSE.numerical), ",".join(HOUSE.categorical)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("monitor", *args, env=env)


@pytest.fixture(scope="module")
def tables(prepared: PreparedData, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The training sales and March 2015's, as CSV files (zip codes as numbers, as a CSV reader sees them)."""
    folder = tmp_path_factory.mktemp("tables")
    march = prepared.prod[prepared.prod["date_sold"].dt.strftime("%Y-%m") == "2015-03"]
    prepared.train[list(HOUSE.names)].to_csv(folder / "train.csv", index=False)
    march[list(HOUSE.names)].to_csv(folder / "march.csv", index=False)
    return folder / "train.csv", folder / "march.csv"


def test_help_shows_examples() -> None:
    for command in ("drift", "run"):
        text = run(command, "--help").stdout
        assert "Example:" in text and f"forwardlab monitor {command} " in text


def test_drift_prints_the_librarys_verdicts(tables: tuple[Path, Path], tmp_path: Path) -> None:
    reference, current = tables
    args = [str(reference), str(current), "--numerical", NUMERICAL, "--categorical", CATEGORICAL]
    overrides = ["--test", "zipcode=psi", "--threshold", "sqft_lot=0.2"]
    result = run("drift", *args, *overrides, "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    config = drift_config(
        numerical=HOUSE.numerical,
        categorical=HOUSE.categorical,
        overrides={"zipcode": {"test": "psi"}, "sqft_lot": {"threshold": 0.2}},
    )
    expected = compare(read_frame(reference), read_frame(current), config)
    assert [(c["column"], c["test"], c["threshold"], c["drift"]) for c in printed["columns"]] == [
        (c.column, c.test, c.threshold, c.drift) for c in expected.columns
    ]
    assert [c["score"] for c in printed["columns"]] == pytest.approx([c.score for c in expected.columns], abs=1e-12)
    assert printed["drift_share"] == expected.drift_share

    html = tmp_path / "drift.html"
    table = run("drift", *args, "--html", str(html))
    assert table.returncode == 0, table.stderr
    assert "Wasserstein distance (normed)" in table.stdout and "zipcode" in table.stdout
    assert f"of {len(HOUSE.names)} columns drifted" in table.stdout
    assert html.read_text(encoding="utf-8").lstrip().startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_run_writes_the_time_series_and_posts_alerts(scored_store: Store, kc_is_real: bool, tmp_path: Path) -> None:
    rules = tmp_path / "alerts.toml"
    rules.write_text('[[rules]]\nname = "mae-up"\ntype = "metric"\nmetric = "mae_usd"\nincrease_pct = 15\n')
    out = tmp_path / "out"
    store_url = str(scored_store.url)
    scored_store.close()
    with webhook_receiver() as hook:
        result = run(
            "run", "--store", store_url, "--reference-end", "2014-11-01", "--out", str(out), "--no-reports",
            "--alerts", str(rules), "--webhook-url", hook.url, "--test", "label_usd=ks",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        # April on the real data; on the stand-in market, every month from its price jump in February
        months = ["2015-04"] if kc_is_real else ["2015-02", "2015-03", "2015-04"]
        assert [r.body["rule"] for r in hook.received] == ["mae-up"] * len(months)
        assert [r.body["window_start"][:7] for r in hook.received] == months
    assert "2015-04-01..2015-05-01" in result.stdout and "alert mae-up [2015-04-01..2015-05-01]" in result.stdout
    written = json.loads((out / "monitoring.json").read_text())
    assert len(written["windows"]) == 6 and written["alerts"][0]["rule"] == "mae-up"
    assert {w["target_drift"]["test"] for w in written["windows"]} == {"ks"}  # the override reached the target
    assert "windows (load" in result.stderr and str(out / "monitoring.json") in result.stderr.replace("\n", "")

    as_json = run("run", "--store", store_url, "--reference-end", "2014-11-01", "--out", str(out), "--no-reports",
                  "--json")  # fmt: skip
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["windows"] == json.loads((out / "monitoring.json").read_text())["windows"]


def test_user_errors_are_one_line_and_exit_2(tables: tuple[Path, Path], tmp_path: Path) -> None:
    reference, current = tables
    columns = ["--numerical", NUMERICAL, "--categorical", CATEGORICAL]
    no_view = tmp_path / "no_view.csv"
    read_frame(current).drop(columns="view").to_csv(no_view, index=False)
    cases = [
        (("drift", str(reference), str(no_view), *columns), r"current: missing column(s) view"),
        (("drift", str(reference), str(current), *columns, "--test", "zipcode=kl"), "unknown test 'kl'"),
        (("drift", str(reference), str(tmp_path / "none.csv"), *columns), "none.csv: file does not exist"),
        (("drift", str(reference), str(current)), "no columns to compare"),
        (
            (
                "run",
                "--store",
                f"sqlite:///{tmp_path / 's.db'}",
                "--window",
                "fortnight",
                "--reference-end",
                "2014-11-01",
            ),
            "window 'fortnight': use month, week or N-days",
        ),
        (("run", "--store", f"sqlite:///{tmp_path / 's.db'}"), "reference: give either a file"),
        (
            ("run", "--store", f"sqlite:///{tmp_path / 's.db'}", "--reference-end", "2014-11-01"),
            "no rows",
        ),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
