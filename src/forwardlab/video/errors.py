"""Exceptions of the video half; each names the input it is about."""

from pathlib import Path

from forwardlab.errors import ForwardlabError


class VideoError(ForwardlabError):
    """Base of every video-side error."""


class VideoDecodeError(VideoError):
    """A file cannot be probed or decoded; `path` and `reason` say which and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DatasetError(VideoError):
    """Annotations, layouts or manifests that are missing, malformed or inconsistent."""


class DownloadError(DatasetError):
    """A download failed after its retries; `url` says which."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")
