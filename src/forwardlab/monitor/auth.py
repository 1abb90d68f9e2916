"""API keys: where they come from and how an offered one is checked; shared by the service and the dashboard.

Configuration: function arguments first, then the `--api-keys-file` flag, then the environment
(`FORWARDLAB_API_KEYS`: comma-separated keys; `FORWARDLAB_API_KEYS_FILE`: one key per line, `#` comments).
Surrounding spaces and empty entries are dropped. An offered key is compared with every key in constant
time (`matches_any`), so the time an answer takes does not reveal how much of a key was right; the
dashboard's session cookies are checked the same way.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable
from pathlib import Path
from typing import AnyStr

from forwardlab.monitor.errors import ServiceConfigError

API_KEY_HEADER = "X-API-Key"
KEYS_ENV, KEYS_FILE_ENV = "FORWARDLAB_API_KEYS", "FORWARDLAB_API_KEYS_FILE"


def load_api_keys(keys: Iterable[str] | None = None, keys_file: str | Path | None = None) -> frozenset[str]:
    """The first source that gives keys: `keys`, `keys_file`, then $FORWARDLAB_API_KEYS(_FILE)."""
    if keys is not None:
        return clean_keys(keys)
    if keys_file is not None:
        return read_keys_file(Path(keys_file))
    if os.environ.get(KEYS_ENV):
        return clean_keys(os.environ[KEYS_ENV].split(","))
    if os.environ.get(KEYS_FILE_ENV):
        return read_keys_file(Path(os.environ[KEYS_FILE_ENV]))
    return frozenset()


def clean_keys(keys: Iterable[str]) -> frozenset[str]:
    """The keys with surrounding spaces removed, empty ones dropped."""
    return frozenset(k.strip() for k in keys if k.strip())


def read_keys_file(path: Path) -> frozenset[str]:
    """The keys of a file, one a line; lines starting with `#` are comments."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ServiceConfigError(f"{path}: cannot read the API keys file: {exc.strerror}") from exc
    return clean_keys(line for line in lines if not line.lstrip().startswith("#"))


def required_keys(keys: Iterable[str], *, serving: str = "") -> list[bytes]:
    """The cleaned keys as bytes (what `key_is_valid` compares with); a `ServiceConfigError` if there are none.

    `serving` names what needs them in the message (e.g. "the dashboard").
    """
    cleaned = [k.encode() for k in sorted(clean_keys(keys))]
    if not cleaned:
        for_what = f" for {serving}" if serving else ""
        raise ServiceConfigError(f"no API keys{for_what}: pass --api-keys-file, or set {KEYS_ENV} or {KEYS_FILE_ENV}")
    return cleaned


def key_is_valid(offered: str | None, keys: Iterable[bytes]) -> bool:
    """Whether `offered` is one of `keys` (as `required_keys` gives them), in constant time."""
    return matches_any((offered or "").encode(), keys)


def matches_any(value: AnyStr, candidates: Iterable[AnyStr]) -> bool:
    """Whether `value` equals one of `candidates`, comparing with every one in constant time, so timing reveals
    neither which one matched nor how much of a wrong value was right. Values and candidates are all bytes or
    all ASCII strings."""
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(value, candidate)
    return found
