"""`forwardlab video convlab ...`: parse, call the lab, print a table (or JSON with --json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from forwardlab.errors import ForwardlabError

convlab_app = typer.Typer(
    help="Convolution lab: cost, receptive fields, equivariance, arrow of time, filters, 2D vs 3D vs (2+1)D.",
    no_args_is_help=True,
)
console = Console()

ModelOpt = Annotated[str | None, typer.Option("--model", help="Registry model (default: every model in the zoo).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
FramesOpt = Annotated[int | None, typer.Option(help="Clip length in frames (default: the recipe's).")]
SizeOpt = Annotated[int | None, typer.Option(help="Square crop size in pixels (default: the recipe's crop).")]


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _clip(text: str) -> tuple[int, int, int]:
    try:
        t, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ForwardlabError(f"--clip {text!r}: expected TxHxW, e.g. 16x56x56") from None
    return t, h, w


def _num(value: object, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


@convlab_app.command()
def cost(
    model: ModelOpt = None,
    frames: FramesOpt = None,
    size: SizeOpt = None,
    channels: Annotated[str, typer.Option(help="IN,OUT channels of the 2D/3D/(2+1)D layer comparison.")] = "64,64",
    clip: Annotated[str, typer.Option(help="TxHxW input of the layer comparison.")] = "16x56x56",
    as_json: JsonOpt = False,
) -> None:
    """Parameters and multiply-accumulates, per layer (--model) or for the whole zoo against the published figures,
    plus one layer as 2D, 3D and (2+1)D.

    Examples:
      forwardlab video convlab cost
      forwardlab video convlab cost --model r2plus1d_18 --frames 32 --json
    """
    from forwardlab.video.convlab.cost import conv_variants, model_cost, reference_shape
    from forwardlab.video.models.catalog import entries

    try:
        c_in, c_out = (int(v) for v in channels.split(","))
    except ValueError:
        raise ForwardlabError(f"--channels {channels!r}: expected IN,OUT, e.g. 64,64") from None
    variants = conv_variants(c_in, c_out, clip=_clip(clip))
    if model is not None:
        costs = [model_cost(model, frames=frames, size=size)]
    else:
        costs = [model_cost(n, frames=frames or reference_shape(n).frames, size=size) for n in entries()]
    if as_json:
        _echo_json({"models": [c.to_dict() for c in costs], "conv_variants": [v.__dict__ for v in variants]})
        return
    if model is not None:
        table = Table("layer", "type", "params", "MACs", "output", title=f"{model} on a {costs[0].clip} clip")
        for layer in costs[0].layers:
            table.add_row(layer.name, layer.kind, f"{layer.params:,}", f"{layer.macs:,}", str(layer.output_shape))
        console.print(table)
    table = Table("model", "clip", "params M", "GMACs", "published GMACs", "diff")
    for c in costs:
        diff = None if c.gmacs_diff is None else 100 * c.gmacs_diff
        table.add_row(
            c.model, c.clip, f"{c.params / 1e6:.3f}", f"{c.gmacs:.3f}", _num(c.published_gmacs), _num(diff, "{:+.3f}%")
        )
    console.print(table)
    table = Table("kind", "kernels", "mid channels", "params", "GMACs", title=f"{c_in} -> {c_out} channels on {clip}")
    for v in variants:
        table.add_row(v.kind, v.kernels, _num(v.mid_channels), f"{v.params:,}", f"{v.macs / 1e9:.3f}")
    console.print(table)


@convlab_app.command("receptive-field")
def receptive_field(
    model: ModelOpt = None, frames: FramesOpt = None, size: SizeOpt = None, as_json: JsonOpt = False
) -> None:
    """Receptive field (frames, pixels) and stride (temporal vs spatial downsampling) per stage.

    Examples:
      forwardlab video convlab receptive-field --model r3d_18
      forwardlab video convlab receptive-field --json
    """
    from forwardlab.video.convlab.receptive_field import model_fields
    from forwardlab.video.models.catalog import entries

    fields = [model_fields(n, frames=frames, size=size) for n in ([model] if model else list(entries()))]
    if as_json:
        _echo_json([f.to_dict() for f in fields])
        return
    table = Table("model", "stage", "grid TxHxW", "RF frames", "RF pixels", "stride t", "stride h x w", "note")
    for f in fields:
        for s in f.stages:
            grid = "x".join(map(str, s.grid)) if s.grid else "-"
            pixels = None if s.rf_height is None else f"{s.rf_height}x{s.rf_width}"
            strides = None if s.stride_h is None else f"{s.stride_h}x{s.stride_w}"
            table.add_row(
                f.model, s.stage, grid, _num(s.rf_frames), _num(pixels), _num(s.stride_t), _num(strides), s.note
            )
    console.print(table)


@convlab_app.command()
def equivariance(
    model: Annotated[str, typer.Option(help="Registry model.")] = "tiny_r2plus1d",
    axis: Annotated[
        str, typer.Option(help="time (shift by frames) or space (shift by pixels, both x and y).")
    ] = "space",
    shift: Annotated[int | None, typer.Option(help="Shift for every stage (default: each stage's own stride).")] = None,
    frames: FramesOpt = None,
    size: SizeOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the random clip.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """How far each stage's features are from the shifted original when the clip is shifted (interior vs border).

    Example: forwardlab video convlab equivariance --model r3d_18 --axis time
    """
    from forwardlab.video.convlab.equivariance import AXES, model_equivariance

    if axis not in AXES:
        raise ForwardlabError(f"--axis {axis!r}: expected one of {', '.join(AXES)}")
    result = model_equivariance(model, axis=axis, shift=shift, frames=frames, size=size, seed=seed)
    if as_json:
        _echo_json(result.to_dict())
        return
    table = Table(
        "stage",
        "shift (t,y,x)",
        "stride",
        "interior",
        "border",
        "all",
        "note",
        title=f"{model} ({result.weights} weights), {result.clip} clip, shift in {axis}",
    )
    for s in result.stages:
        table.add_row(
            s.stage,
            str(s.shift),
            str(s.stride),
            _num(s.error_interior, "{:.2e}"),
            _num(s.error_border, "{:.2e}"),
            _num(s.error_all, "{:.2e}"),
            s.note,
        )
    console.print(table)
    for o in result.outputs:
        console.print(
            f"output under shift {o.shift}: relative change {o.relative_change:.4f}, "
            f"same top-1: {'yes' if o.same_top1 else 'no'}"
        )


@convlab_app.command("arrow-of-time")
def arrow_of_time(
    model: Annotated[str, typer.Option(help="Registry model or trained model folder.")] = "tiny_r2plus1d",
    data: Annotated[Path | None, typer.Option(help="Your dataset (default: fresh synthetic clips).")] = None,
    split: Annotated[str | None, typer.Option(help="Split of --data to use.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most N clips of --data, drawn with --seed.")] = None,
    per_class: Annotated[int, typer.Option(help="Synthetic clips per class (without --data).")] = 4,
    out: Annotated[Path, typer.Option(help="Working folder (synthetic clips, imported manifest).")] = Path(
        "convlab-output"
    ),
    weights: Annotated[Path | None, typer.Option(help="Weights file instead of the model's own.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic clips / the --limit draw.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Classify clips and their time-reversed copies: the share of predictions that change, per class.

    Examples:
      forwardlab video convlab arrow-of-time --model tiny_2d
      forwardlab video convlab arrow-of-time --model r2plus1d_18 --data ~/data/UCF-101 --limit 200
    """
    from forwardlab.progress import progress_bar
    from forwardlab.video.convlab.arrow_of_time import arrow_of_time as run

    with progress_bar("clips forward and backward", 0) as advance:
        result = run(
            model,
            data=data,
            out=out,
            per_class=per_class,
            seed=seed,
            split=split,
            limit=limit,
            weights=weights,
            progress=advance,
        )
    if as_json:
        _echo_json(result.to_dict())
        return
    table = Table(
        "class",
        "clips",
        "changed",
        "to twin",
        "top-1 forward",
        "top-1 reversed",
        title=f"{model}: {result.changed}/{result.clips} predictions change ({100 * result.changed_share:.1f}%)",
    )
    for c in sorted(result.per_class, key=lambda c: (-c.changed_share, c.label)):
        table.add_row(
            c.label,
            str(c.clips),
            str(c.changed),
            _num(c.to_twin),
            _num(c.top1_forward, "{:.2f}"),
            _num(c.top1_reversed, "{:.2f}"),
        )
    console.print(table)


