"""Alert rules over the monitoring windows, and their delivery to a webhook.

Rules live in a TOML file, one `[[rules]]` table each, chosen by `type`:

    [webhook]                       # optional; without it alerts are only printed and stored
    url = "https://hooks.example.com/forwardlab"
    retries = 3                     # after the first try; on connection errors, 429 and 5xx
    backoff_s = 0.5                 # doubled after each try (a 429's Retry-After wins, up to 30 s)

    [[rules]]
    name = "mae-up"
    type = "metric"
    metric = "mae_usd"              # mae_usd rmse_usd mape_pct mean_error_usd r2 max_abs_error_usd
    increase_pct = 20               #   drift_share n_current, and of the predictions made in the window
                                    #   (`production`): label_coverage realized_mae_usd estimated_mae_usd
                                    #   pca_reconstruction_error domain_classifier_auc;
                                    #   or `above = X` / `below = X`

    [[rules]]
    name = "sqft-living-drift"
    type = "drift"
    column = "sqft_living"          # a feature, or label_usd / prediction_usd
    windows = 2                     # drifting in this many consecutive windows

`increase_pct` compares a window with the same metric on the reference (the model's error on its own
training predictions); the production MAEs compare with the reference's MAE. A provisional realized MAE
(label coverage under the minimum) never fires a rule. A window without enough data never fires a rule
and breaks a consecutive run.

Delivery: one JSON POST per alert with an `Idempotency-Key` header (rule and window), so a receiver can
drop repeats of a retried request. Each (rule, window) is delivered at most once: the metrics store
remembers deliveries, and re-running a window does not alert again (an undelivered alert is retried by
the next run).
"""

from __future__ import annotations

import abc
import itertools
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forwardlab import __version__
from forwardlab.monitor.base import validation_message
from forwardlab.monitor.errors import AlertConfigError
from forwardlab.monitor.performance import PERFORMANCE_METRICS, RegressionMetrics
from forwardlab.monitor.production import COMPARED_WITH_REFERENCE, PRODUCTION_METRICS

WINDOW_METRICS = (*PERFORMANCE_METRICS, "drift_share", "n_current", *PRODUCTION_METRICS)
MAX_RETRY_AFTER_S = 30.0
RuleName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]


@dataclass(frozen=True)
class WindowSummary:
    """What rules look at in one window: its metrics by name, and which columns drifted."""

    start: datetime
    end: datetime
    status: str
    metrics: Mapping[str, float | None]
    drifted: Mapping[str, bool | None]


@dataclass(frozen=True)
class Alert:
    """A rule that fired for a window, with the value that made it fire."""

    rule: str
    window_start: datetime
    window_end: datetime
    message: str
    value: float | None

    @property
    def key(self) -> str:
        """Identifies the alert across runs: one per rule and window."""
        return f"{self.rule}|{self.window_start.isoformat()}|{self.window_end.isoformat()}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["window_start"], out["window_end"] = self.window_start.isoformat(), self.window_end.isoformat()
        return out


class _Rule(BaseModel, abc.ABC):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: RuleName

    @abc.abstractmethod
    def check(self, history: Sequence[WindowSummary], reference: RegressionMetrics | None) -> Alert | None:
        """The alert for the last window of `history` (earlier windows are context), or None."""


