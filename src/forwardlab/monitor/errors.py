"""Exceptions of the monitoring half; each names the input it is about and what is wrong with it."""

from forwardlab.errors import ForwardlabError


class MonitorError(ForwardlabError):
    """Base of every monitoring-side error."""


class DataError(MonitorError):
    """The housing data cannot be read, downloaded or verified."""


class ModelError(MonitorError):
    """A model artifact is missing, damaged, or does not match the code or libraries loading it."""


class StoreError(MonitorError):
    """The metrics store cannot be reached, or its schema is not the one this code writes."""


class ServiceConfigError(MonitorError):
    """The prediction service was started without something it needs (API keys, a model, a store)."""


class NotFoundError(MonitorError):
    """A prediction uuid or entity id that the store has never seen."""


class LabelConflictError(MonitorError):
    """Ground truth that differs from the label already recorded for the same prediction."""


class FrameError(MonitorError):
    """A reference or current frame that cannot be used as given: a column missing from one side,
    mismatched types, unknown test settings."""


class MonitoringRunError(MonitorError):
    """A monitoring run that cannot start: no reference rows, a bad window, an unreadable reference file."""


class AlertConfigError(MonitorError):
    """An alert rules file that cannot be read or does not validate; the message names the file and field."""


class SimulationError(MonitorError):
    """A production replay that cannot go on: the service refused a request, or OUT holds another replay."""


class SchemaError(MonitorError):
    """A feature schema that contradicts itself, a model of it that disagrees with it, or a frame lacking its
    features; the message names the feature."""


class StatTestError(MonitorError):
    """A drift test that cannot be used as declared: no Evidently name, or one the installed Evidently lacks."""
