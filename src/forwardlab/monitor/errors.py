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
