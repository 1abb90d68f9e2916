"""Service metrics in the Prometheus text format: request counts, latencies, predictions stored.

A few counters and histograms kept in plain dicts; every update happens on the event loop thread, so no
locks are needed. Routes are labelled by their template (`/v1/predict`), never by the raw path, so
scanning for unknown URLs cannot grow the label set. `Gauges` renders gauges whose labels come from data
(the monitored columns of `window_gauges`), so it escapes them.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str) -> list[str]:
        sep = "," if labels else ""
        out, cumulative = [], 0
        for bound, count in zip(self.buckets, self.counts, strict=True):
            cumulative += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {cumulative}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.n}')
        braces = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{braces} {self.total:.6f}")
        out.append(f"{name}_count{braces} {self.n}")
        return out


@dataclass
class Gauges:
    """One gauge family: HELP, TYPE and its samples. A None value is left out rather than exported as 0,
    so a missing series means "not computed" and a family without samples is not rendered at all."""

    name: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float | bool | None, **labels: str) -> None:
        if value is not None:
            self.samples.append((labels, float(value)))

    def lines(self) -> list[str]:
        if not self.samples:
            return []
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        out = [f"# HELP {self.name} {help_text}", f"# TYPE {self.name} gauge"]
        for labels, value in self.samples:
            pairs = ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items())
            out.append(f"{self.name}{{{pairs}}} {_number(value)}" if pairs else f"{self.name} {_number(value)}")
        return out


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    """Shortest exact text of `value` (it parses back to the same float), in Prometheus' spelling."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


class ServiceMetrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], Histogram] = {}
        self.predictions_stored = 0
        self.predictions_made = 0
        self.batch_records = Histogram(BATCH_BUCKETS)
        self.results_read_errors = 0

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests[(method, route, status)] += 1
        key = (method, route)
        if key not in self.latency:
            self.latency[key] = Histogram(LATENCY_BUCKETS_S)
        self.latency[key].observe(seconds)

    def render(self) -> str:
        lines = [
            "# HELP forwardlab_http_requests_total HTTP requests by method, route template and status.",
            "# TYPE forwardlab_http_requests_total counter",
        ]
        for (method, route, status), count in sorted(self.requests.items()):
            labels = f'method="{method}",route="{route}",status="{status}"'
            lines.append(f"forwardlab_http_requests_total{{{labels}}} {count}")
        lines += [
            "# HELP forwardlab_http_request_duration_seconds Time from request start to response end.",
            "# TYPE forwardlab_http_request_duration_seconds histogram",
        ]
        for (method, route), hist in sorted(self.latency.items()):
            labels = f'method="{method}",route="{route}"'
            lines += hist.lines("forwardlab_http_request_duration_seconds", labels)
        lines += [
            "# HELP forwardlab_predictions_total Predictions made (answered), stored or not.",
            "# TYPE forwardlab_predictions_total counter",
            f"forwardlab_predictions_total {self.predictions_made}",
            "# HELP forwardlab_predictions_stored_total Predictions committed to the metrics store.",
            "# TYPE forwardlab_predictions_stored_total counter",
            f"forwardlab_predictions_stored_total {self.predictions_stored}",
            "# HELP forwardlab_batch_records Records per model call and store transaction.",
            "# TYPE forwardlab_batch_records histogram",
            *self.batch_records.lines("forwardlab_batch_records", ""),
            "# HELP forwardlab_monitor_results_read_errors_total Scrapes that could not read the monitoring "
            "results from the store (its forwardlab_monitor_* gauges were left out).",
            "# TYPE forwardlab_monitor_results_read_errors_total counter",
            f"forwardlab_monitor_results_read_errors_total {self.results_read_errors}",
        ]
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Pure ASGI middleware (no per-request task or body copy) that times every HTTP request."""

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe_request(scope["method"], route, status, time.perf_counter() - started)
