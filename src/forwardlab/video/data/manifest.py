"""One table of clips per dataset: where each clip is, its label and split, and whether it is usable.

The manifest is a SQLite file, so downloads can record progress clip by clip in transactions and a
killed run never leaves it half-written. Paths are stored relative to the dataset root, which the
manifest remembers, so a dataset folder can be moved with its manifest. A sample is simply another
manifest over the same root: evaluation, exploration and training read both the same way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from forwardlab.video.data.layout import ClipKey, clip_path
from forwardlab.video.errors import DatasetError, VideoDecodeError

MANIFEST_NAME = "manifest.sqlite"
Status = Literal["missing", "downloaded", "corrupt"]
STATUSES: tuple[Status, ...] = ("missing", "downloaded", "corrupt")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ClipRecord:
    """One annotated or discovered clip. Probe fields are None until the clip has been probed."""

    path: str
    label: str | None
    split: str
    source: str
    status: Status = "missing"
    reason: str | None = None
    youtube_id: str | None = None
    time_start: int | None = None
    time_end: int | None = None
    is_cc: int | None = None
    duration_s: float | None = None
    fps: float | None = None
    n_frames: int | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    has_audio: bool | None = None
    variable_frame_rate: bool | None = None
    size_bytes: int | None = None


_COLUMNS = [f.name for f in fields(ClipRecord)]
_PROBE_FIELDS = frozenset(
    ["duration_s", "fps", "n_frames", "width", "height", "codec", "has_audio", "variable_frame_rate", "size_bytes"]
)
_SQL_TYPES = {"float | None": "REAL", "int | None": "INTEGER", "bool | None": "INTEGER"}


def _ddl() -> str:
    cols = []
    for f in fields(ClipRecord):
        sql_type = _SQL_TYPES.get(str(f.type), "TEXT")
        cols.append(f"{f.name} {sql_type}" + (" PRIMARY KEY" if f.name == "path" else ""))
    return f"CREATE TABLE IF NOT EXISTS clips ({', '.join(cols)})"


class Manifest:
    """A manifest file: open an existing one with `Manifest(path)`, make one with `Manifest.create`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: no manifest here (create one with `forwardlab video dataset import`)")
        try:
            with self._connect() as db:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise DatasetError(f"{self.path}: not a forwardlab manifest ({exc})") from exc
        if int(meta.get("schema_version", -1)) != SCHEMA_VERSION:
            raise DatasetError(f"{self.path}: manifest schema {meta.get('schema_version')} is not {SCHEMA_VERSION}")
        root = Path(meta["root"])
        self.root = root if root.is_absolute() else (self.path.parent / root).resolve()
        self.name = meta.get("name", self.path.stem)

    @classmethod
    def create(cls, path: str | Path, root: str | Path, *, name: str | None = None) -> Manifest:
        """Create (or reopen) a manifest for clips under `root`; existing rows are kept."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        root_path = Path(root).resolve()
        try:
            stored_root = str(root_path.relative_to(target.parent.resolve()))
        except ValueError:
            stored_root = str(root_path)
        db = sqlite3.connect(target)
        try:
            with db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
                db.execute(_ddl())
                db.execute("CREATE INDEX IF NOT EXISTS clips_label ON clips(split, label)")
                db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("schema_version", str(SCHEMA_VERSION)), ("root", stored_root), ("name", name or target.stem)],
                )
        finally:
            db.close()
        return cls(target)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def upsert(self, records: Iterable[ClipRecord]) -> int:
        """Insert or replace rows by path, all in one transaction; returns how many were written."""
        return self._write("INSERT OR REPLACE", records)

    def insert_new(self, records: Iterable[ClipRecord]) -> int:
        """Add rows whose path is not in the manifest yet, keeping what existing rows know."""
        return self._write("INSERT OR IGNORE", records)

    def _write(self, verb: str, records: Iterable[ClipRecord]) -> int:
        rows = [tuple(_to_sql(getattr(r, c)) for c in _COLUMNS) for r in records]
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self._connect() as db:
            before = db.total_changes
            db.executemany(f"{verb} INTO clips ({', '.join(_COLUMNS)}) VALUES ({placeholders})", rows)
            return db.total_changes - before

    def records(self, *, split: str | None = None, status: Status | None = None) -> list[ClipRecord]:
        where, params = [], []
        if split is not None:
            where.append("split = ?")
            params.append(split)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM clips"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._connect() as db:
            rows = db.execute(sql + " ORDER BY split, label, path", params).fetchall()
        return [_from_sql(row) for row in rows]

    def __len__(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM clips").fetchone()[0])

    def absolute(self, record: ClipRecord) -> Path:
        return self.root / record.path

    def to_frame(self) -> Any:
        """All rows as a pandas DataFrame (pandas imported here: the manifest itself does not need it)."""
        import pandas as pd

        return pd.DataFrame([{c: getattr(r, c) for c in _COLUMNS} for r in self.records()], columns=_COLUMNS)

    def counts(self) -> dict[str, dict[str, int]]:
        """{split: {status: n}} for a quick status table."""
        with self._connect() as db:
            rows = db.execute("SELECT split, status, COUNT(*) FROM clips GROUP BY split, status").fetchall()
        out: dict[str, dict[str, int]] = {}
        for split, status, n in rows:
            out.setdefault(split, {s: 0 for s in STATUSES})[status] = n
        return out

    def refresh(
        self,
        *,
        workers: int = 4,
        progress: Callable[[int, int], None] | None = None,
        only_unprobed: bool = False,
    ) -> dict[str, int]:
        """Rebuild every row's status from disk: missing, downloaded (probes fine) or corrupt (with why).

        Clips whose file size and mtime have not changed since their last successful probe keep their
        probe fields without being opened again, so re-running `status` on a large dataset is quick.
        `only_unprobed` checks just the rows without probe fields that are not known corrupt (what
        exploring needs): rows whose metadata is already known are not even looked up on disk.
        """
        records = self.records()
        if only_unprobed:
            records = [r for r in records if r.duration_s is None and r.status != "corrupt"]
        done = 0
        updated: list[ClipRecord] = []

        def check(record: ClipRecord) -> ClipRecord:
            return _check_on_disk(record, self.absolute(record))

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for new in pool.map(check, records):
                updated.append(new)
                done += 1
                if progress is not None:
                    progress(done, len(records))
        self.upsert(updated)
        tally: dict[str, int] = {s: 0 for s in STATUSES}
        for r in updated:
            tally[r.status] += 1
        return tally

    def sample(
        self,
        out: str | Path,
        *,
        per_class: int | None = None,
        limit: int | None = None,
        seed: int = 0,
        split: str | None = None,
        status: Status | None = None,
    ) -> Manifest:
        """A seeded sample written as its own manifest over the same root.

        `per_class=K` takes up to K clips of every label (stratified); `limit=N` takes N clips drawn
        uniformly; both can be combined (stratified first, then capped).
        """
        if per_class is None and limit is None:
            raise DatasetError("sample needs --per-class K or --limit N")
        if (per_class is not None and per_class < 1) or (limit is not None and limit < 1):
            raise DatasetError("sample sizes must be positive")
        pool = self.records(split=split, status=status)
        if not pool:
            raise DatasetError(f"{self.path}: no clips to sample (split={split}, status={status})")
        import numpy as np

        rng = np.random.default_rng(seed)
        chosen = pool
        if per_class is not None:
            by_label: dict[str | None, list[ClipRecord]] = {}
            for r in pool:
                by_label.setdefault(r.label, []).append(r)
            chosen = []
            for label in sorted(by_label, key=lambda x: (x is None, x or "")):
                group = by_label[label]
                take = rng.permutation(len(group))[:per_class]
                chosen.extend(group[i] for i in sorted(take))
        if limit is not None and len(chosen) > limit:
            chosen = [chosen[i] for i in sorted(rng.permutation(len(chosen))[:limit])]
        target = Path(out)
        if target.exists():
            target.unlink()
        sample = Manifest.create(target, self.root, name=target.stem)
        sample.upsert(chosen)
        return sample


def _check_on_disk(record: ClipRecord, path: Path) -> ClipRecord:
    if not path.is_file():
        # a download failure's reason (e.g. "youtube private: ...") says more than "not on disk"
        kept = record.reason if record.status == "missing" and record.reason else None
        return replace(record, status="missing", reason=kept or "file not on disk")
    size = path.stat().st_size
    if record.status == "downloaded" and record.size_bytes == size and record.duration_s is not None:
        return record
    from forwardlab.video.io import probe  # PyAV and numpy: not needed to start the CLI

    try:
        info = probe(path)
    except VideoDecodeError as exc:
        return replace(record, status="corrupt", reason=exc.reason, size_bytes=size)
    probed = {k: v for k, v in asdict(info).items() if k in _PROBE_FIELDS}
    return replace(record, status="downloaded", reason=None, **probed)


def _to_sql(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def _from_sql(row: Sequence[Any]) -> ClipRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    for name in ("has_audio", "variable_frame_rate"):
        if values[name] is not None:
            values[name] = bool(values[name])
    return ClipRecord(**values)


def annotation_records(annotations: Any, split_dir: str, *, source: str) -> list[ClipRecord]:
    """Rows for every annotated clip, at the path the layout gives it (status until checked: missing).

    `annotations` is the table `kinetics.load_annotations` returns; `split_dir` is relative to the root.
    """
    import pandas as pd

    records = []
    for row in annotations.itertuples(index=False):
        label = row.label if isinstance(row.label, str) and row.label else None
        key = ClipKey(row.youtube_id, int(row.time_start), int(row.time_end))
        is_cc = getattr(row, "is_cc", None)
        records.append(
            ClipRecord(
                path=str(clip_path(Path(split_dir), label, key)),
                label=label,
                split=row.split,
                source=source,
                youtube_id=key.youtube_id,
                time_start=key.time_start,
                time_end=key.time_end,
                is_cc=None if is_cc is None or pd.isna(is_cc) else int(is_cc),
            )
        )
    return records
