"""Stored windows with the record contract's "production" block, for the readers of the store (the
service's /metrics, the dashboard) until the monitoring run writes that block itself.

A real monitoring run's window rows are read back and saved again, record plus block, in a new run through
`results.save_run`: the same rows `windows._save` builds, so readers see what a run with the block stores.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from forwardlab.monitor import results
from forwardlab.monitor.store import Store


def production_block(
    window_mae_usd: float, *, coverage: float, alert: bool = True, tag: str = "", n_predictions: int = 1200
) -> dict[str, Any]:
    """A block in the contract's shape around a window's MAE: estimated a little above it, with its band, the
    multivariate values and their alerts (`alert`: past their thresholds or not), and twelve segments named
    with `tag`, largest increase first (as the run lists them)."""
    n_labelled = round(n_predictions * coverage)
    estimated = window_mae_usd * 1.15
    segments = [
        {
            "by": "zipcode" if i % 2 else "price band",
            "segment": f"{tag}98{100 + i}" if i % 2 else f"{tag}band {i}",
            "n": 40 + i,
            "n_labelled": 10 + i,
            "reference_mae_usd": 60_000.0 + i,
            "mae_usd": None if i == 3 else 90_000.0 - 1000 * i,
            "estimated_mae_usd": 95_000.0 - 1000 * i,
            "increase_usd": 30_000.0 - 1000 * i,
        }
        for i in range(12)
    ]
    return {
        "n_predictions": n_predictions,
        "n_labelled": n_labelled,
        "label_coverage": n_labelled / n_predictions,
        "min_coverage": 0.8,
        "provisional": coverage < 0.8,
        "realized_mae_usd": window_mae_usd * 0.97,
        "estimated_mae_usd": estimated,
        "estimated_mae_lower_usd": estimated * 0.7,
        "estimated_mae_upper_usd": estimated * (0.95 if alert else 1.3),
        "estimated_mae_alert": alert,
        "multivariate": {
            "pca": {"value": 1.83, "lower": 1.2, "upper": 1.6 if alert else 2.0, "alert": alert, "n": n_predictions},
            "domain_classifier": {"value": 0.71, "upper": 0.6 if alert else 0.8, "alert": alert, "n": n_predictions},
        },
        "segments": segments,
    }


def save_with_production(store: Store, blocks: Mapping[datetime, dict[str, Any]]) -> None:
    """Save the stored windows starting at the keys of `blocks` again, each record with its block, as a new run."""
    w, c = results.windows_table, results.columns_table
    with store.engine.connect() as conn:
        windows = [dict(r._mapping) for r in conn.execute(sa.select(w).where(w.c.window_start.in_(list(blocks))))]
        columns = [dict(r._mapping) for r in conn.execute(sa.select(c).where(c.c.window_start.in_(list(blocks))))]
    previous = results.latest_run(store)
    assert previous is not None and len(windows) == len(blocks)
    run = previous | {"run_id": str(uuid.uuid4()), "created_at": datetime.now(UTC)}
    for row in windows + columns:
        row["run_id"] = run["run_id"]
    for row in windows:
        row["record"] = row["record"] | {"production": blocks[row["window_start"]]}
    results.save_run(store, run, windows, columns, [])
