"""Kinetics-400/600/700: annotations, label maps and CVDF tarball downloads into our clip layout.

Annotations and label maps are small, static files: they are fetched once into the cache
(`cache_dir()/kinetics/<version>/`) and read from there afterwards, so every later command works
offline. Clips come from the CVDF mirror as a few hundred tar.gz partitions per split; a download of
hundreds of GiB is interrupted sooner or later, so it records finished partitions in a state file,
resumes partial tarballs, writes every clip atomically and keeps going past a bad partition.

Our version "700" is Kinetics-700-2020, the edition CVDF hosts.
"""

from __future__ import annotations

import json
import logging
import posixpath
import shutil
import tarfile
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from forwardlab.download import cache_dir, fetch
from forwardlab.fileio import atomic_path, write_text_atomic
from forwardlab.video.data.layout import (
    SPLITS,
    VERSIONS,
    ClipKey,
    clip_path,
    dataset_dir,
    parse_clip_name,
)
from forwardlab.video.errors import DatasetError, DownloadError

if TYPE_CHECKING:  # pandas and httpx are imported where they are used: `forwardlab --help` loads this module
    import httpx
    import pandas as pd

log = logging.getLogger(__name__)

CVDF = "https://s3.amazonaws.com/kinetics"
"""The Common Visual Data Foundation's public mirror of the clips and annotations."""

VERSION_PATHS: dict[str, str] = {"400": "400", "600": "600", "700": "700_2020"}
"""Our version name -> the path segment CVDF and DeepMind use for it."""

DEEPMIND_ARCHIVE = "https://storage.googleapis.com/deepmind-media/Datasets/kinetics{segment}.tar.gz"
"""DeepMind's annotation archives (train/validate/test CSVs); `{segment}` is a `VERSION_PATHS` value."""

_I3D = "https://raw.githubusercontent.com/deepmind/kinetics-i3d/0667e889a5904b4dc122e0ded4c332f49f8df42c"
_MMACTION2 = "https://raw.githubusercontent.com/open-mmlab/mmaction2/4d6c93474730cad2f25e51109adcf96824efc7a3"
LABEL_MAP_URLS: dict[str, str] = {
    "400": f"{_I3D}/data/label_map.txt",
    "600": f"{_I3D}/data/label_map_600.txt",
    "700": f"{_MMACTION2}/tools/data/kinetics/label_map_k700.txt",
}
"""Label maps pinned to a commit, so the checksums below hold and the class order never moves."""

LABEL_MAP_SHA256: dict[str, str] = {
    "400": "e9f2806fe9109b851a80a74841244f6f8c9d10917fa0229cd82bab67f2f8e28f",
    "600": "8dfca4202520ea8291ce0242ef33b006d0a0772b409663c090a2876bc1978dcf",
    "700": "2f265d35aa76060219f7e83aff12f5aaba9d1fe27360aa83f11aad7a3648fc51",
}

STATE_FILE = ".cvdf_state.json"
_WORK_DIR = ".cvdf"  # beside the clips, so the free-space check measures the disk they land on
_REQUIRED_COLUMNS = ("youtube_id", "time_start", "time_end")
_SPLIT_VALUES = {"train": "train", "val": "val", "validate": "val", "validation": "val", "test": "test"}
_SPLIT_ALIASES = {"train": ("train",), "val": ("val", "validate", "validation"), "test": ("test",)}
_MAX_EXAMPLES = 5
_HOW_TO_PROVIDE = "download it yourself and pass --annotations PATH (the CSV, or a folder holding it)"


# ------------------------------------------------------------------------------------------------
# Annotations
# ------------------------------------------------------------------------------------------------


