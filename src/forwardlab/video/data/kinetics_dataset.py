"""A Kinetics split on disk, accounted for: annotations -> manifest, downloads -> statuses.

`kinetics.py` knows the official files and the CVDF mirror, `youtube.py` knows yt-dlp; this module
ties them to one manifest per dataset (`<root>/kinetics<version>/manifest.sqlite`) so every annotated
clip has a row saying where it is, where it came from and, when it is not usable, why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from forwardlab.video.data.kinetics import CVDF, download_cvdf
from forwardlab.video.data.layout import ClipKey, dataset_dir
from forwardlab.video.data.manifest import MANIFEST_NAME, ClipRecord, Manifest, annotation_records
from forwardlab.video.data.youtube import DEFAULT_URL_TEMPLATE, ClipRequest, download_clips, write_failures_csv
from forwardlab.video.errors import DatasetError

Source = Literal["cvdf", "youtube"]
ANNOTATED = "annotations"  # the source of a row nobody has downloaded yet


def kinetics_manifest(root: str | Path, version: str, split: str, annotations: pd.DataFrame) -> Manifest:
    """Open (or create) the dataset's manifest and add a row for every annotated clip of `split`.

    Rows already there keep their status, source and probe fields; `Manifest.refresh` updates them.
    """
    folder = dataset_dir(root, version)
    manifest = Manifest.create(folder / MANIFEST_NAME, folder, name=f"kinetics{version}")
    manifest.insert_new(annotation_records(annotations, split, source=ANNOTATED))
    return manifest


@dataclass
class DownloadSummary:
    """What a download run did, and where to read the details."""

    source: Source
    requested: int
    downloaded: int
    already_present: int
    failed: list[tuple[str, str]] = field(default_factory=list)  # (what, reason)
    failures_csv: Path | None = None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def download_kinetics(
    root: str | Path,
    version: str,
    split: str,
    *,
    annotations: pd.DataFrame,
    source: Source = "cvdf",
    sample: Manifest | None = None,
    limit: int | None = None,
    seed: int = 0,
    mirror: str = CVDF,
    url_template: str = DEFAULT_URL_TEMPLATE,
    workers: int = 4,
    keep_tarballs: bool = False,
    min_interval_s: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
    byte_progress: Callable[[int, int], None] | None = None,
) -> DownloadSummary:
    """Fetch clips of one split from the CVDF mirror or YouTube, then bring the manifest up to date.

    CVDF serves whole tarball partitions (`limit` stops after enough clips); YouTube fetches exactly
    the clips asked for: the rows of `sample` when given, else `limit` clips drawn with `seed`, else all.
    `progress(done, total)` counts partitions (CVDF) or clips (YouTube); `byte_progress` the CVDF bytes.
    Reruns skip what is on disk. Per-clip failures are listed in the summary and in `failures.csv`.
    """
    manifest = kinetics_manifest(root, version, split, annotations)
    if source == "cvdf":
        result = download_cvdf(
            root, version, split, annotations=annotations, mirror=mirror, workers=workers, limit=limit,
            keep_tarballs=keep_tarballs, progress=progress, byte_progress=byte_progress,
        )  # fmt: skip
        _mark_source(manifest, {str(c.path.relative_to(manifest.root)) for c in result.extracted}, "cvdf")
        summary = DownloadSummary(
            "cvdf", result.partitions_listed, result.n_extracted, result.already_present,
            [(f.url, f.reason) for f in result.failed],
        )  # fmt: skip
    elif source == "youtube":
        summary = _download_youtube(
            manifest, split, sample, limit, seed, url_template, workers, min_interval_s, progress
        )
    else:
        raise DatasetError(f"unknown source {source!r}; use 'cvdf' or 'youtube'")
    manifest.refresh(workers=workers)
    summary.counts = manifest.counts()
    return summary


def _wanted_records(
    manifest: Manifest, split: str, sample: Manifest | None, limit: int | None, seed: int
) -> list[ClipRecord]:
    rows = manifest.records(split=split)
    if sample is not None:
        keys = {(r.youtube_id, r.time_start, r.time_end) for r in sample.records(split=split)}
        rows = [r for r in rows if (r.youtube_id, r.time_start, r.time_end) in keys]
        if not rows:
            raise DatasetError(f"{sample.path}: none of its clips are annotated in the {split} split")
    if limit is not None:
        if limit < 1:
            raise DatasetError(f"--limit must be positive, got {limit}")
        order = np.random.default_rng(seed).permutation(len(rows))[:limit]
        rows = [rows[i] for i in sorted(order)]
    return rows


def _download_youtube(
    manifest: Manifest,
    split: str,
    sample: Manifest | None,
    limit: int | None,
    seed: int,
    url_template: str,
    workers: int,
    min_interval_s: float,
    progress: Callable[[int, int], None] | None,
) -> DownloadSummary:
    wanted = _wanted_records(manifest, split, sample, limit, seed)
    requests = [
        ClipRequest(ClipKey(r.youtube_id, r.time_start, r.time_end), r.label)
        for r in wanted
        if r.youtube_id is not None and r.time_start is not None and r.time_end is not None
    ]
    outcomes = download_clips(
        requests, manifest.root / split, url_template=url_template, workers=workers,
        min_interval_s=min_interval_s, progress=progress,
    )  # fmt: skip
    by_key = {(r.youtube_id, r.time_start, r.time_end): r for r in wanted}
    failed = [o for o in outcomes if o.status == "failed"]
    manifest.upsert(
        replace(
            by_key[(o.key.youtube_id, o.key.time_start, o.key.time_end)], reason=f"youtube {o.category}: {o.reason}"
        )
        for o in failed
    )
    _mark_source(
        manifest,
        {str(o.path.relative_to(manifest.root)) for o in outcomes if o.status == "downloaded" and o.path},
        "youtube",
    )
    failures_csv = manifest.root / split / "failures.csv"
    if failed:
        write_failures_csv(outcomes, failures_csv)
    return DownloadSummary(
        "youtube", len(requests), sum(o.status == "downloaded" for o in outcomes),
        sum(o.status == "skipped" for o in outcomes),
        [(o.key.file_name, f"{o.category}: {o.reason}") for o in failed],
        failures_csv if failed else None,
    )  # fmt: skip


def _mark_source(manifest: Manifest, paths: set[str], source: str) -> None:
    if paths:
        manifest.upsert(replace(r, source=source) for r in manifest.records() if r.path in paths)
