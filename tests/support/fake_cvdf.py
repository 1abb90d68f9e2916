"""A miniature CVDF Kinetics mirror on disk: flat tar.gz partitions of tiny real clips, a tarball list and
an annotation CSV, laid out under `<root>/kinetics/<segment>/...` as on S3, ready for `serve_directory`.

Clips are real H.264 files (from `clips.write_video`), so a test can check that what lands in the layout
still decodes; their bytes are kept so a test can also check they arrived unchanged.
"""

from __future__ import annotations

import csv
import io
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from forwardlab.video.data.layout import ClipKey
from tests.support.clips import write_video

LABELS = ("abseiling", "air drumming", "passing American football (in game)")
OFFICIAL = "https://s3.amazonaws.com"  # + "/kinetics/..." = the official CVDF URLs


@dataclass(frozen=True)
class FakeClip:
    """One clip of the mirror; `label` None means the annotations do not list it."""

    key: ClipKey
    label: str | None
    data: bytes
    partition: str


@dataclass(frozen=True)
class FakeCvdf:
    root: Path
    clips: tuple[FakeClip, ...]
    partitions: tuple[str, ...]
    annotations: Path
    segment: str = "400"
    split: str = "val"

    @property
    def split_url_path(self) -> str:
        return f"/kinetics/{self.segment}/{self.split}"

    @property
    def list_name(self) -> str:
        return f"k{self.segment}_{self.split}_path.txt"

    def tarball(self, name: str) -> Path:
        return self.root / self.split_url_path.lstrip("/") / name

    def url_path(self, name: str) -> str:
        return f"{self.split_url_path}/{name}"

    def annotated(self) -> list[FakeClip]:
        return [clip for clip in self.clips if clip.label is not None]

    def in_partition(self, name: str) -> list[FakeClip]:
        return [clip for clip in self.clips if clip.partition == name]

    def write_list(self, base: str, names: Sequence[str] | None = None) -> None:
        """The tarball list, one `base + url path` per line (`base` may be the official host)."""
        lines = [f"{base}{self.url_path(name)}" for name in (names or self.partitions)]
        (self.root / self.split_url_path.lstrip("/") / self.list_name).write_text("\n".join(lines) + "\n")


def make_videos(folder: Path, count: int) -> list[bytes]:
    """`count` distinct tiny H.264 clips, as bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_video(folder / f"v{i}.mp4", n_frames=6 + i).read_bytes() for i in range(count)]


def build_fake_cvdf(
    root: Path, videos: Sequence[bytes], *, n_partitions: int = 3, per_partition: int = 3, unannotated: int = 1
) -> FakeCvdf:
    """Pack `n_partitions * per_partition` annotated clips plus `unannotated` unlisted ones (in the last part)."""
    needed = n_partitions * per_partition + unannotated
    if len(videos) < needed:
        raise ValueError(f"need {needed} videos, got {len(videos)}")
    names = tuple(f"part_{i}.tar.gz" for i in range(n_partitions))
    clips = []
    for i in range(needed):
        partition = names[min(i // per_partition, n_partitions - 1)]
        label = LABELS[i % len(LABELS)] if i < n_partitions * per_partition else None
        key = ClipKey(f"-{i:02d}_abcDEF{i:02d}"[:11], 10 * i, 10 * i + 10)
        clips.append(FakeClip(key, label, videos[i], partition))
    fake = FakeCvdf(root, tuple(clips), names, root / "val_annotations.csv")
    for name in names:
        write_tarball(fake.tarball(name), [(c.key.file_name, c.data) for c in fake.in_partition(name)])
    _write_annotations(fake.annotations, [c for c in clips if c.label is not None])
    return fake


def write_tarball(path: Path, members: Sequence[tuple[str, bytes]]) -> Path:
    """A gzip tarball of regular files, flat as CVDF packs them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode="w:gz") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _write_annotations(path: Path, clips: Sequence[FakeClip]) -> None:
    """Kinetics-400 columns; one extra row for a clip no partition holds, as in the real val split."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split", "is_cc"])
        for clip in clips:
            writer.writerow([clip.label, clip.key.youtube_id, clip.key.time_start, clip.key.time_end, "val", 0])
        writer.writerow([LABELS[0], "missingCLIP", 5, 15, "val", 1])
