"""Bring a user's own videos into a manifest: a folder of class sub-folders, or a CSV of `path,label`.

UCF101 and HMDB51 unpack as `<root>/<class>/<video>`; Kinetics-style trees (ours, the synthetic set)
are `<root>/<split>/<class>/<video>`. Both import as they are: nothing is moved or copied, the manifest
just points at the files.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from forwardlab.video.data.layout import VIDEO_SUFFIXES, parse_clip_name
from forwardlab.video.data.manifest import MANIFEST_NAME, ClipRecord, Manifest
from forwardlab.video.errors import DatasetError

DEFAULT_SPLIT = "all"


def _record(rel: Path, label: str, split: str, source: str) -> ClipRecord:
    key = parse_clip_name(rel.name)
    return ClipRecord(
        path=str(rel),
        label=label,
        split=split,
        source=source,
        youtube_id=key.youtube_id if key else None,
        time_start=key.time_start if key else None,
        time_end=key.time_end if key else None,
    )


def _videos(root: Path) -> list[Path]:
    """Video files under root, skipping hidden files and folders (temp files of interrupted writes)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in VIDEO_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def import_folder(
    root: str | Path,
    *,
    manifest: str | Path | None = None,
    split: str | None = None,
    workers: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> Manifest:
    """Index `root/<class>/<video>` or `root/<split>/<class>/<video>` and probe every clip.

    The class is the video's parent folder, the split its grandparent when there is one (or `split`,
    which overrides it; default "all"). Videos directly in `root` have no class and are refused.
    """
    src = Path(root)
    if not src.is_dir():
        raise DatasetError(f"{src}: not a folder")
    videos = _videos(src)
    if not videos:
        raise DatasetError(f"{src}: no video files ({', '.join(VIDEO_SUFFIXES)}) found")
    records, loose = [], []
    for path in videos:
        rel = path.relative_to(src)
        if len(rel.parts) < 2:
            loose.append(rel.name)
            continue
        inferred = rel.parts[-3] if len(rel.parts) >= 3 else DEFAULT_SPLIT
        records.append(_record(rel, rel.parts[-2], split or inferred, "folder"))
    if loose:
        shown = ", ".join(loose[:5]) + (" ..." if len(loose) > 5 else "")
        raise DatasetError(f"{src}: {len(loose)} video(s) are not inside a class folder: {shown}")
    target = Manifest.create(manifest or src / MANIFEST_NAME, src, name=src.name)
    target.upsert(records)
    target.refresh(workers=workers, progress=progress)
    return target


def import_csv(
    csv_path: str | Path,
    *,
    manifest: str | Path | None = None,
    root: str | Path | None = None,
    workers: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> Manifest:
    """Index a CSV with columns `path,label` (and optionally `split`); paths relative to `root`,
    which defaults to the CSV's folder."""
    src = Path(csv_path)
    if not src.is_file():
        raise DatasetError(f"{src}: no such CSV file")
    base = Path(root) if root is not None else src.parent
    with src.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"path", "label"} - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{src}: missing column(s) {', '.join(sorted(missing))}; need path,label[,split]")
        records, problems = [], []
        for line, row in enumerate(reader, start=2):
            path, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
            if not path or not label:
                problems.append(f"line {line}: empty {'path' if not path else 'label'}")
                continue
            records.append(_record(Path(path), label, (row.get("split") or DEFAULT_SPLIT).strip(), "csv"))
    if problems:
        raise DatasetError(f"{src}: {len(problems)} bad row(s): " + "; ".join(problems[:5]))
    if not records:
        raise DatasetError(f"{src}: no rows")
    target = Manifest.create(manifest or base / MANIFEST_NAME, base, name=src.stem)
    target.upsert(records)
    target.refresh(workers=workers, progress=progress)
    return target


def open_dataset(data: str | Path | Manifest, *, import_into: Path, workers: int = 4) -> Manifest:
    """What commands accept as data: a manifest, a folder holding `manifest.sqlite`, or class folders.

    Class folders without a manifest are indexed into `import_into/manifest.sqlite`, so the user's
    dataset folder is never written.
    """
    if isinstance(data, Manifest):
        return data
    path = Path(data)
    if path.is_file():
        return Manifest(path)
    if path.is_dir():
        if (path / MANIFEST_NAME).is_file():
            return Manifest(path / MANIFEST_NAME)
        return import_folder(path, manifest=import_into / MANIFEST_NAME, workers=max(1, workers))
    raise DatasetError(f"{path}: no such manifest file or dataset folder")
