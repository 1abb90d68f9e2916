"""Alert rules: the config file, rule evaluation over windows, and delivery to a real local webhook receiver
(retries, give-ups, and no second delivery of a (rule, window) across runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from forwardlab.monitor import results
from forwardlab.monitor.alerts import (
    Alert,
    AlertConfig,
    WebhookConfig,
    WindowSummary,
    deliver,
    evaluate,
    load_alert_config,
    parse_alert_config,
)
from forwardlab.monitor.errors import AlertConfigError
from forwardlab.monitor.house import house_columns
from forwardlab.monitor.performance import RegressionMetrics
from forwardlab.monitor.store import Store
from forwardlab.monitor.windows import ReferenceSource, run_monitoring
from tests.support.webhook import webhook_receiver

COLUMNS = house_columns()
RULES = """
[webhook]
url = "http://127.0.0.1:9/hook"
retries = 2

[[rules]]
name = "mae-up"
type = "metric"
metric = "mae_usd"
increase_pct = 20

[[rules]]
name = "drift-share"
type = "metric"
metric = "drift_share"
above = 0.5

[[rules]]
name = "sqft-drift"
type = "drift"
column = "sqft_living"
windows = 2
"""
REFERENCE = RegressionMetrics(1000, 0, 100.0, 120.0, 10.0, 5.0, 0.8, 900.0)
T0 = datetime(2015, 1, 1, tzinfo=UTC)


def window(i: int, *, mae: float = 100.0, share: float = 0.1, sqft: bool | None = False, status: str = "ok"):
    start = T0 + timedelta(days=30 * i)
    return WindowSummary(
        start, start + timedelta(days=30), status, {"mae_usd": mae, "drift_share": share}, {"sqft_living": sqft}
    )


def test_a_rules_file_loads_and_its_mistakes_are_named(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(RULES)
    config = load_alert_config(path)
    assert [r.name for r in config.rules] == ["mae-up", "drift-share", "sqft-drift"]
    assert config.webhook == WebhookConfig(url="http://127.0.0.1:9/hook", retries=2)
    assert config.columns() == {"sqft_living"}
    bad = [
        ("rules = [{name = 'x', type = 'sms'}]", "rules.0: Input tag 'sms' found using 'type' does not match"),
        ("rules = [{name = 'x', type = 'metric', metric = 'mse', above = 1}]", "unknown metric 'mse' (known: mae_usd"),
        (
            "rules = [{name = 'x', type = 'metric', metric = 'drift_share', increase_pct = 5}]",
            "increase_pct needs a metric the reference has",
        ),
        ("rules = [{name = 'x', type = 'metric', metric = 'r2', above = 1, below = 0}]", "exactly one of above, below"),
        ("rules = [{name = 'x', type = 'drift', column = 'a'}, {name = 'x', type = 'drift', column = 'b'}]", "x used"),
        ("rules = [{name = 'a b', type = 'drift', column = 'a'}]", "rules.0.drift.name: String should match pattern"),
        ("webhook = {url = 'ftp://x'}", "webhook.url: String should match pattern"),
        ("colour = 'red'", "colour: Extra inputs are not permitted"),
        ("rules = [", "not valid TOML"),
    ]
    for text, message in bad:
        path.write_text(text)
        with pytest.raises(AlertConfigError, match=f"^{path}: ") as caught:
            load_alert_config(path)
        assert message in str(caught.value), (text, str(caught.value))
    with pytest.raises(AlertConfigError, match="cannot read the rules file"):
        load_alert_config(tmp_path / "missing.toml")


def test_rules_fire_on_the_windows_that_break_them() -> None:
    config = parse_alert_config({"rules": [r.model_dump() for r in load_rules().rules]})
    history = [
        window(0, mae=119.0),  # +19%: below the 20% limit
        window(1, mae=121.0, sqft=True),  # +21%; sqft drifts once
        window(2, share=0.6, sqft=True),  # share above 0.5; sqft drifts a second window running
        window(3, sqft=True, status="insufficient data"),  # never fires, breaks the run
        window(4, sqft=True),
    ]
    alerts = evaluate(config, history, REFERENCE)
    assert [(a.rule, a.window_start) for a in alerts] == [
        ("mae-up", history[1].start),
        ("drift-share", history[2].start),
        ("sqft-drift", history[2].start),
    ]
    assert alerts[0].message == "mae_usd 121 is 21.0% above the reference's 100 (limit 20%)"
    assert alerts[0].value == pytest.approx(21.0)
    assert alerts[2].message == "sqft_living drifted in 2 windows running"
    assert evaluate(config, history, REFERENCE, first=2) == alerts[1:]  # earlier windows only as context
    gap = [window(0, sqft=True), window(2, sqft=True)]  # not consecutive
    assert evaluate(config, gap, REFERENCE) == []


def load_rules() -> AlertConfig:
    import tomllib

    return parse_alert_config(tomllib.loads(RULES))


def alert(rule: str = "mae-up") -> Alert:
    return Alert(rule, T0, T0 + timedelta(days=31), "mae_usd up", 21.0)


def test_delivery_retries_transient_failures_and_gives_up_cleanly() -> None:
    waits: list[float] = []
    with webhook_receiver() as hook:
        hook.answer(503, 429, headers={"Retry-After": "7"})
        config = WebhookConfig(url=hook.url, retries=3, backoff_s=0.5)
        [ok] = deliver([alert()], config, run_id="run-1", sleep=waits.append)
        assert (ok.delivered, ok.attempts) == (True, 3)
        assert [r.status for r in hook.received] == [503, 429, 200]
        assert waits == [7.0, 7.0]  # the server's Retry-After wins over the 0.5 s, 1 s backoff
        assert {r.headers["idempotency-key"] for r in hook.received} == {alert().key}
        body = hook.received[-1].body
        assert body == {"source": "forwardlab", "run_id": "run-1", **alert().to_dict()}

        hook.answer(400)
        [rejected] = deliver([alert()], config, run_id="run-1", sleep=waits.append)
        assert (rejected.delivered, rejected.attempts) == (False, 1)
        assert rejected.error == f"{hook.url}: HTTP 400 (not retried)"

        hook.answer(500, 500, 500, 500)
        waits.clear()
        [failed] = deliver([alert()], config, run_id="run-1", sleep=waits.append)
        assert (failed.delivered, failed.attempts, waits) == (False, 4, [0.5, 1.0, 2.0])
        assert failed.error == f"{hook.url}: HTTP 500 after 4 tries"
        url = hook.url
    [unreachable] = deliver([alert()], WebhookConfig(url=url, retries=1), run_id="r", sleep=waits.append)
    assert not unreachable.delivered and "ConnectError" in (unreachable.error or "")


def test_each_rule_and_window_is_delivered_once_across_runs(scored_store: Store, kc_is_real: bool) -> None:
    """Through real runs: an undelivered alert is retried by the next run; a delivered one is never resent."""
    rules = {
        "rules": [
            {"name": "mae-up", "type": "metric", "metric": "mae_usd", "increase_pct": 15},
            {"name": "target-drift", "type": "drift", "column": "label_usd", "windows": 2},
        ]
    }
    reference = ReferenceSource(end=datetime(2014, 11, 1, tzinfo=UTC))
    with webhook_receiver() as hook:
        config = parse_alert_config(rules | {"webhook": {"url": hook.url, "retries": 0}})
        expected = (
            [("target-drift", "2015-02"), ("mae-up", "2015-04")]  # Jan + Feb target drift; Apr MAE
            if kc_is_real
            else [
                ("mae-up", "2015-02"),
                ("mae-up", "2015-03"),
                ("target-drift", "2015-03"),
                ("mae-up", "2015-04"),
                ("target-drift", "2015-04"),
            ]
        )  # the stand-in market's prices rise 25% in February: MAE at once, target drift two windows running
        hook.answer(*[503] * len(expected))
        first = run_monitoring(scored_store, window="month", reference=reference, columns=COLUMNS, alerts=config)
        fired = [(a.rule, f"{a.window_start:%Y-%m}") for a in first.alerts]
        assert fired == expected
        assert [d.delivered for d in first.deliveries] == [False] * len(fired)

        second = run_monitoring(scored_store, window="month", reference=reference, columns=COLUMNS, alerts=config)
        assert [(a.rule, f"{a.window_start:%Y-%m}") for a in second.alerts] == fired
        assert [d.delivered for d in second.deliveries] == [True] * len(fired)
        third = run_monitoring(scored_store, window="month", reference=reference, columns=COLUMNS, alerts=config)
        assert len(third.alerts) == len(fired) and third.deliveries == ()
        assert [r.status for r in hook.received] == [503] * len(fired) + [200] * len(fired)
        stored = results.load_alerts(scored_store)
        assert stored["delivered_at"].notna().all() and stored["attempts"].tolist() == [2] * len(fired)
        assert set(stored["run_id"]) == {first.run_id}  # raised once, by the first run

        # a later, separate run over March and April alone still sees February in the store: the target
        # drift rule needs the previous window, which only the stored history has
        later = run_monitoring(
            scored_store,
            window="month",
            reference=reference,
            columns=COLUMNS,
            alerts=config,
            start=datetime(2015, 3, 1, tzinfo=UTC),
        )
        assert [(a.rule, f"{a.window_start:%Y-%m}") for a in later.alerts] == [f for f in fired if f[1] >= "2015-03"]


def test_drift_rules_must_name_a_monitored_column(scored_store: Store) -> None:
    config = parse_alert_config({"rules": [{"name": "x", "type": "drift", "column": "colour"}]})
    with pytest.raises(AlertConfigError, match=r"drift rule\(s\) name column\(s\) colour, which are not monitored"):
        run_monitoring(scored_store, window="month", reference=ReferenceSource(end=T0), columns=COLUMNS, alerts=config)
