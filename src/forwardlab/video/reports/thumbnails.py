"""Thumbnails for report galleries: a few frames of a clip side by side, written as small WebP files.

Pages link thumbnails as relative files (not inlined) so a gallery of hundreds of clips stays a light
page. Frames are decoded in fast mode at thumbnail height (keyframe-near frames, never full resolution),
in a thread pool: PyAV decodes without holding the GIL. A clip that cannot be decoded gets no file and
keeps its reason, which the page shows instead of a broken image.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from forwardlab.progress import Advance
from forwardlab.video.errors import VideoDecodeError

THUMB_FRAMES = 4
THUMB_HEIGHT = 64


@dataclass(frozen=True)
class Thumbnail:
    """A clip's thumbnail file (None when the clip could not be decoded, with the reason)."""

    key: str
    file: Path | None
    error: str | None = None


def thumbnail_name(key: str) -> str:
    """A stable file name for a clip key (paths may hold characters a file name or URL should not)."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:20] + ".webp"


def write_thumbnail(video: Path, target: Path, *, frames: int = THUMB_FRAMES, height: int = THUMB_HEIGHT) -> Path:
    """Decode `frames` evenly spread frames of `video` at `height` pixels and save them as one strip."""
    from forwardlab.video.io import probe, read_frames
    from forwardlab.video.sampling import uniform_timestamps
    from forwardlab.video.visualize import frame_strip, save_image

    info = probe(video)
    width = max(2, round(height * info.width / max(1, info.height)))
    decoded = read_frames(video, uniform_timestamps(info, frames), size=(height, width), mode="fast")
    return save_image(frame_strip(decoded.data), target)


def write_thumbnails(
    clips: Sequence[tuple[str, Path]],
    folder: Path,
    *,
    workers: int = 2,
    progress: Advance | None = None,
) -> dict[str, Thumbnail]:
    """Thumbnails of `(key, video path)` clips into `folder`, by key; failures are recorded, not raised."""
    folder.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[str, Path]) -> Thumbnail:
        key, video = item
        try:
            return Thumbnail(key, write_thumbnail(video, folder / thumbnail_name(key)))
        except VideoDecodeError as exc:
            return Thumbnail(key, None, exc.reason)
        except Exception as exc:  # odd files raise many PyAV types; a gallery shows the reason and goes on
            return Thumbnail(key, None, f"{type(exc).__name__}: {exc}")

    done: dict[str, Thumbnail] = {}
    if progress is not None:
        progress(0, len(clips))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for thumb in pool.map(one, clips):
            done[thumb.key] = thumb
            if progress is not None:
                progress(len(done), len(clips))
    return done