def load_annotations(
    version: str,
    split: str,
    *,
    source: str | Path | None = None,
    mirror: str = CVDF,
    archive: str | None = DEEPMIND_ARCHIVE,
    offline: bool = False,
    retries: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """One split's annotations as a table: label, youtube_id, time_start, time_end, split[, is_cc].

    `source` is a CSV or a folder of CVDF/DeepMind-named CSVs and is read as is. Otherwise the cached
    copy is used, or the CVDF CSV under `mirror` is fetched into the cache, falling back to the
    `archive` URL template (DeepMind's tarball; None skips it). `label` is NA for unlabelled rows.
    """
    segment = _segment(version)
    _check_split(split)
    if source is not None:
        return _read_annotations(_local_annotation(Path(source), version, split), split)
    cached = _annotation_cache(version) / f"{split}.csv"
    if cached.is_file():
        return _read_annotations(cached, split)
    if offline:
        raise DatasetError(
            f"Kinetics-{version} {split} annotations: offline and not cached at {cached}; {_HOW_TO_PROVIDE}"
        )
    failures: list[str] = []
    csv_url = f"{mirror.rstrip('/')}/{segment}/annotations/{split}.csv"
    try:
        fetch(csv_url, cached, retries=retries, progress=progress)
        return _read_fresh(cached, split)
    except DownloadError as error:
        failures.append(str(error))
    if archive is not None:
        archive_url = archive.format(segment=segment)
        try:
            _fetch_archive_csvs(archive_url, version, split, retries, progress)
            return _read_fresh(cached, split)
        except DownloadError as error:
            failures.append(str(error))
    raise DatasetError(
        f"Kinetics-{version} {split} annotations could not be downloaded ({'; '.join(failures)}) "
        f"and are not cached at {cached}; {_HOW_TO_PROVIDE}"
    )


def _segment(version: str) -> str:
    if version not in VERSION_PATHS:
        raise DatasetError(f"unknown Kinetics version {version!r}; valid versions: {', '.join(VERSIONS)}")
    return VERSION_PATHS[version]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DatasetError(f"unknown Kinetics split {split!r}; valid splits: {', '.join(SPLITS)}")


def _annotation_cache(version: str) -> Path:
    return cache_dir() / "kinetics" / version / "annotations"


def _annotation_names(version: str, split: str) -> list[str]:
    """File names a folder may hold for this split: version-specific first, so a folder of all versions works."""
    aliases = _SPLIT_ALIASES[split]
    segment = VERSION_PATHS[version]
    specific = [f"kinetics-{version}_{a}.csv" for a in aliases] + [f"kinetics{segment}_{a}.csv" for a in aliases]
    generic = [f"{a}.csv" for a in aliases] + [f"kinetics_{a}.csv" for a in aliases]
    return specific + generic


def _local_annotation(source: Path, version: str, split: str) -> Path:
    if source.is_file():
        return source
    if source.is_dir():
        names = _annotation_names(version, split)
        for name in names:
            if (source / name).is_file():
                return source / name
        raise DatasetError(f"{source}: no Kinetics-{version} {split} annotations here; looked for {', '.join(names)}")
    raise DatasetError(f"{source}: no such file or folder (expected a Kinetics annotation CSV or a folder of them)")


def _read_fresh(path: Path, split: str) -> pd.DataFrame:
    """Read a just-downloaded file; a malformed one is removed so that it is not served from the cache."""
    try:
        return _read_annotations(path, split)
    except DatasetError:
        path.unlink(missing_ok=True)
        raise


def _fetch_archive_csvs(
    url: str, version: str, split: str, retries: int, progress: Callable[[int, int], None] | None
) -> None:
    """Cache every split CSV of a DeepMind archive: one download serves all three splits."""
    folder = _annotation_cache(version)
    tarball = fetch(url, folder / posixpath.basename(urlsplit(url).path), retries=retries, progress=progress)
    try:
        found = _extract_split_csvs(tarball, folder)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DownloadError(url, f"corrupt archive: {error}") from error
    finally:
        tarball.unlink(missing_ok=True)
    if split not in found:
        names = " or ".join(f"{alias}.csv" for alias in _SPLIT_ALIASES[split])
        raise DownloadError(url, f"the archive holds no {names}")


def _extract_split_csvs(tarball: Path, folder: Path) -> set[str]:
    members = {f"{alias}.csv": split for split, aliases in _SPLIT_ALIASES.items() for alias in aliases}
    found: set[str] = set()
    with tarfile.open(tarball, mode="r|gz") as archive:
        for member in archive:
            split = members.get(posixpath.basename(member.name))
            if split is None or split in found:
                continue
            safe = tarfile.data_filter(member, str(folder))
            stream = archive.extractfile(safe) if safe.isreg() else None
            if stream is None:
                continue
            with atomic_path(folder / f"{split}.csv") as tmp, tmp.open("wb") as out:
                shutil.copyfileobj(stream, out)
            found.add(split)
    return found


def _read_annotations(path: Path, split: str) -> pd.DataFrame:
    """Parse and validate; every problem is reported with its line number (the first few, in one message)."""
    import pandas as pd

    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: not a readable CSV: {error}") from error
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in _REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(raw.columns)}; expected "
            "label,youtube_id,time_start,time_end,split[,is_cc] (no label column for unlabelled splits)"
        )
    for column in raw.columns:
        raw[column] = raw[column].str.strip()
    raw.index = raw.index + 2  # 1-based line numbers, after the header
    raw = raw[(raw != "").any(axis=1)]
    _raise_problems(path, _row_problems(raw, split))
    return _annotation_frame(raw, split)


