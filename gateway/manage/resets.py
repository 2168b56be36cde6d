"""Password resets: the admin opens one, the person spends it to choose a password.

``start_password_reset`` makes a one-time set-up code (``gateway.auth.resetcodes``),
stores only its argon2id hash (hashed in a worker thread) with its expiry and the
admin who set it, replacing any earlier code of that user, and returns the code once
for the admin to pass on by phone. At the same moment the user's password is cleared
and their sessions end everywhere: an admin resets because the old password may be
known to someone, so it must not keep working until the person gets round to it.

The person spends the code on the sign-in page (``gateway.auth.reset``), with their
certificate, choosing a new password.

Takes plain values and returns records. Never prompts, prints, exits or keeps a code.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.auth.resetcodes import hash_reset_code, new_reset_code
from gateway.manage.errors import ManageError
from gateway.store.resets import OpenReset
from gateway.store.store import Store

RESET_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class PasswordReset:
    """What the admin passes on once: the code, and until when it works."""

    user: str
    code: str
    expires_at: datetime
    sessions_ended: int


async def start_password_reset(store: Store, user: str, now: datetime, *, created_by: str,
                               ttl: timedelta = RESET_TTL) -> PasswordReset:
    """Open a password reset for ``user`` (see the module docstring)."""
    found = await store.get_user(user)
    if not found.enabled:
        raise ManageError(f"user '{user}' is disabled; enable them first")
    code = new_reset_code()
    code_hash = await asyncio.to_thread(hash_reset_code, code)
    ended = await store.set_password_reset(found.name, code_hash, created_by=created_by[:128],
                                           expires_at=now + ttl, now=now)
    return PasswordReset(found.name, code, now + ttl, len(ended))


async def open_reset(store: Store, user: str, now: datetime) -> OpenReset | None:
    """``user``'s open reset (for ``user show`` and the users page), or None."""
    await store.get_user(user)
    return await store.open_password_reset(user, now)
