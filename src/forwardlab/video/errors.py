"""Exceptions of the video half; each names the input it is about."""

from pathlib import Path

from forwardlab.errors import DownloadError, ForwardlabError

__all__ = [
    "CheckpointError",
    "DatasetError",
    "DownloadError",
    "EvaluationError",
    "ModelError",
    "ReportError",
    "TrainError",
    "VideoDecodeError",
    "VideoError",
]


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


class ModelError(VideoError):
    """Unknown model names, weights that cannot be found or loaded, recipes that cannot be met."""


class CheckpointError(VideoError):
    """A weights file that cannot be read safely or does not fit the model; `path` and `reason` say which."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class TrainError(VideoError):
    """A training run that cannot start: bad data, a bad setting, an output folder already used."""


class EvaluationError(VideoError):
    """A model run that cannot start: conflicting settings in its output folder, bad sizes, a missing
    optional backend (Ray)."""


class ReportError(VideoError):
    """A folder that is not a complete evaluation output."""