def _row_problems(raw: pd.DataFrame, split: str) -> list[tuple[int, str]]:
    import pandas as pd

    problems: list[tuple[int, str]] = []

    def flag(mask: pd.Series, column: str, why: str) -> None:
        lines = raw.index[mask.to_numpy(dtype=bool)]
        problems.extend((int(line), f"{column} {raw.at[line, column]!r} {why}") for line in lines)

    flag(raw["youtube_id"] == "", "youtube_id", "is empty")
    numeric = {}
    for column in ("time_start", "time_end"):
        whole = raw[column].str.fullmatch(r"\d+")
        flag(~whole, column, "is not a whole number of seconds")
        numeric[column] = pd.to_numeric(raw[column].where(whole), errors="coerce")
    flag(numeric["time_end"] <= numeric["time_start"], "time_end", "is not after time_start")
    if "split" in raw.columns:
        flag(raw["split"].map(_SPLIT_VALUES) != split, "split", f"in a file read as the {split} split")
    if "is_cc" in raw.columns:
        flag(~raw["is_cc"].isin(["", "0", "1"]), "is_cc", "is not 0 or 1")
    return sorted(problems)


def _raise_problems(path: Path, problems: list[tuple[int, str]]) -> None:
    if not problems:
        return
    lines = {line for line, _ in problems}
    examples = "; ".join(f"line {line}: {what}" for line, what in problems[:_MAX_EXAMPLES])
    more = f" (and {len(problems) - _MAX_EXAMPLES} more)" if len(problems) > _MAX_EXAMPLES else ""
    raise DatasetError(f"{path}: {len(lines)} malformed row(s): {examples}{more}")


def _annotation_frame(raw: pd.DataFrame, split: str) -> pd.DataFrame:
    import pandas as pd

    labels = raw["label"] if "label" in raw.columns else pd.Series("", index=raw.index)
    frame = pd.DataFrame(
        {
            "label": labels.where(labels != "").astype("string"),
            "youtube_id": raw["youtube_id"].astype("string"),
            "time_start": raw["time_start"].astype("int64"),
            "time_end": raw["time_end"].astype("int64"),
            "split": pd.Series(split, index=raw.index, dtype="string"),
        }
    )
    if "is_cc" in raw.columns:
        frame["is_cc"] = pd.to_numeric(raw["is_cc"].where(raw["is_cc"] != "")).astype("Int8")
    return frame.reset_index(drop=True)


# ------------------------------------------------------------------------------------------------
# Label maps
# ------------------------------------------------------------------------------------------------


def load_label_map(
    version: str,
    *,
    source: str | Path | None = None,
    offline: bool = False,
    url: str | None = None,
    mirror: str = CVDF,
    archive: str | None = DEEPMIND_ARCHIVE,
    retries: int = 2,
) -> list[str]:
    """The class names in model order (alphabetical for every published map): index = class index.

    `source` is a label map file, or a folder holding one (`label_map_k400.txt`, or DeepMind's
    `label_map.txt` / `label_map_600.txt`). Otherwise the cached copy, or the pinned published map (or
    `url`) fetched into the cache. When no map can be had, the sorted labels of the val (then train)
    annotations stand in, with a warning: the order matches the published maps only if every class occurs.
    """
    _segment(version)
    reason = ""
    if source is not None:
        found = _local_label_map(Path(source), version)
        if found is not None:
            return _read_label_map(found, version)
        reason = f"no label map in {source}"
    else:
        cached = cache_dir() / "kinetics" / version / "label_map.txt"
        if not cached.is_file() and not offline:
            pinned = LABEL_MAP_SHA256[version] if url is None else None
            try:
                fetch(url or LABEL_MAP_URLS[version], cached, sha256=pinned, retries=retries)
            except DownloadError as error:
                reason = str(error)
        if cached.is_file():
            return _read_label_map(cached, version)
        reason = reason or f"offline and not cached at {cached}"
    return _labels_from_annotations(version, reason, source, offline, mirror, archive, retries)


