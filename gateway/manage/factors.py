"""Second-factor use-cases: enroll a TOTP authenticator (or leave it to the person:
"pending"), reset it, new recovery codes, unlock a locked-out user, list and end login
sessions, a user's last TOTP, and the state of a user's authenticator (``user show``).

The TOTP secret is sealed with the data dir's secrets key (created here, 0600,
if ``init`` has not made one yet) before it reaches the store; recovery codes are
stored as argon2id hashes (hashed in a worker thread: it is slow on purpose).
Secrets and codes are returned once, for the admin to hand over, and never kept
in the clear.

Takes plain values and returns records. Never prompts, prints or exits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.auth.recovery import hash_recovery_code, new_recovery_codes
from gateway.auth.secretbox import SecretBox, create_key_file, load_secret_box
from gateway.auth.totp import PENDING, new_secret, provisioning_uri, secret_context
from gateway.config import Config
from gateway.manage.errors import ManageError
from gateway.store.records import SessionRecord
from gateway.store.store import Store


@dataclass(frozen=True)
class Enrollment:
    """What the person needs once: the secret (as URI and text) and recovery codes."""

    user: str
    secret: str
    uri: str
    recovery_codes: tuple[str, ...]


async def _hashed(codes: list[str]) -> list[str]:
    return await asyncio.to_thread(lambda: [hash_recovery_code(c) for c in codes])


async def enroll_totp(store: Store, config: Config, user: str) -> Enrollment:
    """A new authenticator for ``user`` (replacing any old one and ending their
    sessions) and ten new recovery codes."""
    found = await store.get_user(user)
    if not found.enabled:
        raise ManageError(f"user '{user}' is disabled; enable them first")
    box = await _secret_box(config)
    secret = new_secret()
    codes = new_recovery_codes()
    hashes = await _hashed(codes)
    await store.set_totp(user, box.seal(secret, context=secret_context(user)), state="active")
    await store.replace_recovery_codes(user, hashes)
    account = found.email or user
    return Enrollment(user, secret, provisioning_uri(secret, account=account,
                                                     issuer=config.auth.issuer), tuple(codes))


async def mark_totp_pending(store: Store, config: Config, user: str) -> None:
    """Leave the authenticator to ``user``: on their next sign-in (certificate and
    password) they set it up themselves on the enrollment page.

    A fresh secret, sealed, in state "pending"; the old authenticator and recovery
    codes stop working and their sessions end everywhere. The secret is not returned:
    only the enrollment page shows it, to the person who passed the password.
    """
    found = await store.get_user(user)
    if not found.enabled:
        raise ManageError(f"user '{user}' is disabled; enable them first")
    box = await _secret_box(config)
    await store.reset_totp(user)  # recovery codes gone, sessions end
    await store.set_totp(user, box.seal(new_secret(), context=secret_context(user)),
                         state=PENDING)


async def _secret_box(config: Config) -> SecretBox:
    path = config.auth.secrets_key
    await asyncio.to_thread(create_key_file, path)
    return await asyncio.to_thread(load_secret_box, path)


async def reset_totp(store: Store, user: str) -> None:
    """Forget ``user``'s authenticator and recovery codes; their sessions end everywhere."""
    await store.get_user(user)
    await store.reset_totp(user)


async def replace_recovery_codes(store: Store, user: str) -> tuple[str, ...]:
    """Ten new recovery codes for ``user``; the old ones stop working."""
    if await store.get_totp(user) is None:
        raise ManageError(f"user '{user}' has no authenticator; run `certgate user "
                          f"totp-enroll {user}` first")
    codes = new_recovery_codes()
    await store.replace_recovery_codes(user, await _hashed(codes))
    return tuple(codes)


async def _lock_subjects(store: Store, user: str) -> list[str]:
    """The failure counters a sign-in of ``user`` counts on (``auth.attempts``)."""
    return [f"user:{user}"] + [f"cert:{c.fingerprint}"
                               for c in await store.list_certificates(user=user)]


async def unlock_user(store: Store, user: str) -> int:
    """Lift a lockout of ``user`` and of each of their certificates; how many were set."""
    await store.get_user(user)
    return await store.clear_failures(await _lock_subjects(store, user))


@dataclass(frozen=True)
class AuthenticatorState:
    """What an admin on the phone needs to know about a person's second factor."""

    totp: str  # "active", "pending" (left to the person, not set up yet) or "none"
    recovery_codes_left: int
    locked_until: datetime | None  # sign-in locked (user or a certificate of theirs)


async def authenticator_state(store: Store, user: str, *, now: datetime
                              ) -> AuthenticatorState:
    totp = await store.get_totp(user)
    failures = await store.failures(await _lock_subjects(store, user))
    locks = [f.locked_until for f in failures.values()
             if f.locked_until is not None and f.locked_until > now]
    return AuthenticatorState("none" if totp is None else totp.state,
                              len(await store.unused_recovery_codes(user)),
                              max(locks) if locks else None)


async def list_sessions(store: Store, user: str | None = None) -> list[SessionRecord]:
    if user is not None:
        await store.get_user(user)
    return await store.list_sessions(user)


async def last_totp_at(store: Store, user: str, *, at: datetime, idle: timedelta,
                       absolute: timedelta) -> datetime | None:
    """When ``user`` last gave a TOTP (or recovery) code in a session still live ``at``:
    the newest one over their sessions (each bound to one certificate); None if none."""
    await store.get_user(user)
    times = [s.mfa_at for s in await store.list_sessions(user)
             if s.mfa_at is not None and s.created_at <= at and s.mfa_at <= at
             and at - s.last_seen <= idle and at - s.created_at <= absolute]
    return max(times, default=None)


async def end_sessions(store: Store, *, session_id: str | None = None,
                       user: str | None = None) -> list[str]:
    """End one session (by the id ``session list`` shows) or every session of a user."""
    if (session_id is None) == (user is None):
        raise ManageError("name either a session id or a user")
    if session_id is not None:
        if len(session_id) < 8 or any(c not in "0123456789abcdef" for c in session_id):
            raise ManageError(f"'{session_id}' is not a session id (as `session list` shows)")
        matches = [s.id_hash for s in await store.list_sessions()
                   if s.id_hash.startswith(session_id)]
        if len(matches) > 1:
            raise ManageError(f"'{session_id}' names {len(matches)} sessions; give more of it")
        ended = await store.end_sessions(id_prefix=matches[0]) if matches else []
        if not ended:
            raise ManageError(f"no session with id {session_id}")
        return ended
    await store.get_user(user or "")
    return await store.end_sessions(user=user)
