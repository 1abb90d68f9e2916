"""`make demo` for the video half: built-in synthetic data in, a probe summary and a contact sheet out."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from forwardlab.fileio import write_text_atomic
from forwardlab.progress import progress_bar
from forwardlab.video.io import VideoInfo, probe, read_frames
from forwardlab.video.sampling import uniform_timestamps
from forwardlab.video.visualize import contact_sheet, save_image

DEMO_SPLIT = "val"
SHEET_FRAMES = 8
SHEET_SIZE = 96


@dataclass(frozen=True)
class DemoResult:
    dataset_root: Path
    probe_json: Path
    contact_sheet: Path
    n_clips: int


def run_demo(out: Path, *, per_class: int = 4, seed: int = 0, console: Console | None = None) -> DemoResult:
    """Generate the synthetic split, probe every clip, and draw one sampled clip per class."""
    from forwardlab.video.data.synthetic import CLASSES, generate

    console = console or Console()
    root = out / "synthetic"
    with progress_bar("generating synthetic clips", per_class * len(CLASSES)) as advance:
        clips = generate(root, per_class=per_class, split=DEMO_SPLIT, seed=seed, progress=advance)
    infos: list[tuple[str, VideoInfo]] = []
    with progress_bar("probing clips", len(clips)) as advance:
        for i, clip in enumerate(clips, 1):
            infos.append((clip.label, probe(clip.path)))
            advance(i, len(clips))
    probe_json = out / "probe.json"
    write_text_atomic(probe_json, json.dumps([dict(label=lbl, **i.to_dict()) for lbl, i in infos], indent=2))
    console.print(_summary(infos))

    first: dict[str, VideoInfo] = {}
    for label, info in infos:
        first.setdefault(label, info)
    rows = [
        (label, read_frames(info.path, uniform_timestamps(info, SHEET_FRAMES), size=SHEET_SIZE).data)
        for label, info in first.items()
    ]
    sheet = save_image(contact_sheet(rows), out / "contact_sheet.png")
    return DemoResult(root, probe_json, sheet, len(clips))


def _summary(infos: list[tuple[str, VideoInfo]]) -> Table:
    by_label: dict[str, list[VideoInfo]] = defaultdict(list)
    for label, info in infos:
        by_label[label].append(info)
    table = Table("class", "clips", "duration s", "fps", "sizes", "frames", title="probe summary")
    for label, group in sorted(by_label.items()):
        durations = [i.duration_s for i in group]
        table.add_row(
            label,
            str(len(group)),
            f"{min(durations):.1f}-{max(durations):.1f}",
            ",".join(sorted({f"{i.fps:g}" for i in group})),
            ",".join(sorted({f"{i.width}x{i.height}" for i in group})),
            str(sum(i.n_frames for i in group)),
        )
    return table