def _local_label_map(source: Path, version: str) -> Path | None:
    """The label map `source` names, or None when it is a folder without one or an annotation CSV."""
    if source.is_file():
        return None if source.suffix.lower() == ".csv" else source
    if not source.is_dir():
        raise DatasetError(f"{source}: no such file or folder (expected a Kinetics label map or a folder holding one)")
    deepmind = {"400": "label_map.txt", "600": "label_map_600.txt"}
    for name in (f"label_map_k{version}.txt", deepmind.get(version)):
        if name is not None and (source / name).is_file():
            return source / name
    return None


def _read_label_map(path: Path, version: str) -> list[str]:
    try:
        labels = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot read the label map: {error}") from error
    labels = [label.strip() for label in labels]
    while labels and not labels[-1]:
        labels.pop()
    blank = [i + 1 for i, label in enumerate(labels) if not label]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    expected = int(version)
    if blank or duplicates or len(labels) != expected:
        raise DatasetError(
            f"{path}: not a Kinetics-{version} label map: {len(labels)} classes (expected {expected})"
            + (f", blank line(s) {blank[:_MAX_EXAMPLES]}" if blank else "")
            + (f", duplicated {duplicates[:_MAX_EXAMPLES]}" if duplicates else "")
        )
    return labels


def _labels_from_annotations(
    version: str,
    reason: str,
    source: str | Path | None,
    offline: bool,
    mirror: str,
    archive: str | None,
    retries: int,
) -> list[str]:
    failures = [reason]
    for split in ("val", "train"):
        try:
            frame = load_annotations(
                version, split, source=source, mirror=mirror, archive=archive, offline=offline, retries=retries
            )
        except DatasetError as error:
            failures.append(str(error))
            continue
        labels = sorted(set(frame["label"].dropna()))
        if labels:
            log.warning(
                "Kinetics-%s label map unavailable (%s); using the %d labels of the %s annotations, sorted",
                version,
                reason,
                len(labels),
                split,
            )
            return labels
        failures.append(f"the {split} annotations have no labels")
    raise DatasetError(f"Kinetics-{version} label map unavailable: {'; '.join(failures)}")


# ------------------------------------------------------------------------------------------------
# CVDF downloads
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractedClip:
    """A clip written by this run: where it came from and where it is."""

    key: ClipKey
    label: str | None
    path: Path
    partition: str
    unannotated: bool = False


@dataclass(frozen=True)
class PartitionFailure:
    """A tarball that did not make it, and why (HTTP status, corrupt archive, size mismatch, disk space)."""

    partition: str
    url: str
    reason: str


@dataclass
class CvdfResult:
    """What one `download_cvdf` run did; a rerun picks up what is missing."""

    version: str
    split: str
    split_dir: Path
    partitions_listed: int
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    failed: list[PartitionFailure] = field(default_factory=list)
    extracted: list[ExtractedClip] = field(default_factory=list)
    already_present: int = 0

    @property
    def unannotated(self) -> list[ExtractedClip]:
        return [clip for clip in self.extracted if clip.unannotated]

    @property
    def n_extracted(self) -> int:
        return len(self.extracted)

    @property
    def n_failed(self) -> int:
        return len(self.failed)

    @property
    def complete(self) -> bool:
        """True when every listed partition is done, in this run or an earlier one."""
        return len(self.done) + len(self.skipped) == self.partitions_listed


@dataclass(frozen=True)
class _Partition:
    name: str
    url: str


@dataclass
class _Outcome:
    partition: _Partition
    clips: list[ExtractedClip] = field(default_factory=list)
    already_present: int = 0
    error: str | None = None
    out_of_space: bool = False


