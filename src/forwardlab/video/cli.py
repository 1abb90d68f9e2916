"""`forwardlab video ...`: probe, look at frames, generate the synthetic dataset, run the demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from forwardlab.progress import progress_bar
from forwardlab.video.convlab.cli import convlab_app
from forwardlab.video.data.cli import dataset_app, kinetics_app
from forwardlab.video.demo import DEMO_PER_CLASS
from forwardlab.video.errors import VideoDecodeError
from forwardlab.video.reports import cli as reports_cli
from forwardlab.video.sampling import SAMPLE_SPEC_HELP
from forwardlab.video.train_cli import train as train_command

app = typer.Typer(
    help="Video classification workbench: decode, sample, explore and test video models.",
    no_args_is_help=True,
)
app.add_typer(dataset_app, name="dataset")
app.add_typer(kinetics_app, name="kinetics")
app.add_typer(convlab_app, name="convlab")
app.command("train")(train_command)
for _name in ("explore", "report", "gallery", "preview"):
    app.command(_name)(getattr(reports_cli, _name))
console = Console()


@app.command()
def probe(
    files: Annotated[list[Path], typer.Argument(help="Video files to describe.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list: one object per file, or an `error`.")
    ] = False,
) -> None:
    """Describe videos (duration, fps, frames, size, codec, rotation, audio) without decoding them.

    Exit status is 1 when any file could not be probed; the others are still reported.

    Example: forwardlab video probe clips/*.mp4 --json
    """
    from forwardlab.video.io import probe as probe_video

    records: list[dict[str, object]] = []
    for f in files:
        try:
            records.append(probe_video(f).to_dict())
        except VideoDecodeError as exc:
            records.append({"path": str(f), "error": exc.reason})
    if as_json:
        typer.echo(json.dumps(records, indent=2))
    else:
        console.print(_probe_table(records))
    if any("error" in r for r in records):
        raise typer.Exit(1)


def _probe_table(records: list[dict[str, object]]) -> Table:
    table = Table("file", "duration s", "fps", "frames", "size", "codec", "pix fmt", "rot", "audio")
    for r in records:
        name = Path(str(r["path"])).name
        if "error" in r:
            table.add_row(name, f"[red]{r['error']}[/]", *[""] * 7)
            continue
        frames = f"{r['n_frames']}" + ("" if r["n_frames_exact"] else "~")
        fps = f"{r['fps']:.3f}" + (" VFR" if r["variable_frame_rate"] else "")
        table.add_row(
            name,
            f"{r['duration_s']:.2f}",
            fps,
            frames,
            f"{r['width']}x{r['height']}",
            str(r["codec"]),
            str(r["pixel_format"]),
            str(r["rotation_deg"]),
            "yes" if r["has_audio"] else "no",
        )
    return table


@app.command()
def frames(
    file: Annotated[Path, typer.Argument(help="Video to sample.")],
    sample: Annotated[str, typer.Option(help=SAMPLE_SPEC_HELP)] = "uniform:16",
    size: Annotated[int, typer.Option(help="Resize the short side to this many pixels (in the decoder).")] = 112,
    crop: Annotated[int, typer.Option(help="Centre-crop to CROPxCROP after resizing (0: no crop).")] = 0,
    fast: Annotated[
        bool, typer.Option("--fast", help="Skip non-reference frames; nearest frame, reports error.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Contact sheet to write (.png, .jpg or .webp).")] = Path("sheet.png"),
) -> None:
    """Write a contact sheet of the frames a model would see: one row per sampled clip.

    Example: forwardlab video frames clip.mp4 --sample uniform:16 --size 112 --out sheet.png
    """
    from forwardlab.video.io import probe as probe_video
    from forwardlab.video.io import read_views
    from forwardlab.video.sampling import make_sampler
    from forwardlab.video.visualize import contact_sheet, save_image

    try:
        sampler = make_sampler(sample)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--sample") from None
    info = probe_video(file)
    clips = sampler(info)
    views = read_views(file, clips, size=size, crop=crop or None, mode="fast" if fast else "exact")
    rows = [(f"{file.name} view {k}" if len(clips) > 1 else file.name, v) for k, v in enumerate(views)]
    captions = [[f"{float(t):.2f}s" for t in clip] for clip in clips]
    save_image(contact_sheet(rows, captions=captions), out)
    console.print(f"{len(clips)} clip(s) x {len(clips[0])} frames from {file} -> [bold]{out}[/]")


@app.command()
def synth(
    root: Annotated[Path, typer.Option(help="Dataset root; clips go to ROOT/SPLIT/LABEL/ID_START_END.mp4.")],
    per_class: Annotated[int, typer.Option(help="Clips per class.")] = 4,
    split: Annotated[str, typer.Option(help="Split name (folder and `split` column).")] = "val",
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same dataset.")] = 0,
) -> None:
    """Generate the synthetic action dataset (Kinetics layout + annotation CSV). Resumable.

    Example: forwardlab video synth --root data/synthetic --per-class 8 --split val --seed 0
    """
    from forwardlab.video.data.synthetic import generate
    from forwardlab.video.data.synthetic_classes import CLASSES

    total = per_class * len(CLASSES)
    with progress_bar("generating clips", total) as advance:
        try:
            clips = generate(root, per_class=per_class, split=split, seed=seed, progress=advance)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    console.print(f"{len(clips)} clips in {len(CLASSES)} classes under [bold]{root / split}[/]")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the dataset and the pictures.")] = Path("demo-output"),
    per_class: Annotated[int, typer.Option(help="Synthetic clips per class.")] = DEMO_PER_CLASS,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic dataset.")] = 0,
) -> None:
    """The workbench on built-in data: synthetic clips, both shipped models evaluated, one HTML report.

    Example: forwardlab video demo --out demo-output
    """
    from forwardlab.video.demo import run_demo

    result = run_demo(out, per_class=per_class, seed=seed, console=console)
    console.print(f"contact sheet: [bold]{result.contact_sheet}[/]")


def _parse_views(views: str | None) -> tuple[int, int] | None:
    if views is None:
        return None
    try:
        temporal, spatial = (int(v) for v in views.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{views!r}: expected KxC, e.g. 10x3", param_hint="--views") from None
    if temporal < 1 or spatial not in (1, 3):
        raise typer.BadParameter(f"{views!r}: K >= 1 clips and C = 1 or 3 crops", param_hint="--views")
    return temporal, spatial


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print the registry as JSON.")] = False,
) -> None:
    """List the model registry: recipe, size, cost, published accuracy, and whether weights are on disk.

    Example: forwardlab video models
    """
    from forwardlab.video.models.catalog import entries
    from forwardlab.video.models.registry import find_weights

    rows = []
    for name, entry in sorted(entries().items()):
        found = find_weights(entry)
        r = entry.recipe
        rows.append(
            {
                "name": name,
                "classes": entry.num_classes,
                "params_m": round(entry.params / 1e6, 2),
                "gmacs": entry.gmacs,
                "acc1": entry.accuracy.get("acc@1"),
                "acc5": entry.accuracy.get("acc@5"),
                "recipe": f"{r.describe()}, resize {r.resize_size}, crop {r.crop_size}",
                "weights": str(found) if found else None,
                "weights_url": entry.weights.url if entry.weights else None,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("model", "params M", "GMACs", "acc@1", "recipe", "weights offline")
    for row in rows:
        table.add_row(
            str(row["name"]), f"{row['params_m']:.1f}", f"{row['gmacs']:.1f}", f"{row['acc1'] or '-'}",
            str(row["recipe"]), "[green]yes[/]" if row["weights"] else "[yellow]no (downloads on first use)[/]",
        )  # fmt: skip
    console.print(table)


@app.command()
def predict(
    videos: Annotated[list[Path], typer.Argument(help="Videos to classify.")],
    model: Annotated[str, typer.Option(help="Registry model name (see `forwardlab video models`).")] = "r2plus1d_18",
    top: Annotated[int, typer.Option(help="How many classes to show per video.")] = 5,
    views: Annotated[str | None, typer.Option(help="KxC: K clips x C crops (default: the model's recipe).")] = None,
    sample: Annotated[
        str | None, typer.Option(help=f"Sampling rule instead of the recipe's: {SAMPLE_SPEC_HELP}.")
    ] = None,
    weights: Annotated[Path | None, typer.Option(help="Load this weights file instead of the published one.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: one object per video.")] = False,
) -> None:
    """Top-k classes per video with probabilities (averaged over the views) and the time taken.

    Examples:
      forwardlab video predict clip.mp4 --model r2plus1d_18 --top 5
      forwardlab video predict a.mp4 b.mp4 --model swin3d_t --views 4x3 --json
      forwardlab video predict clip.mp4 --model i3d --sample clip:64@25   # (default: all@25, the whole clip)
    """
    from forwardlab.video.predict import predict as run_predict

    results = run_predict(videos, model=model, top=top, views=_parse_views(views), sample=sample, weights=weights)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    for r in results:
        table = Table("class", "probability", title=f"{r.path}  ({r.views} views, {r.seconds:.2f}s)")
        for label, p in r.top:
            table.add_row(label, f"{p:.3f}")
        console.print(table)


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option(help="A manifest, a folder holding manifest.sqlite, or class folders.")],
    model: Annotated[str, typer.Option(help="Registry model name (see `forwardlab video models`).")],
    out: Annotated[Path, typer.Option(help="Results folder; rerunning with the same settings resumes.")],
    limit: Annotated[int | None, typer.Option(help="Evaluate N clips drawn with --seed.")] = None,
    views: Annotated[str | None, typer.Option(help="KxC: K clips x C crops (default: the model's recipe).")] = None,
    sample: Annotated[
        str | None, typer.Option(help=f"Sampling rule instead of the recipe's: {SAMPLE_SPEC_HELP}.")
    ] = None,
    batch: Annotated[int, typer.Option(help="Clips per forward pass.")] = 8,
    workers: Annotated[int, typer.Option(help="Decode worker processes.")] = 2,
    engine: Annotated[str, typer.Option(help="local, or ray (Ray Data; --address for a cluster).")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (engine ray).")] = None,
    weights: Annotated[Path | None, typer.Option(help="Load this weights file instead of the published one.")] = None,
    split: Annotated[str | None, typer.Option(help="Evaluate one split only.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for --limit.")] = 0,
) -> None:
    """Evaluate a model on a dataset: top-1/top-5 (clip and video level), per-class accuracy, confusion.

    Streaming and resumable: per-video rows are written as they are produced; a killed run continues
    where it stopped. Outputs: results.parquet, summary.json, per_class.csv, confusion.csv, predictions.csv.

    Examples:
      forwardlab video evaluate --data data/kinetics400 --model r2plus1d_18 --split val --limit 200 --out runs/r2p1d
      forwardlab video evaluate --data small.sqlite --model swin3d_t --views 4x3 --engine ray --out runs/swin
    """
    from forwardlab.video.evaluate import evaluate as run_evaluate

    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"unknown engine {engine!r}; use local or ray", param_hint="--engine")
    with progress_bar("evaluating videos", 0, unit="videos") as advance:
        summary = run_evaluate(
            data, model, out=out, limit=limit, views=_parse_views(views), sample=sample, batch=batch, workers=workers,
            engine=engine, address=address, weights=weights, split=split, seed=seed, progress=advance,  # type: ignore[arg-type]
        )  # fmt: skip
    table = Table("metric", "value", title=f"{model} on {data}")
    for name, value in summary.metrics.items():
        table.add_row(name, "-" if value is None else f"{value:.4f}")
    for name, value in summary.counts.items():
        table.add_row(name, str(value))
    console.print(table)
    console.print(f"results in [bold]{out}[/] ({summary.videos_per_s or 0:.2f} videos/s)")
