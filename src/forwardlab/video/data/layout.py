"""Where clips live on disk: `<root>/kinetics<version>/<split>/<label>/<id>_<start:06d>_<end:06d>.mp4`.

Every source (CVDF tarballs, YouTube, the synthetic generator, a user's folder) ends up in this one
layout, so the manifest, evaluation and training only ever read one shape of dataset.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

VERSIONS = ("400", "600", "700")
SPLITS = ("train", "val", "test")
UNLABELLED = "unlabelled"  # folder for clips whose annotation has no label (e.g. a test split)
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")

_CLIP_NAME = re.compile(r"^(?P<id>.+)_(?P<start>\d{6})_(?P<end>\d{6})(?P<suffix>\.[A-Za-z0-9]+)$")


@dataclass(frozen=True, order=True)
class ClipKey:
    """A Kinetics clip's identity: the YouTube id and the whole-second range cut from it."""

    youtube_id: str
    time_start: int
    time_end: int

    @property
    def file_name(self) -> str:
        return f"{self.youtube_id}_{self.time_start:06d}_{self.time_end:06d}.mp4"


def parse_clip_name(name: str) -> ClipKey | None:
    """The key encoded in a clip's file name, or None for names not in the Kinetics pattern."""
    match = _CLIP_NAME.match(os.path.basename(name))
    if match is None or match["suffix"].lower() not in VIDEO_SUFFIXES:
        return None
    return ClipKey(match["id"], int(match["start"]), int(match["end"]))


def dataset_dir(root: str | Path, version: str) -> Path:
    return Path(root) / f"kinetics{version}"


def label_dir_name(label: str | None) -> str:
    """Folder name for a label; labels keep their spaces, path separators are replaced."""
    if not label:
        return UNLABELLED
    return label.replace("/", "_").replace(os.sep, "_")


def clip_path(split_dir: Path, label: str | None, key: ClipKey) -> Path:
    return split_dir / label_dir_name(label) / key.file_name
