"""The reports' figures, drawn with matplotlib (Agg, no display) and returned as PNG `data:` URIs.

Every figure stays readable whatever the number of classes: bar charts with one bar per class switch to a
sorted curve plus the extreme classes by name when there are too many classes to label, and confusion
heatmaps are drawn over a chosen, ordered subset of classes (see `confusion_focus`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from forwardlab.video.reports.html import png_bytes_uri

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# One labelled bar per class up to this many classes; above it, a sorted curve and the extremes by name.
MAX_LABELLED_BARS = 40
_BLUE, _ORANGE, _RED, _GREEN = "#4a7bd0", "#e0823d", "#c5221f", "#137333"


def _figure(width_in: float, height_in: float) -> Figure:
    """A figure not registered with pyplot, so many reports in one process never leak figures."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")


def to_data_uri(fig: Figure, **savefig: Any) -> str:
    """The figure as an inline PNG `data:` URI; `savefig` options (dpi, bbox_inches) pass through."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **savefig)
    return png_bytes_uri(buffer.getvalue())


def histogram(
    values: Sequence[float] | np.ndarray,
    *,
    title: str,
    xlabel: str,
    bins: int = 40,
    marks: Sequence[tuple[float, str]] = (),
    log_x: bool = False,
) -> str:
    """Distribution of one probe field; `marks` draw labelled vertical lines (e.g. outlier thresholds)."""
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    fig = _figure(6.0, 2.8)
    ax = fig.add_subplot()
    if data.size:
        edges: int | list[float] = bins
        if log_x and (data > 0).all() and data.max() > data.min():
            edges = np.geomspace(data.min(), data.max(), bins + 1).tolist()
            ax.set_xscale("log")
        ax.hist(data, bins=edges, color=_BLUE)
    for k, (x, label) in enumerate(sorted(marks)):
        ax.axvline(x, color=_RED, linestyle="--", linewidth=1)
        ax.annotate(
            label,
            (x, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12 - 10 * (k % 4)),
            textcoords="offset points",
            color=_RED,
            fontsize=8,
        )
    ax.set_title(f"{title} (n={data.size})", fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("clips")
    return to_data_uri(fig)


def category_bars(counts: Sequence[tuple[str, int]], *, title: str, xlabel: str = "clips") -> str:
    """Horizontal bars for a few categories (codecs, resolutions, audio), largest first."""
    items = sorted(counts, key=lambda kv: (-kv[1], kv[0]))[:MAX_LABELLED_BARS]
    fig = _figure(6.0, 0.6 + 0.24 * max(1, len(items)))
    ax = fig.add_subplot()
    names = [k for k, _ in items][::-1]
    ax.barh(names, [v for _, v in items][::-1], color=_BLUE)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.tick_params(axis="y", labelsize=8)
    return to_data_uri(fig)


def per_class_bars(
    values: Sequence[tuple[str, float]],
    *,
    title: str,
    xlabel: str,
    extremes: int = 15,
    fraction: bool = False,
) -> str:
    """One value per class: labelled bars (sorted) for few classes; for many, the sorted curve of all
    classes beside labelled bars of the `extremes` lowest and highest ones."""
    items = sorted(values, key=lambda kv: (kv[1], kv[0]))
    if not items:
        items = [("(none)", 0.0)]
    upper = 1.0 if fraction else None
    if len(items) <= MAX_LABELLED_BARS:
        fig = _figure(7.0, 0.7 + 0.22 * len(items))
        ax = fig.add_subplot()
        ax.barh([k for k, _ in items], [v for _, v in items], color=_BLUE)
        ax.set_xlim(0, upper)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.tick_params(axis="y", labelsize=8)
        return to_data_uri(fig)
    shown = [*items[:extremes], *items[-extremes:]]
    fig = _figure(11.0, 0.9 + 0.2 * len(shown))
    curve, bars = fig.subplots(1, 2, width_ratios=(1, 1.3))
    curve.plot(np.arange(1, len(items) + 1), [v for _, v in items], color=_BLUE)
    curve.set_title(f"{title}: all {len(items)} classes, sorted", fontsize=10)
    curve.set_xlabel("class rank")
    curve.set_ylabel(xlabel)
    curve.set_ylim(0, upper)
    colours = [_RED] * extremes + [_GREEN] * extremes
    bars.barh([k for k, _ in shown], [v for _, v in shown], color=colours)
    bars.set_xlim(0, upper)
    bars.set_title(f"lowest {extremes} (red) and highest {extremes} (green)", fontsize=10)
    bars.set_xlabel(xlabel)
    bars.tick_params(axis="y", labelsize=7)
    return to_data_uri(fig)


def confusion_focus(matrix: np.ndarray, *, limit: int = 30) -> list[int]:
    """Which classes a heatmap shows, in which order, so that 400 classes stay readable.

    Up to `limit` classes, those involved in the most confusions (off-diagonal counts in their row and
    column) — all classes with any sample when there are few. Ordered by nearest-neighbour chaining:
    start from the most confused class and repeatedly append the remaining class it is most confused with
    (either direction), so pairs that swap labels sit side by side and show up as blocks.
    """
    m = np.asarray(matrix, dtype=np.int64)
    off = m.copy()
    np.fill_diagonal(off, 0)
    involvement = off.sum(axis=0) + off.sum(axis=1)
    present = np.flatnonzero(m.sum(axis=0) + m.sum(axis=1))
    if len(present) > limit:
        ranked = sorted(present, key=lambda i: (-involvement[i], i))
        present = np.asarray(sorted(ranked[:limit]))
    remaining = set(int(i) for i in present)
    if not remaining:
        return []
    symmetric = off + off.T
    current = max(remaining, key=lambda i: (involvement[i], -i))
    order = [current]
    remaining.remove(current)
    while remaining:
        current = max(remaining, key=lambda j: (symmetric[current, j], involvement[j], -j))
        order.append(current)
        remaining.remove(current)
    return order


def confusion_heatmap(matrix: np.ndarray, classes: Sequence[str], order: Sequence[int], *, title: str) -> str:
    """Row-normalized heatmap (share of each true class) over `order`; counts printed in small matrices."""
    idx = np.asarray(order, dtype=np.int64)
    sub = np.asarray(matrix, dtype=np.int64)[np.ix_(idx, idx)]
    rows = np.asarray(matrix, dtype=np.int64)[idx].sum(axis=1, keepdims=True)
    share = np.divide(sub, rows, out=np.zeros(sub.shape, dtype=float), where=rows > 0)
    n = len(idx)
    side = min(13.0, 2.5 + 0.32 * n)
    fig = _figure(side + 1.5, side)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    names = [classes[i] for i in idx]
    ax.set_xticks(range(n), names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if sub[i, j]:
                    ax.text(
                        j,
                        i,
                        str(sub[i, j]),
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if share[i, j] > 0.5 else "black",
                    )
    fig.colorbar(image, ax=ax, shrink=0.6, label="share of the true class")
    return to_data_uri(fig)