class MetricRule(_Rule):
    """A window metric above or below a constant, or up more than `increase_pct` percent on the reference."""

    type: Literal["metric"]
    metric: str
    above: float | None = Field(default=None, allow_inf_nan=False)
    below: float | None = Field(default=None, allow_inf_nan=False)
    increase_pct: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in WINDOW_METRICS:
            raise ValueError(f"unknown metric {value!r} (known: {', '.join(WINDOW_METRICS)})")
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> MetricRule:
        given = [k for k in ("above", "below", "increase_pct") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of above, below or increase_pct")
        if self.increase_pct is not None and self._reference_metric is None:
            comparable = (*PERFORMANCE_METRICS, *COMPARED_WITH_REFERENCE)
            raise ValueError(f"increase_pct needs a metric the reference has ({', '.join(comparable)})")
        return self

    @property
    def _reference_metric(self) -> str | None:
        """The reference's metric this one is compared with (itself, or the MAE for the production MAEs)."""
        return self.metric if self.metric in PERFORMANCE_METRICS else COMPARED_WITH_REFERENCE.get(self.metric)

    def check(self, history: Sequence[WindowSummary], reference: RegressionMetrics | None) -> Alert | None:
        window = history[-1]
        value = window.metrics.get(self.metric)
        if value is None:
            return None
        if self.above is not None and value > self.above:
            return _alert(self.name, window, f"{self.metric} {value:,.4g} > {self.above:,.4g}", value)
        if self.below is not None and value < self.below:
            return _alert(self.name, window, f"{self.metric} {value:,.4g} < {self.below:,.4g}", value)
        if self.increase_pct is not None and reference is not None:
            base = reference.value(self._reference_metric or self.metric)
            if base:
                change = (value - base) / abs(base) * 100.0
                if change > self.increase_pct:
                    message = (
                        f"{self.metric} {value:,.4g} is {change:.1f}% above the reference's {base:,.4g} "
                        f"(limit {self.increase_pct:g}%)"
                    )
                    return _alert(self.name, window, message, change)
        return None


class DriftRule(_Rule):
    """A column drifting in `windows` consecutive windows (each starting where the previous ended)."""

    type: Literal["drift"]
    column: str = Field(min_length=1)
    windows: int = Field(default=1, ge=1, le=100)

    def check(self, history: Sequence[WindowSummary], reference: RegressionMetrics | None) -> Alert | None:
        run = history[-self.windows :]
        if len(run) < self.windows or not all(w.status == "ok" and w.drifted.get(self.column) is True for w in run):
            return None
        if any(a.end != b.start for a, b in itertools.pairwise(run)):
            return None
        span = "this window" if self.windows == 1 else f"{self.windows} windows running"
        return _alert(self.name, run[-1], f"{self.column} drifted in {span}", float(self.windows))


Rule = Annotated[MetricRule | DriftRule, Field(discriminator="type")]


class WebhookConfig(BaseModel):
    """Where alerts are POSTed and how hard to try."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://\S+$")
    retries: int = Field(default=3, ge=0, le=10)
    backoff_s: float = Field(default=0.5, ge=0, le=60)
    timeout_s: float = Field(default=5.0, gt=0, le=120)


class AlertConfig(BaseModel):
    """The rules file: rules with unique names, and an optional webhook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook: WebhookConfig | None = None
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> AlertConfig:
        names = [r.name for r in self.rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule name(s) {', '.join(repeated)} used more than once")
        return self

    def columns(self) -> set[str]:
        """Columns that drift rules name (a run checks they are monitored)."""
        return {r.column for r in self.rules if isinstance(r, DriftRule)}


def load_alert_config(path: str | Path) -> AlertConfig:
    """Read and validate a TOML rules file; every problem is an `AlertConfigError` naming the file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AlertConfigError(f"{path}: cannot read the rules file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AlertConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_alert_config(raw, source=str(path))


def parse_alert_config(raw: Mapping[str, Any], *, source: str = "alert rules") -> AlertConfig:
    try:
        return AlertConfig.model_validate(raw)
    except ValidationError as exc:
        raise AlertConfigError(f"{source}: {validation_message(exc)}") from None


def evaluate(
    config: AlertConfig,
    history: Sequence[WindowSummary],
    reference: RegressionMetrics | None,
    *,
    first: int = 0,
) -> list[Alert]:
    """Alerts for windows `history[first:]` (earlier ones only give context to consecutive-window rules)."""
    alerts = []
    for i in range(first, len(history)):
        if history[i].status != "ok":
            continue
        for rule in config.rules:
            alert = rule.check(history[: i + 1], reference)
            if alert is not None:
                alerts.append(alert)
    return alerts


@dataclass(frozen=True)
class Delivery:
    """How posting one alert went."""

    key: str
    delivered: bool
    attempts: int
    error: str | None = None


def deliver(
    alerts: Sequence[Alert],
    webhook: WebhookConfig,
    *,
    run_id: str,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """POST each alert, retrying transient failures; never raises for a failed delivery."""
    headers = {"User-Agent": f"forwardlab/{__version__}"}
    with httpx.Client(timeout=webhook.timeout_s, headers=headers) as client:
        return [_post(client, webhook, alert, run_id, sleep) for alert in alerts]


def _post(
    client: httpx.Client, webhook: WebhookConfig, alert: Alert, run_id: str, sleep: Callable[[float], None]
) -> Delivery:
    payload = {"source": "forwardlab", "run_id": run_id, **alert.to_dict()}
    error = ""
    for attempt in range(1, webhook.retries + 2):
        wait = webhook.backoff_s * 2 ** (attempt - 1)
        try:
            response = client.post(webhook.url, json=payload, headers={"Idempotency-Key": alert.key})
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            if response.is_success:
                return Delivery(alert.key, True, attempt)
            error = f"HTTP {response.status_code}"
            if response.status_code != 429 and response.status_code < 500:
                return Delivery(alert.key, False, attempt, f"{webhook.url}: {error} (not retried)")
            wait = _retry_after(response) or wait
        if attempt <= webhook.retries:
            sleep(wait)
    return Delivery(alert.key, False, webhook.retries + 1, f"{webhook.url}: {error} after {webhook.retries + 1} tries")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(float(response.headers["Retry-After"]), MAX_RETRY_AFTER_S)
    except (KeyError, ValueError):
        return None


def _alert(rule: str, window: WindowSummary, message: str, value: float) -> Alert:
    return Alert(rule, window.start, window.end, message, value)
