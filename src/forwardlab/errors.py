"""The root of forwardlab's exceptions.

Everything a user can cause (a bad file, a bad argument) derives from `ForwardlabError`, so the CLI can
print one clear line for these and keep tracebacks for real bugs.
"""


class ForwardlabError(Exception):
    """An error caused by input or environment, with a message that names the input and what is wrong."""


class DownloadError(ForwardlabError):
    """A download failed after its retries (or its checks); `url` says which and `reason` why."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")
