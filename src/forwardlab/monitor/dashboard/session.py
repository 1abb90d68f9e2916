"""Browser sessions of the dashboard: a signed, expiring cookie issued for a valid API key.

Browsers cannot send the service's `X-API-Key` header when a person follows a link, so the login form
exchanges a key for a cookie. The cookie carries no secret of its own: it is its expiry signed with
HMAC-SHA256 under the key that logged in. That makes sessions stateless (replicas and restarts accept
them without shared storage) and ties them to the keys: removing a key from the service ends every
session it opened. The key itself never leaves the server again, and the cookie is HTTP-only and
SameSite=Strict, so page scripts cannot read it and other sites cannot make the browser send it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable

from forwardlab.monitor.auth import matches_any

COOKIE_NAME = "forwardlab_dashboard"
SESSION_S = 12 * 3600
_CONTEXT = b"forwardlab-dashboard-session:"


def issue(key: bytes, *, now_s: float | None = None, lifetime_s: int = SESSION_S) -> str:
    """A session token for `key` (an accepted API key), valid for `lifetime_s` seconds."""
    expires = str(int((time.time() if now_s is None else now_s) + lifetime_s))
    return f"{expires}.{_sign(key, expires)}"


def verify(token: str | None, keys: Iterable[bytes], *, now_s: float | None = None) -> bool:
    """Whether `token` was issued under one of `keys` and has not expired (constant time per key)."""
    expires, _, signature = (token or "").partition(".")
    if not expires.isdigit() or int(expires) <= (time.time() if now_s is None else now_s):
        return False
    return matches_any(signature, [_sign(key, expires) for key in keys])


def _sign(key: bytes, expires: str) -> str:
    digest = hmac.new(key, _CONTEXT + expires.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