@convlab_app.command()
def filters(
    model: Annotated[str, typer.Option(help="Registry model.")] = "tiny_r2plus1d",
    out: Annotated[Path, typer.Option(help="Folder for MODEL_filters.gif and MODEL_filters.png.")] = Path(
        "convlab-output"
    ),
    as_json: JsonOpt = False,
) -> None:
    """Render the first layer's spatio-temporal filters as an animated GIF grid (and a PNG still).

    Example: forwardlab video convlab filters --model i3d --out filters/
    """
    from forwardlab.video.convlab.filters import render_filters

    result = render_filters(model, out)
    if as_json:
        _echo_json(result.to_dict())
        return
    console.print(
        f"{model} ({result.weights} weights) {result.source} {result.shape}: [bold]{result.gif}[/], {result.png}"
    )


@convlab_app.command()
def compare(
    out: Annotated[Path, typer.Option(help="Folder: data/, runs/, eval/ and compare.json.")] = Path("convlab-compare"),
    epochs: Annotated[int, typer.Option(help="Training epochs, the same for the three networks.")] = 20,
    per_class: Annotated[int, typer.Option(help="Synthetic training clips per class.")] = 32,
    val_per_class: Annotated[int, typer.Option(help="Synthetic validation clips per class.")] = 8,
    batch: Annotated[int, typer.Option(help="Clips per optimizer step.")] = 8,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 4e-3,
    seed: Annotated[int, typer.Option(help="Seed of data, initialisation and shuffling.")] = 0,
    workers: Annotated[int, typer.Option(help="Data-loading processes.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Train tiny_2d, tiny_3d and tiny_r2plus1d with one budget; accuracy overall and on time-reversed pairs.

    Example: forwardlab video convlab compare --out runs/compare   (about 7-13 minutes on 2 CPU cores)
    """
    from forwardlab.progress import progress_bar
    from forwardlab.video.convlab.compare import compare as run

    with progress_bar("compare", 0) as advance:
        result = run(
            out,
            epochs=epochs,
            per_class=per_class,
            val_per_class=val_per_class,
            batch=batch,
            lr=lr,
            seed=seed,
            workers=workers,
            progress=lambda _what, done, total: advance(done, total),
        )
    if as_json:
        _echo_json(result.to_dict())
        return
    _compare_table(result.rows, result.source)
    console.print(f"written: [bold]{out / 'compare.json'}[/]")


def _compare_table(rows: list[Any], title: str) -> None:
    from forwardlab.video.reports.html import pct

    table = Table("network", "params", "GMACs", "top-1", "time-reversed pairs", "single-frame", "train s", title=title)
    for r in rows:
        table.add_row(
            r.title,
            f"{r.params:,}",
            f"{r.gmacs:.3f}",
            pct(r.top1),
            pct(r.time_reversed_top1),
            pct(r.single_frame_top1),
            _num(r.train_seconds, "{:.0f}"),
        )
    console.print(table)


@convlab_app.command()
def report(
    out: Annotated[Path, typer.Option(help="Folder for convlab.html and convlab.json.")] = Path("convlab-report"),
    compare_json: Annotated[
        Path | None,
        typer.Option("--compare", help="compare.json of a `convlab compare` run (default: shipped figures)."),
    ] = None,
    per_class: Annotated[int, typer.Option(help="Synthetic clips per class for the arrow of time.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the random and synthetic clips.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Run every measurement and write one self-contained HTML page (plus its numbers as JSON).

    Example: forwardlab video convlab report --compare runs/compare/compare.json --out convlab-report
    """
    from forwardlab.video.convlab.compare import CompareResult
    from forwardlab.video.convlab.report import ReportInputs, build_report

    inputs = ReportInputs(compare_json=compare_json, arrow_per_class=per_class, seed=seed)
    with console.status("measuring") as status:
        result = build_report(out, inputs, progress=lambda what: status.update(f"measuring: {what}"))
    data = json.loads(result.data.read_text(encoding="utf-8"))
    if as_json:
        _echo_json({"html": str(result.html), "data": str(result.data), **data})
        return
    headline = CompareResult.from_dict(data["compare"])
    _compare_table(headline.rows, headline.source)
    console.print(f"report: [bold]{result.html}[/] (numbers in {result.data})")
