"""The lab on one page: every measurement of the convolution lab, run now, in one self-contained HTML file.

Figures are PNGs and the filter animations GIFs, inlined as data URIs; the CSS is the shared reports
stylesheet; there is no script and nothing to fetch, so the page works offline. The numbers behind it go to
`convlab.json`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from forwardlab.errors import ForwardlabError
from forwardlab.fileio import write_text_atomic
from forwardlab.video.convlab import plots
from forwardlab.video.convlab.arrow_of_time import ArrowOfTimeResult, arrow_of_time
from forwardlab.video.convlab.compare import CompareResult, recorded
from forwardlab.video.convlab.cost import ConvVariant, ModelCost, conv_variants, model_cost, reference_shape
from forwardlab.video.convlab.equivariance import AXES, EquivarianceResult, model_equivariance
from forwardlab.video.convlab.filters import FilterImages, render_filters
from forwardlab.video.convlab.receptive_field import ModelField, deepest_traced, model_fields
from forwardlab.video.models.catalog import entries
from forwardlab.video.reports.html import Cell, Html, cell, data_uri, esc, img, page, pct, table

REPORT_NAME = "convlab.html"
DATA_NAME = "convlab.json"
_EXTRA_CSS = ".figure { margin: .5em 0; } .gif { image-rendering: pixelated; } td.na { color: #999; }"


@dataclass(frozen=True)
class ReportInputs:
    """What the page measures; the defaults keep a full report to a minute or two on a laptop CPU."""

    zoo: Sequence[str] = tuple(entries())
    equivariance_models: Sequence[str] = ("tiny_2d", "tiny_r2plus1d")
    arrow_models: Sequence[str] = ("tiny_2d", "tiny_r2plus1d")
    arrow_per_class: int = 4
    filter_models: Sequence[str] = ("tiny_r2plus1d", "i3d")
    compare_json: Path | None = None
    seed: int = 0


@dataclass(frozen=True)
class Report:
    html: Path
    data: Path


def _td(value: object, *, num: bool = True) -> Cell:
    """A value cell: right-aligned unless `num=False`, a grey '-' for a missing value."""
    if value is None:
        return cell("-", cls="na")
    return cell(value, cls="num" if num else "")


def _th(value: object) -> Cell:
    return cell(value, header=True)


def _compare_section(result: CompareResult) -> Html:
    rows = [
        [
            _th(r.title),
            _td(r.model, num=False),
            _td(f"{r.params:,}"),
            _td(f"{r.gmacs:.3f}"),
            _td(pct(r.top1)),
            _td(pct(r.time_reversed_top1)),
            _td(pct(r.single_frame_top1)),
            _td(pct(r.pair_top1)),
            _td(None if r.train_seconds is None else f"{r.train_seconds:.0f}"),
        ]
        for r in result.rows
    ]
    return Html(
        "<h2>2D vs 3D vs (2+1)D on the synthetic set</h2>"
        f"<p class='small'>Source: {esc(result.source)}. The three networks share every layer except their "
        "convolutions. Time-reversed pairs: classes whose frames are identically distributed, told apart only by "
        "frame order.</p>"
        + table(
            [
                "network",
                "model",
                "params",
                "GMACs / clip",
                "top-1",
                "time-reversed pairs",
                "single-frame classes",
                "right pair",
                "train s",
            ],
            rows,
        )
    )


def _cost_section(costs: Sequence[ModelCost], variants: Sequence[ConvVariant], clip: str) -> Html:
    rows = [
        [
            _th(c.model),
            _td(c.clip, num=False),
            _td(f"{c.params / 1e6:.3f}"),
            _td(f"{c.gmacs:.3f}"),
            _td(None if c.published_gmacs is None else f"{c.published_gmacs:.3f}"),
            _td(None if c.gmacs_diff is None else f"{100 * c.gmacs_diff:+.3f}%"),
            _td(None if c.params_diff is None else f"{100 * c.params_diff:+.3f}%"),
        ]
        for c in costs
    ]
    layer_rows = [
        [
            _th(v.kind),
            _td(v.kernels, num=False),
            _td(v.mid_channels),
            _td(f"{v.params:,}"),
            _td(f"{v.macs / 1e9:.3f}"),
        ]
        for v in variants
    ]
    return Html(
        "<h2>Cost: parameters and multiply-accumulates</h2>"
        "<p class='small'>Counted on the meta device with torch's FlopCounterMode (matrix products and "
        "convolutions; MACs = FLOPs / 2), at the clip each model's published cost refers to.</p>"
        + table(["model", "clip (TxHxW)", "params M", "GMACs", "published", "GMACs diff", "params diff"], rows)
        + f"<h3>One layer, three ways (64 -> 64 channels, {esc(clip)} input)</h3>"
        "<p class='small'>(2+1)D's middle width is chosen so the pair has the 3D kernel's parameters "
        "(Tran et al., 2018); it then spends the same MACs with an extra non-linearity.</p>"
        + table(["kind", "kernels", "mid channels", "params", "GMACs"], layer_rows)
    )


def _rf_section(fields: Sequence[ModelField]) -> Html:
    rows = []
    for f in fields:
        deepest = deepest_traced(f.stages)
        if deepest is None:
            first = next((s for s in f.stages if s.traced), None)
            note = "attention after the patch embedding: no fixed receptive field"
            if first is not None:
                note = (
                    f"patch embedding {first.rf_frames}x{first.rf_height}x{first.rf_width}, stride "
                    f"{first.stride_t}x{first.stride_h}x{first.stride_w}; then {note}"
                )
            rows.append(
                [
                    _th(f.model),
                    _td(f.clip, num=False),
                    cell(note, cls="small", colspan=6),
                ]
            )
            continue
        seconds = None if not f.fps else f"{(deepest.rf_frames or 0) / f.fps:.2f}"
        ratio = (deepest.stride_h or 1) / (deepest.stride_t or 1)
        rows.append(
            [
                _th(f.model),
                _td(f.clip, num=False),
                _td(deepest.stage, num=False),
                _td(deepest.rf_frames),
                _td(seconds),
                _td(f"{deepest.rf_height}x{deepest.rf_width}"),
                _td(f"{deepest.stride_t} / {deepest.stride_h}"),
                _td(f"{ratio:g}"),
            ]
        )
    return Html(
        "<h2>Receptive fields: how far each model sees in time and in space</h2>"
        "<p class='small'>Last stage before global pooling. Receptive fields wider than the clip mean those units "
        "see zero padding. Stride: how many input frames / pixels lie between two units; the last column is "
        "spatial over temporal downsampling (1 = isotropic; 2D and mixed-convolution nets never downsample "
        "time).</p>"
        + table(["model", "clip", "stage", "RF frames", "RF seconds", "RF pixels", "stride t / s", "space/time"], rows)
        + img(plots.receptive_field_plot(fields), "receptive field per stage", cls="figure")
    )


def _equivariance_section(results: Sequence[EquivarianceResult]) -> Html:
    parts = [
        "<h2>Equivariance: do features follow a shifted clip?</h2>",
        "<p class='small'>Each stage is fed a clip and the same content moved by its own stride (frames for "
        "time, pixels for space), cut from one larger random clip. Relative error between the moved clip's "
        "features and the original's moved features: 0 means exactly equivariant. Interior = units whose "
        "receptive field stays inside the clip; with zero padding only those are exact, and deep stages whose "
        "field is wider than the clip have no interior at all.</p>",
        img(plots.equivariance_bars(results), "equivariance per stage", cls="figure"),
    ]
    for result in results:
        spatial = [s for s in result.stages if s.aligned and result.axis == "space" and len(s.error_hw) > 1]
        if spatial:
            parts.append(img(plots.error_map(result, spatial[0].stage), f"{result.model} error map", cls="figure"))
    rows = [
        [
            _th(r.model),
            _td(r.axis, num=False),
            _td(str(o.shift), num=False),
            _td(f"{o.relative_change:.4f}"),
            _td("yes" if o.same_top1 else "no", num=False),
        ]
        for r in results
        for o in r.outputs
    ]
    parts.append("<h3>Final output under the same shifts (invariance)</h3>")
    parts.append(table(["model", "axis", "shift (t, y, x)", "relative change of scores", "same top-1"], rows))
    return Html("".join(parts))


def _arrow_section(results: Sequence[ArrowOfTimeResult]) -> Html:
    labels = sorted({c.label for r in results for c in r.per_class})
    header = ["class", "reversed twin"] + [f"{r.model}: changed (to twin)" for r in results]
    rows = []
    for label in labels:
        cells = [_th(label)]
        twin = next((c.twin for r in results for c in r.per_class if c.label == label), None)
        cells.append(_td(twin, num=False))
        for r in results:
            c = next((c for c in r.per_class if c.label == label), None)
            text = None if c is None else f"{c.changed}/{c.clips}" + ("" if c.to_twin is None else f" ({c.to_twin})")
            cells.append(_td(text))
        rows.append(cells)
    summary = "; ".join(f"{r.model}: {pct(r.changed_share)} of {r.clips} predictions change" for r in results)
    return Html(
        "<h2>Arrow of time: play every clip backwards</h2>"
        f"<p>{esc(summary)}.</p>"
        "<p class='small'>Fresh synthetic clips, each classified as is and time-reversed. A frame-order-blind "
        "model changes nothing; a model that sees motion should turn each time-reversed class into its twin and "
        "leave the others alone.</p>" + table(header, rows)
    )


def _filters_section(images: Sequence[FilterImages]) -> Html:
    parts = [
        "<h2>First-layer filters</h2><p class='small'>Each tile is one RGB filter (grey = 0), animated over "
        "its temporal taps.</p><table><tr>"
    ]
    for item in images:
        how = "composed 1xkxk then tx1x1, ReLU ignored" if item.composed else "as learned"
        parts.append(
            f"<td>{img(data_uri(item.gif.read_bytes(), 'image/gif'), f'{item.model} filters', cls='gif')}<br>"
            f"<span class='small'>{esc(item.model)} ({item.weights} weights), {esc(item.source)}, "
            f"shape {esc(str(item.shape))}, {how}</span></td>"
        )
    return Html("".join(parts) + "</tr></table>")


def build_report(
    out: Path, inputs: ReportInputs = ReportInputs(), *, progress: Callable[[str], None] | None = None
) -> Report:
    """Run every measurement and write `out/convlab.html` plus `out/convlab.json`."""

    def step(what: str) -> None:
        if progress is not None:
            progress(what)

    if inputs.compare_json is not None and not inputs.compare_json.is_file():
        raise ForwardlabError(f"{inputs.compare_json}: no such compare result (run `convlab compare` first)")
    step("cost")
    headline = (
        CompareResult.from_dict(json.loads(inputs.compare_json.read_text(encoding="utf-8")))
        if inputs.compare_json is not None
        else recorded()
    )
    costs = [model_cost(name, frames=reference_shape(name).frames) for name in inputs.zoo]
    layer_clip = (16, 56, 56)
    variants = conv_variants(64, 64, clip=layer_clip)
    step("receptive fields")
    fields = [model_fields(name) for name in inputs.zoo]
    step("equivariance")
    equivariance = [model_equivariance(n, axis=a, seed=inputs.seed) for n in inputs.equivariance_models for a in AXES]
    step("arrow of time")
    arrows = [
        arrow_of_time(n, out=out, per_class=inputs.arrow_per_class, seed=inputs.seed) for n in inputs.arrow_models
    ]
    step("filters")
    filters = [render_filters(name, out / "filters") for name in inputs.filter_models]
    document = page(
        "forwardlab convolution lab",
        Html(
            "<h1>Convolution lab: why and how convolutions work for video</h1>"
            "<p class='small'>Every number on this page was measured when it was written; rerun with "
            "<code>forwardlab video convlab report</code>.</p>"
        ),
        _compare_section(headline),
        _cost_section(costs, variants, "x".join(map(str, layer_clip))),
        _rf_section(fields),
        _equivariance_section(equivariance),
        _arrow_section(arrows),
        _filters_section(filters),
        css=_EXTRA_CSS,
    )
    data = {
        "compare": headline.to_dict(),
        "cost": [{k: v for k, v in c.to_dict().items() if k != "layers"} for c in costs],
        "conv_variants": [v.__dict__ for v in variants],
        "receptive_fields": [f.to_dict() for f in fields],
        "equivariance": [e.to_dict() for e in equivariance],
        "arrow_of_time": [a.to_dict() for a in arrows],
        "filters": [f.to_dict() for f in filters],
    }
    write_text_atomic(out / DATA_NAME, json.dumps(data, indent=2, default=str) + "\n")
    write_text_atomic(out / REPORT_NAME, document)
    return Report(out / REPORT_NAME, out / DATA_NAME)
