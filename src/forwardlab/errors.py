"""The root of forwardlab's exceptions.

Everything a user can cause (a bad file, a bad argument) derives from `ForwardlabError`, so the CLI can
print one clear line for these and keep tracebacks for real bugs.
"""


class ForwardlabError(Exception):
    """An error caused by input or environment, with a message that names the input and what is wrong."""
