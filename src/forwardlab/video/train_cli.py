"""`forwardlab video train`: the command function (mounted by `video.cli`); parse, call `train`, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def train(
    data: Annotated[
        Path,
        typer.Option(help="Manifest, folder holding manifest.sqlite, or a class-folder dataset.", show_default=False),
    ],
    model: Annotated[
        str, typer.Option(help="Registry model to train (see `forwardlab video models`).")
    ] = "tiny_r2plus1d",
    out: Annotated[Path, typer.Option(help="Output folder: model.pt, model_card.json, metrics.csv.")] = Path(
        "train-output"
    ),
    from_pretrained: Annotated[
        bool,
        typer.Option("--from-pretrained", help="Start from the published weights (head replaced if classes differ)."),
    ] = False,
    epochs: Annotated[int, typer.Option(help="Passes over the training clips.")] = 10,
    batch: Annotated[int, typer.Option(help="Clips per optimizer step.")] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate of AdamW (after warm-up).")] = 2e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay (weights only, not biases/norms).")] = 0.05,
    warmup_epochs: Annotated[float, typer.Option(help="Epochs of linear warm-up before the cosine decay.")] = 1.0,
    workers: Annotated[int, typer.Option(help="Data-loading processes (0: load in this process).")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the initialisation, shuffling and augmentation.")] = 0,
    split: Annotated[
        str | None, typer.Option(help="Split to train on (default: 'train' if present, else all).")
    ] = None,
    val_split: Annotated[
        str, typer.Option(help="Split validated after each epoch ('auto': 'val' if present; 'none': skip).")
    ] = "auto",
    flip: Annotated[
        bool | None,
        typer.Option(
            "--flip/--no-flip",
            help="Random horizontal flips (default: on unless a class name mentions left, right or clockwise).",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a trained model already in OUT.")] = False,
) -> None:
    """Train or fine-tune a model on your classes; rerun the same command to resume after a kill.

    Writes OUT/model.pt and OUT/model_card.json (data, classes, recipe, metrics, seed, versions); use the
    folder wherever a model name goes (`predict --model OUT`, `evaluate --model OUT`).

    Examples:
      forwardlab video synth --root data/synth --split train --per-class 64
      forwardlab video train --data data/synth --model tiny_r2plus1d --epochs 30 --batch 8 --lr 4e-3 --out runs/r21d
      forwardlab video train --data ~/data/UCF-101 --model r2plus1d_18 --from-pretrained --epochs 5 --out runs/ucf
    """
    from forwardlab.progress import progress_bar
    from forwardlab.video.models.catalog import get_entry
    from forwardlab.video.training.run import train as run_train

    get_entry(model)  # an unknown name fails before any progress bar is drawn

    table = Table("epoch", "lr", "train loss", "train top-1", "val loss", "val top-1", "val top-5", "s")

    def on_epoch(row: dict[str, float]) -> None:
        def fmt(key: str, pct: bool = False) -> str:
            if key not in row:
                return "-"
            return f"{100 * row[key]:.1f}%" if pct else f"{row[key]:.4g}"

        table.add_row(
            str(int(row["epoch"])),
            fmt("lr"),
            fmt("train_loss"),
            fmt("train_top1", True),
            fmt("val_loss"),
            fmt("val_top1", True),
            fmt("val_top5", True),
            f"{row['seconds']:.0f}",
        )

    with progress_bar(f"training {model}", 0) as advance:
        result = run_train(
            data,
            model,
            out=out,
            from_pretrained=from_pretrained,
            epochs=epochs,
            batch=batch,
            lr=lr,
            weight_decay=weight_decay,
            warmup_epochs=warmup_epochs,
            workers=workers,
            seed=seed,
            split=split,
            val_split=None if val_split.lower() == "none" else val_split,
            flip=flip,
            overwrite=overwrite,
            progress=advance,
            on_epoch=on_epoch,
        )
    console.print(table)
    resumed = f" (resumed after epoch {result.resumed_from_epoch})" if result.resumed_from_epoch else ""
    console.print(
        f"{len(result.classes)} classes, {len(result.history)} epochs in {result.seconds:.0f}s{resumed}: "
        f"[bold]{result.model_path}[/], card [bold]{result.card_path}[/]"
    )
    if result.failed:
        console.print(f"[yellow]{len(result.failed)} clip(s) could not be decoded and were left out (see the card)[/]")