class _Annotations:
    """Clip -> label lookup: by exact key, else by YouTube id when that id has one label (as CVDF matches)."""

    _AMBIGUOUS = object()

    def __init__(self, frame: pd.DataFrame) -> None:
        import pandas as pd

        missing = [c for c in _REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise DatasetError(f"annotations table lacks column(s) {', '.join(missing)}; use load_annotations()")
        labels = frame["label"] if "label" in frame.columns else pd.Series(pd.NA, index=frame.index)
        self.by_key: dict[ClipKey, str | None] = {}
        self.by_id: dict[str, object] = {}
        rows = zip(frame["youtube_id"], frame["time_start"], frame["time_end"], labels, strict=True)
        for youtube_id, start, end, label in rows:
            value = None if pd.isna(label) else str(label)
            self.by_key[ClipKey(str(youtube_id), int(start), int(end))] = value
            previous = self.by_id.setdefault(str(youtube_id), value)
            if previous != value:
                self.by_id[str(youtube_id)] = self._AMBIGUOUS

    def lookup(self, key: ClipKey) -> tuple[str | None, bool]:
        """(label, annotated); unannotated clips get no label."""
        if key in self.by_key:
            return self.by_key[key], True
        label = self.by_id.get(key.youtube_id, self._AMBIGUOUS)
        if label is self._AMBIGUOUS:
            return None, False
        return label if isinstance(label, str) else None, True


class _Claims:
    """Targets being written right now, so two partitions holding one clip never share a temp file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[Path] = set()

    def take(self, path: Path) -> bool:
        with self._lock:
            if path in self._paths:
                return False
            self._paths.add(path)
            return True

    def release(self, path: Path) -> None:
        with self._lock:
            self._paths.discard(path)


def download_cvdf(
    root: str | Path,
    version: str,
    split: str,
    *,
    annotations: pd.DataFrame,
    mirror: str = CVDF,
    workers: int = 4,
    limit: int | None = None,
    keep_tarballs: bool = False,
    retries: int = 5,
    progress: Callable[[int, int], None] | None = None,
    byte_progress: Callable[[int, int], None] | None = None,
) -> CvdfResult:
    """Download a split's CVDF tarballs and unpack their clips into `<root>/kinetics<version>/<split>/<label>/`.

    Resumable at every step: finished partitions are listed in `<split>/.cvdf_state.json` and skipped,
    tarballs resume where they stopped, clips are written under a temp name then renamed, and clips
    already on disk are kept. A failing partition is recorded in the result and the others go on.
    With `limit`, partitions run one at a time until `limit` annotated clips are on disk.
    `progress(partitions_finished, partitions_to_do)` follows the run, `byte_progress(done, known_total)`
    the bytes of the tarballs in flight or finished. Only a tarball list that cannot
    be had (it is kept in `<split>/.cvdf/` once fetched) raises: `DownloadError`.
    """
    segment = _segment(version)
    _check_split(split)
    split_dir = dataset_dir(root, version) / split
    work_dir = split_dir / _WORK_DIR
    index = _Annotations(annotations)
    list_url = f"{mirror.rstrip('/')}/{segment}/{split}/k{segment}_{split}_path.txt"
    partitions = _read_partition_list(list_url, work_dir / posixpath.basename(list_url), mirror, retries)
    state_path = split_dir / STATE_FILE
    completed = _load_state(state_path)
    _remove_stale_partials(split_dir)
    result = CvdfResult(version, split, split_dir, len(partitions))
    result.skipped = [p.name for p in partitions if p.name in completed]
    pending = deque(p for p in partitions if p.name not in completed)
    on_disk = _count_annotated(split_dir, index) if limit is not None else 0
    out_of_space = False
    run = _Run(
        split_dir, work_dir, index, keep_tarballs, retries, _Claims(), threading.Event(), _ByteTally(byte_progress)
    )

    def record(outcome: _Outcome) -> None:
        nonlocal on_disk, out_of_space
        out_of_space = out_of_space or outcome.out_of_space
        result.extracted.extend(outcome.clips)
        result.already_present += outcome.already_present
        on_disk += sum(not clip.unannotated for clip in outcome.clips)
        if outcome.error is not None:
            result.failed.append(PartitionFailure(outcome.partition.name, outcome.partition.url, outcome.error))
            log.warning("Kinetics-%s %s partition %s failed: %s", version, split, outcome.partition.url, outcome.error)
            return
        result.done.append(outcome.partition.name)
        completed.append(outcome.partition.name)
        _save_state(state_path, version, split, completed)

    def should_stop() -> bool:
        return out_of_space or (limit is not None and on_disk >= limit)

    concurrency = 1 if limit is not None else max(1, workers)
    _schedule(run, pending, concurrency, record, should_stop, progress)
    result.not_started = [p.name for p in pending]
    return result


@dataclass(frozen=True)
class _Run:
    """What every partition's worker shares."""

    split_dir: Path
    work_dir: Path
    index: _Annotations
    keep_tarballs: bool
    retries: int
    claims: _Claims
    cancelled: threading.Event
    bytes: _ByteTally

    def check_cancelled(self, *_: int) -> None:
        """Raise in a worker once the run is abandoned (Ctrl-C), so it stops within a chunk or a clip."""
        if self.cancelled.is_set():
            raise _Cancelled

    def fetch_progress(self, partition: str) -> Callable[[int, int], None]:
        def update(done: int, total: int) -> None:
            self.check_cancelled()
            self.bytes.update(partition, done, total)

        return update


class _ByteTally:
    """Bytes of every partition's download, summed across worker threads for one progress bar."""

    def __init__(self, callback: Callable[[int, int], None] | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self._parts: dict[str, tuple[int, int]] = {}

    def update(self, partition: str, done: int, total: int) -> None:
        if self._callback is None:
            return
        with self._lock:
            self._parts[partition] = (done, max(total, done))
            done_all = sum(d for d, _ in self._parts.values())
            total_all = sum(t for _, t in self._parts.values())
            self._callback(done_all, total_all)


class _Cancelled(Exception):
    """The run was interrupted; what is on disk stays valid for the next run."""


def _schedule(
    run: _Run,
    pending: deque[_Partition],
    concurrency: int,
    record: Callable[[_Outcome], None],
    should_stop: Callable[[], bool],
    progress: Callable[[int, int], None] | None,
) -> None:
    """Keep `concurrency` partitions in flight; start no new one once `should_stop()` says so."""
    import httpx

    total, finished = len(pending), 0
    limits = httpx.Limits(max_connections=concurrency + 1)
    with httpx.Client(follow_redirects=True, limits=limits) as client, ThreadPoolExecutor(concurrency) as pool:
        running: set[Future[_Outcome]] = set()
        try:
            while pending or running:
                while pending and len(running) < concurrency and not should_stop():
                    running.add(pool.submit(_process_partition, run, pending.popleft(), client))
                if not running:
                    return
                ready, running = wait(running, return_when=FIRST_COMPLETED)
                for future in ready:
                    record(future.result())
                    finished += 1
                    if progress is not None:
                        progress(finished, total)
        except BaseException:
            run.cancelled.set()
            raise


def _read_partition_list(list_url: str, local: Path, mirror: str, retries: int) -> list[_Partition]:
    """The split's tarball URLs, moved onto `mirror` when the list names the official host."""
    fetch(list_url, local, retries=retries)
    partitions: dict[str, _Partition] = {}
    for line in local.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        url = _on_mirror(urljoin(list_url, line), mirror)
        name = posixpath.basename(urlsplit(url).path)
        if not name:
            raise DatasetError(f"{local}: {line!r} does not name a tarball")
        partitions.setdefault(name, _Partition(name, url))
    if not partitions:
        raise DatasetError(f"{local}: the tarball list from {list_url} is empty")
    return list(partitions.values())


def _on_mirror(url: str, mirror: str) -> str:
    mirror = mirror.rstrip("/")
    for official in (CVDF, CVDF.replace("https://", "http://", 1)):
        if url.startswith(official + "/"):
            return mirror + url[len(official) :]
    return url


def _load_state(path: Path) -> list[str]:
    if not path.is_file():
        return []
    try:
        completed = json.loads(path.read_text(encoding="utf-8"))["completed"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(
            f"{path}: unreadable download state ({error}); delete it to re-check every partition"
        ) from error
    if not isinstance(completed, list) or not all(isinstance(name, str) for name in completed):
        raise DatasetError(f"{path}: 'completed' must be a list of tarball names")
    return completed


def _save_state(path: Path, version: str, split: str, completed: Iterable[str]) -> None:
    state = {"version": version, "split": split, "completed": sorted(set(completed))}
    write_text_atomic(path, json.dumps(state, indent=1) + "\n")


def _remove_stale_partials(split_dir: Path) -> None:
    """Clips half-written by a killed run; atomic writes mean nothing else can be incomplete."""
    if not split_dir.is_dir():
        return
    for folder in split_dir.iterdir():
        if folder.is_dir() and not folder.name.startswith("."):
            for partial in folder.glob(".*.partial"):
                partial.unlink(missing_ok=True)


def _count_annotated(split_dir: Path, index: _Annotations) -> int:
    if not split_dir.is_dir():
        return 0
    count = 0
    for folder in split_dir.iterdir():
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        for path in folder.iterdir():
            key = parse_clip_name(path.name) if not path.name.startswith(".") else None
            if key is not None and index.lookup(key)[1]:
                count += 1
    return count


def _process_partition(run: _Run, partition: _Partition, client: httpx.Client) -> _Outcome:
    """Download, check space, extract, clean up; every failure becomes the outcome's `error`."""
    outcome = _Outcome(partition)
    tarball = run.work_dir / partition.name
    try:
        fetch(partition.url, tarball, retries=run.retries, client=client, progress=run.fetch_progress(partition.name))
        _check_space(partition.url, tarball, run.split_dir)
    except _OutOfSpace as error:
        outcome.error, outcome.out_of_space = error.reason, True
        return outcome
    except DownloadError as error:
        outcome.error = error.reason
        return outcome
    except OSError as error:
        outcome.error = f"cannot write {tarball}: {error}"
        return outcome
    try:
        _extract_clips(run, partition, tarball, outcome)
    except (tarfile.TarError, EOFError, zlib.error) as error:
        outcome.error = f"corrupt archive: {error}"
        tarball.unlink(missing_ok=True)
        return outcome
    except OSError as error:
        outcome.error = f"extraction failed: {error}"
        return outcome
    if not run.keep_tarballs:
        tarball.unlink(missing_ok=True)
    return outcome


class _OutOfSpace(DownloadError):
    """Extraction would fill the disk; the tarball is kept and no further partition is started."""


def _check_space(url: str, tarball: Path, split_dir: Path) -> None:
    """Clips barely compress, so extracting needs about the tarball's size again."""
    split_dir.mkdir(parents=True, exist_ok=True)
    needed = tarball.stat().st_size
    free = shutil.disk_usage(split_dir).free
    if free < needed:
        raise _OutOfSpace(
            url, f"not enough disk space to extract: needs about {needed} bytes, {free} free at {split_dir}"
        )


def _extract_clips(run: _Run, partition: _Partition, tarball: Path, outcome: _Outcome) -> None:
    """Stream the archive; only regular files with a clip name, placed by that name alone.

    Member paths are never used (a `../x_000001_000011.mp4` lands in the layout like any clip) and
    links, devices and folders are skipped, so a hostile archive can write nothing outside the layout.
    Gzip errors surface as exceptions after the clips before them are safely on disk.
    """
    with tarfile.open(tarball, mode="r|gz") as archive:
        for member in archive:
            run.check_cancelled()
            key = parse_clip_name(member.name) if member.isreg() else None
            if key is None:
                continue
            label, annotated = run.index.lookup(key)
            suffix = posixpath.splitext(member.name)[1].lower()
            target = clip_path(run.split_dir, label, key).with_suffix(suffix)
            if target.exists() or not run.claims.take(target):
                outcome.already_present += 1
                continue
            try:
                _write_member(archive, member, target)
            finally:
                run.claims.release(target)
            outcome.clips.append(ExtractedClip(key, label, target, partition.name, unannotated=not annotated))


def _write_member(archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    stream = archive.extractfile(member)
    if stream is None:
        raise tarfile.ReadError(f"{member.name}: no data for a regular file")
    with atomic_path(target) as tmp, tmp.open("wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
