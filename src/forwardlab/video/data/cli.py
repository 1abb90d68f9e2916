"""`forwardlab video dataset ...`: manifests for any folder of labelled videos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from forwardlab.progress import progress_bar
from forwardlab.video.data.manifest import MANIFEST_NAME, STATUSES, Manifest

dataset_app = typer.Typer(help="Index your own labelled videos (class folders or a CSV) into a manifest.")
console = Console()

Workers = Annotated[int, typer.Option(help="Clips probed in parallel.")]


def resolve_manifest(path: Path) -> Manifest:
    """A manifest file, or a dataset folder holding `manifest.sqlite`."""
    return Manifest(path / MANIFEST_NAME if path.is_dir() else path)


def status_table(manifest: Manifest) -> Table:
    table = Table("split", *STATUSES, "total", title=f"{manifest.name}: {manifest.path}")
    for split, counts in sorted(manifest.counts().items()):
        table.add_row(split, *(str(counts[s]) for s in STATUSES), str(sum(counts.values())))
    return table


@dataset_app.command("import")
def import_(
    source: Annotated[Path, typer.Argument(help="A folder of class sub-folders, or a CSV with path,label[,split].")],
    manifest: Annotated[Path | None, typer.Option(help="Manifest to write (default: SOURCE/manifest.sqlite).")] = None,
    split: Annotated[str | None, typer.Option(help="Split for every clip (default: from folders, else 'all').")] = None,
    workers: Workers = 4,
) -> None:
    """Index videos without moving them, probing each one (status: downloaded or corrupt, with why).

    Examples:
      forwardlab video dataset import ~/data/UCF-101
      forwardlab video dataset import data/synthetic          # <split>/<class>/<clip> trees too
      forwardlab video dataset import my_clips.csv --manifest mine.sqlite
    """
    from forwardlab.video.data.folder import import_csv, import_folder

    with progress_bar("probing clips", 0) as advance:
        if source.suffix.lower() == ".csv":
            result = import_csv(source, manifest=manifest, workers=workers, progress=advance)
        else:
            result = import_folder(source, manifest=manifest, split=split, workers=workers, progress=advance)
    console.print(status_table(result))


@dataset_app.command("status")
def status(
    manifest: Annotated[Path, typer.Argument(help="A manifest file or a folder holding manifest.sqlite.")],
    refresh: Annotated[bool, typer.Option(help="Re-check every clip on disk before reporting.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print {split: {status: count}} as JSON.")] = False,
    workers: Workers = 4,
) -> None:
    """Counts of missing, downloaded and corrupt clips per split, rebuilt from what is on disk.

    Example: forwardlab video dataset status data/synthetic --json
    """
    found = resolve_manifest(manifest)
    if refresh:
        with progress_bar("checking clips", len(found)) as advance:
            found.refresh(workers=workers, progress=advance)
    if as_json:
        typer.echo(json.dumps(found.counts(), indent=2))
    else:
        console.print(status_table(found))


@dataset_app.command("sample")
def sample(
    manifest: Annotated[Path, typer.Argument(help="A manifest file or a folder holding manifest.sqlite.")],
    out: Annotated[Path, typer.Option(help="Sample manifest to write.")],
    per_class: Annotated[int | None, typer.Option(help="Take up to K clips per class (stratified).")] = None,
    limit: Annotated[int | None, typer.Option(help="Take N clips in all (after --per-class if both).")] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same sample.")] = 0,
    split: Annotated[str | None, typer.Option(help="Sample from this split only.")] = None,
) -> None:
    """Write a seeded sample as its own manifest; evaluation, exploration and training accept it.

    Example: forwardlab video dataset sample data/UCF-101 --per-class 2 --out ucf_small.sqlite
    """
    result = resolve_manifest(manifest).sample(
        out, per_class=per_class, limit=limit, seed=seed, split=split, status="downloaded"
    )
    console.print(f"{len(result)} clips -> [bold]{result.path}[/]")
