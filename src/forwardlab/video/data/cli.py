"""`forwardlab video dataset ...`: manifests for any folder of labelled videos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from forwardlab.progress import progress_bar, progress_bars
from forwardlab.video.data.kinetics import CVDF, load_annotations
from forwardlab.video.data.layout import dataset_dir
from forwardlab.video.data.manifest import MANIFEST_NAME, STATUSES, Manifest
from forwardlab.video.data.youtube import DEFAULT_URL_TEMPLATE as YOUTUBE_URL

if TYPE_CHECKING:
    import pandas as pd

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


kinetics_app = typer.Typer(help="Kinetics 400/600/700: annotations, downloads (CVDF or YouTube), status, samples.")

Version = Annotated[str, typer.Option("--version", "-v", help="Kinetics version: 400, 600 or 700 (700-2020).")]
Split = Annotated[str, typer.Option(help="Split: train, val or test.")]
Root = Annotated[Path, typer.Option(help="Datasets root; clips go to ROOT/kinetics<version>/<split>/<label>/.")]
AnnotationsOpt = Annotated[
    Path | None, typer.Option("--annotations", help="Use this annotation CSV (or folder) instead of downloading.")
]
Mirror = Annotated[str, typer.Option(help="Base URL of the CVDF mirror.")]


def _annotations(version: str, split: str, source: Path | None, mirror: str, offline: bool = False) -> pd.DataFrame:
    return load_annotations(version, split, source=source, mirror=mirror, offline=offline)


@kinetics_app.command("annotations")
def kinetics_annotations(
    version: Version = "400",
    split: Split = "val",
    annotations: AnnotationsOpt = None,
    mirror: Mirror = CVDF,
    offline: Annotated[bool, typer.Option(help="Use only the cache or --annotations; no network.")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the parsed table (.csv or .parquet).")] = None,
) -> None:
    """Fetch (once, then cached), verify and summarize a split's annotations.

    Examples:
      forwardlab video kinetics annotations --version 400 --split val
      forwardlab video kinetics annotations -v 700 --split val --annotations ~/kinetics700/validate.csv
    """
    table = _annotations(version, split, annotations, mirror, offline)
    labelled = table["label"].notna()
    summary = Table("rows", "labelled", "classes", "clips per class (min / median / max)")
    per_class = table.loc[labelled, "label"].value_counts()
    spread = f"{per_class.min()} / {int(per_class.median())} / {per_class.max()}" if len(per_class) else "-"
    summary.add_row(str(len(table)), str(int(labelled.sum())), str(len(per_class)), spread)
    console.print(summary)
    if out is not None:
        from forwardlab.fileio import atomic_path

        with atomic_path(out) as tmp:
            if out.suffix.lower() == ".parquet":
                table.to_parquet(tmp, index=False)
            else:
                table.to_csv(tmp, index=False)
        console.print(f"table -> [bold]{out}[/]")


@kinetics_app.command("download")
def kinetics_download(
    root: Root,
    version: Version = "400",
    split: Split = "val",
    source: Annotated[str, typer.Option(help="cvdf (tarball mirror) or youtube (yt-dlp, clip by clip).")] = "cvdf",
    limit: Annotated[
        int | None, typer.Option(help="Stop after about N clips (cvdf) / fetch N clips (youtube).")
    ] = None,
    sample: Annotated[
        Path | None, typer.Option(help="YouTube: fetch exactly the clips of this sample manifest.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for --limit with --source youtube.")] = 0,
    annotations: AnnotationsOpt = None,
    mirror: Mirror = CVDF,
    url_template: Annotated[str, typer.Option(help="YouTube URL per clip ({youtube_id}).")] = YOUTUBE_URL,
    workers: Workers = 4,
    keep_tarballs: Annotated[bool, typer.Option(help="Keep CVDF tarballs after extracting.")] = False,
    min_interval: Annotated[float, typer.Option(help="YouTube: seconds between clip starts (rate limit).")] = 0.0,
) -> None:
    """Download clips into the Kinetics layout; resumable (rerun to continue), failures listed with reasons.

    Examples:
      forwardlab video kinetics download --root data -v 400 --split val --limit 500
      forwardlab video kinetics download --root data -v 400 --split val --source youtube --sample small.sqlite
    """
    from forwardlab.video.data.kinetics_dataset import download_kinetics

    if source not in ("cvdf", "youtube"):
        raise typer.BadParameter(f"unknown source {source!r}; use cvdf or youtube", param_hint="--source")
    table = _annotations(version, split, annotations, mirror)
    picked = Manifest(sample) if sample is not None else None
    bars = [("partitions", False), ("bytes", True)] if source == "cvdf" else [("clips", False)]
    with progress_bars(*bars) as advances:
        summary = download_kinetics(
            root, version, split, annotations=table, source=source, sample=picked, limit=limit, seed=seed,  # type: ignore[arg-type]
            mirror=mirror, url_template=url_template, workers=workers, keep_tarballs=keep_tarballs,
            min_interval_s=min_interval, progress=advances[0], byte_progress=advances[1] if len(advances) > 1 else None,
        )  # fmt: skip
    console.print(
        f"{summary.downloaded} clip(s) downloaded, {summary.already_present} already there, "
        f"{len(summary.failed)} failure(s)"
    )
    for what, reason in summary.failed[:10]:
        console.print(f"  [red]failed[/] {what}: {reason}", highlight=False)
    if summary.failures_csv is not None:
        console.print(f"every failure with its reason: [bold]{summary.failures_csv}[/]")
    console.print(status_table(Manifest(dataset_dir(root, version) / MANIFEST_NAME)))


@kinetics_app.command("status")
def kinetics_status(
    root: Root,
    version: Version = "400",
    split: Split = "val",
    annotations: AnnotationsOpt = None,
    mirror: Mirror = CVDF,
    workers: Workers = 4,
) -> None:
    """Rebuild the manifest from the annotations and the disk: missing, downloaded, corrupt (with why).

    Example: forwardlab video kinetics status --root data -v 400 --split val
    """
    from forwardlab.video.data.kinetics_dataset import kinetics_manifest

    manifest = kinetics_manifest(root, version, split, _annotations(version, split, annotations, mirror))
    with progress_bar("checking clips", len(manifest)) as advance:
        manifest.refresh(workers=workers, progress=advance)
    console.print(status_table(manifest))


@kinetics_app.command("sample")
def kinetics_sample(
    root: Root,
    out: Annotated[Path, typer.Option(help="Sample manifest to write.")],
    version: Version = "400",
    split: Split = "val",
    per_class: Annotated[int | None, typer.Option(help="Up to K clips per class (stratified).")] = None,
    limit: Annotated[int | None, typer.Option(help="N clips in all.")] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same sample.")] = 0,
    downloaded_only: Annotated[bool, typer.Option(help="Sample only clips already on disk.")] = False,
    annotations: AnnotationsOpt = None,
    mirror: Mirror = CVDF,
) -> None:
    """Pick a small seeded sample of annotated clips (a manifest); then download it with --sample.

    Example: forwardlab video kinetics sample --root data -v 400 --split val --per-class 2 --out small.sqlite
    """
    from forwardlab.video.data.kinetics_dataset import kinetics_manifest

    manifest = kinetics_manifest(root, version, split, _annotations(version, split, annotations, mirror))
    if downloaded_only:
        manifest.refresh()
    result = manifest.sample(
        out, per_class=per_class, limit=limit, seed=seed, split=split,
        status="downloaded" if downloaded_only else None,
    )  # fmt: skip
    console.print(f"{len(result)} clips -> [bold]{result.path}[/]")
