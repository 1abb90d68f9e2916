"""Read an evaluation folder (what `forwardlab video evaluate` wrote) and derive what the report shows.

The report works from `results.parquet` (one row per clip: label, top-5 with scores, status) and
`summary.json` (metrics, counts, failures, the dataset root that clip paths are relative to), so it
needs neither the model nor the manifest, and a results folder copied elsewhere still reports.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forwardlab.video.errors import ReportError

SUMMARY_NAME = "summary.json"
RESULTS_NAME = "results.parquet"


@dataclass(frozen=True)
class ConfusedPair:
    """Clips of class `true` predicted as `predicted`: how many, their share of `true`, some examples."""

    true: str
    predicted: str
    count: int
    share: float
    examples: tuple[str, ...]


@dataclass
class EvalRun:
    """One evaluation folder: its summary, its rows, and the clips' dataset root."""

    folder: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    root: Path

    @property
    def scored(self) -> list[dict[str, Any]]:
        """Evaluated rows whose label is one of the model's classes: the ones accuracy counts."""
        return [r for r in self.rows if r["status"] == "ok" and r["label_index"] is not None]

    def confusion(self) -> tuple[list[str], np.ndarray]:
        """Classes that occur (as label or top-1) in name order, and the true x predicted counts."""
        scored = self.scored
        classes = sorted({r["label"] for r in scored} | {r["prediction"] for r in scored})
        index = {c: i for i, c in enumerate(classes)}
        matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
        for r in scored:
            matrix[index[r["label"]], index[r["prediction"]]] += 1
        return classes, matrix

    def per_class_accuracy(self) -> list[tuple[str, float, int]]:
        """(class, top-1 accuracy, clips) for every class with at least one scored clip."""
        classes, matrix = self.confusion()
        support = matrix.sum(axis=1)
        return [(classes[i], float(matrix[i, i] / support[i]), int(support[i])) for i in np.flatnonzero(support)]

    def confused_pairs(self, *, limit: int = 20, examples: int = 3) -> list[ConfusedPair]:
        """The most frequent (true, predicted) mistakes, largest first, with up to `examples` clips each."""
        by_pair: dict[tuple[str, str], list[str]] = defaultdict(list)
        support: dict[str, int] = defaultdict(int)
        for r in self.scored:
            support[r["label"]] += 1
            if r["prediction"] != r["label"]:
                by_pair[(r["label"], r["prediction"])].append(r["path"])
        ranked = sorted(by_pair.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:limit]
        return [
            ConfusedPair(true, pred, len(paths), len(paths) / support[true], tuple(sorted(paths)[:examples]))
            for (true, pred), paths in ranked
        ]


def load_run(folder: str | Path) -> EvalRun:
    """Open an evaluation folder, failing with what is missing when it is not one."""
    path = Path(folder)
    if not path.is_dir():
        raise ReportError(f"{path}: no such results folder (run `forwardlab video evaluate --out {path}` first)")
    missing = [name for name in (SUMMARY_NAME, RESULTS_NAME) if not (path / name).is_file()]
    if missing:
        raise ReportError(f"{path}: not a finished evaluation folder; missing {', '.join(missing)}")
    try:
        summary = json.loads((path / SUMMARY_NAME).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path / SUMMARY_NAME}: not valid JSON ({exc})") from exc
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path / RESULTS_NAME).to_pylist()
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise ReportError(f"{path / RESULTS_NAME}: cannot be read as Parquet ({exc})") from exc
    needed = {"path", "label", "label_index", "status", "prediction", "top5_labels", "top5_scores"}
    if rows and needed - set(rows[0]):
        raise ReportError(f"{path / RESULTS_NAME}: missing columns {', '.join(sorted(needed - set(rows[0])))}")
    root = Path(summary.get("data", {}).get("root") or path)
    return EvalRun(path, summary, rows, root)


def gallery_selection(rows: Sequence[dict[str, Any]], limit: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """Up to `limit` evaluated clips, classes taking turns and each class's mistakes first, so a capped
    gallery still shows every class and what goes wrong in it."""
    ok = [r for r in rows if r["status"] == "ok"]
    if len(ok) <= limit:
        return sorted(ok, key=lambda r: (r["label"] or "", r["path"]))
    rng = np.random.default_rng(seed)
    queues: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        queues[r["label"] or ""].append(r)
    for label, group in queues.items():
        shuffled = [group[i] for i in rng.permutation(len(group))]
        queues[label] = sorted(shuffled, key=lambda r: r["prediction"] != r["label"])  # pop() takes mistakes first
    chosen: list[dict[str, Any]] = []
    while len(chosen) < limit:
        for label in sorted(queues):
            if queues[label] and len(chosen) < limit:
                chosen.append(queues[label].pop())
    return sorted(chosen, key=lambda r: (r["label"] or "", r["path"]))
