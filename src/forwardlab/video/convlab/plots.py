"""The lab's figures as PNG `data:` URIs (matplotlib, headless), ready to inline in the report.

Figures are not registered with pyplot (see `reports.plots`), so nothing needs closing and no backend is set.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from forwardlab.video.convlab.equivariance import EquivarianceResult
from forwardlab.video.convlab.receptive_field import ModelField
from forwardlab.video.reports.plots import to_data_uri


def _png(figure: Figure) -> str:
    return to_data_uri(figure, dpi=90, bbox_inches="tight")


def receptive_field_plot(models: Sequence[ModelField]) -> str:
    """Each conv model's stages as a path in (RF frames, RF pixels): steep paths grow space faster than time."""
    figure = Figure(figsize=(7, 4.5))
    axis = figure.subplots()
    for model in models:
        stages = [s for s in model.stages if s.traced and s.grid is not None and max(s.grid) > 1]
        if stages:
            axis.plot(
                [s.rf_frames or 1 for s in stages], [s.rf_height or 1 for s in stages], marker="o", label=model.model
            )
    axis.plot([1, 400], [1, 400], color="#999", linestyle=":", label="isotropic (frames = pixels)")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("receptive field, frames")
    axis.set_ylabel("receptive field, pixels (height)")
    axis.set_title("Receptive field per stage")
    axis.legend(fontsize=7, ncol=2)
    axis.grid(alpha=0.3)
    return _png(figure)


def equivariance_bars(results: Sequence[EquivarianceResult]) -> str:
    """Interior vs border relative error per stage, one panel per (model, axis)."""
    figure = Figure(figsize=(3.4 * len(results), 3.4))
    axes = figure.subplots(1, len(results), squeeze=False)
    for axis, result in zip(axes[0], results, strict=True):
        stages = [s for s in result.stages if s.aligned]
        x = range(len(stages))
        interior = [s.error_interior or 0.0 for s in stages]
        border = [s.error_border or 0.0 for s in stages]
        axis.bar([i - 0.2 for i in x], interior, width=0.4, label="interior", color="#4a7bd0")
        axis.bar([i + 0.2 for i in x], border, width=0.4, label="border", color="#e0823d")
        if stages and not any(interior + border):
            axis.text(0.5, 0.5, "all errors 0:\nexactly equivariant", transform=axis.transAxes, ha="center")
        for i, s in enumerate(stages):
            if s.error_interior is None:
                axis.text(i - 0.2, 0.01, "none", rotation=90, fontsize=7, ha="center", va="bottom")
        axis.set_xticks(list(x), [s.stage for s in stages], rotation=45, fontsize=7)
        axis.set_title(f"{result.model}: shift in {result.axis}\n({result.weights} weights)", fontsize=9)
        axis.set_ylabel("relative error")
        axis.legend(fontsize=7)
    figure.tight_layout()
    return _png(figure)


def error_map(result: EquivarianceResult, stage: str) -> str:
    """Where a stage's features stop following the shift: relative error over (height, width)."""
    found = next(s for s in result.stages if s.stage == stage and s.aligned)
    figure = Figure(figsize=(4, 3.2))
    axis = figure.subplots()
    image = axis.imshow(found.error_hw, cmap="magma", vmin=0)
    figure.colorbar(image, ax=axis, label="relative error")
    axis.set_title(f"{result.model} {stage}: shift {found.shift[1:]} px", fontsize=9)
    axis.set_xlabel("width (feature units)")
    axis.set_ylabel("height")
    return _png(figure)
