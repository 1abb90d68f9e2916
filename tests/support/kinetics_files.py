"""Stand-ins for the official Kinetics annotation files, for a clone without ../shared/data/kinetics.

They follow the published formats exactly (the headers, K400's `is_cc` column, K700's `validate` split, test
files without labels, alphabetical label maps) but are small and seeded, so the parsing tests run offline.
Kinetics-400's class names are the `i3d` entry's (DeepMind's alphabetical label map, which torchvision's
Kinetics weights also carry), so the stand-in and the real map both match the models' class index; 600 and
700 use made-up names that sort like the real ones.
"""

from __future__ import annotations

import csv
import random
import string
from dataclasses import dataclass
from pathlib import Path

VERSIONS = ("400", "600", "700")
SPLITS = ("val", "test")
ROWS = {"val": 3, "test": 2}  # rows per class in a val file; a test file has ROWS["test"] x classes rows


@dataclass(frozen=True)
class AnnotationFile:
    """One annotation file and what parsing it must give."""

    version: str
    split: str
    rows: int
    classes: int


def kinetics400_classes() -> list[str]:
    from forwardlab.video.models.i3d import ENTRY

    return list(ENTRY.classes)


def _labels(version: str) -> list[str]:
    if version == "400":
        return kinetics400_classes()
    return sorted(f"action {i:03d}" for i in range(int(version)))


def _youtube_id(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(11))


def write_stand_in(root: Path, seed: int = 0) -> list[AnnotationFile]:
    """Write label maps and val/test CSVs for every version under `root`; return what each must parse to."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    files = []
    for version in VERSIONS:
        labels = _labels(version)
        (root / f"label_map_k{version}.txt").write_text("\n".join(labels) + "\n")
        for split in SPLITS:
            path = root / f"kinetics-{version}_{split}.csv"
            with path.open("w", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                if split == "test":
                    writer.writerow(["youtube_id", "time_start", "time_end", "split"])
                    rows = [[_youtube_id(rng), s, s + 10, "test"] for s in range(len(labels) * ROWS["test"])]
                    files.append(AnnotationFile(version, split, len(rows), 0))
                else:
                    header = ["label", "youtube_id", "time_start", "time_end", "split"]
                    named = "validate" if version == "700" else "val"
                    rows = [
                        [label, _youtube_id(rng), 10 * i, 10 * i + 10, named]
                        for label in labels
                        for i in range(ROWS["val"])
                    ]
                    if version == "400":
                        header.append("is_cc")
                        rows = [[*row, i % 2] for i, row in enumerate(rows)]
                    writer.writerow(header)
                    files.append(AnnotationFile(version, split, len(rows), len(labels)))
                writer.writerows(rows)
    return files
