"""forwardlab: a video classification workbench and continuous model monitoring."""

__version__ = "0.1.0"
