"""CSRF tokens for the gateway's own forms (login, logout, enrollment).

A token is an HMAC over what the form belongs to (``binding``: the certificate
fingerprint before login, the session after) and the minute it was made, so a
token taken from another browser, another certificate or another session does not
verify, and old tokens expire. Stateless: nothing is stored per form.

Pure: no I/O, no clock reads (the caller passes ``now``).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

MAX_AGE = timedelta(hours=1)


def _mac(key: bytes, binding: str, minted: int) -> str:
    msg = f"{binding}|{minted}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:40]


def csrf_token(key: bytes, binding: str, now: datetime) -> str:
    minted = int(now.timestamp()) // 60
    return f"{minted:x}.{_mac(key, binding, minted)}"


def csrf_valid(key: bytes, token: str | None, binding: str, now: datetime,
               max_age: timedelta = MAX_AGE) -> bool:
    """True when ``token`` was made with ``key`` for ``binding`` within ``max_age``."""
    if not token or "." not in token:
        return False
    minted_hex, _, mac = token.partition(".")
    try:
        minted = int(minted_hex, 16)
    except ValueError:
        return False
    age_minutes = int(now.timestamp()) // 60 - minted
    if age_minutes < 0 or age_minutes * 60 > max_age.total_seconds():
        return False
    return hmac.compare_digest(mac, _mac(key, binding, minted))
