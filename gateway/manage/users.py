"""User use-cases: add, disable/enable, change the e-mail, set a password, set groups.

Names, emails and groups are validated here; passwords are hashed with argon2id
(in a worker thread: hashing is deliberately slow and must not stall a server's
event loop). Changes reach running gateways through the store's event feed; a
disabled user's certificates stop working there at once, so disabling changes
no certificate.

Takes plain values and returns records. Never prompts, prints or exits; refuses
with ``ManageError`` (or the store's one-sentence errors: unknown user, name taken).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from gateway.auth.passwords import WeakPasswordError, check_policy, hash_password
from gateway.manage.errors import ManageError
from gateway.store.records import UserRecord
from gateway.store.store import Store
from policies.schema import PRINCIPAL_RE

NAME_RE = PRINCIPAL_RE  # the one rule for the names policies and the console name too
EMAIL_MAX = 254  # the users.email column's length (and RFC 5321's limit on a path)
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}$")


def check_name(kind: str, value: str) -> str:
    """``value`` as a user or group name (``kind``), or a refusal saying what is allowed."""
    if not NAME_RE.match(value):
        raise ManageError(f"'{value}' is not a valid {kind} name (lowercase letters, digits, "
                          "'.', '_' and '-', starting with a letter or digit, at most 64)")
    return value


def check_email(value: str | None) -> str | None:
    if value is not None and len(value) > EMAIL_MAX:
        raise ManageError(f"an email address has at most {EMAIL_MAX} characters")
    if value is not None and not EMAIL_RE.match(value):
        raise ManageError(f"'{value}' is not an email address")
    return value


def check_groups(groups: Sequence[str]) -> tuple[str, ...]:
    return tuple(check_name("group", group) for group in groups)


def check_new_user(name: str, email: str | None, groups: Sequence[str]) -> tuple[str, ...]:
    """Validate a new user's name, email and groups without touching the store."""
    check_name("user", name)
    check_email(email)
    return check_groups(groups)


def check_password(password: str) -> str:
    """Refuse a password the policy rejects, before any slow hashing."""
    try:
        check_policy(password)
    except WeakPasswordError as exc:
        raise ManageError(str(exc)) from None
    return password


async def hash_new_password(password: str) -> str:
    """The argon2id hash of an acceptable password; a weak one is refused."""
    try:
        return await asyncio.to_thread(hash_password, password)
    except WeakPasswordError as exc:
        raise ManageError(str(exc)) from None


async def add_user(store: Store, name: str, *, email: str | None = None,
                   groups: Sequence[str] = (), password: str | None = None) -> UserRecord:
    """Add a user, with a password for the second-factor login when one is given."""
    checked = check_new_user(name, email, groups)
    password_hash = await hash_new_password(password) if password is not None else None
    return await store.add_user(name, email=email, groups=checked,
                                password_hash=password_hash)


async def set_user_enabled(store: Store, name: str, enabled: bool) -> UserRecord:
    """Disable a user (every certificate of theirs stops working) or enable them again."""
    return await store.set_user_enabled(name, enabled)


async def set_email(store: Store, name: str, email: str | None) -> UserRecord:
    """Set, change or (``None``) remove a user's e-mail address. Certificates already
    issued keep the address they were signed with; the mail feature and new
    certificates use the new one."""
    return await store.set_user_email(name, check_email(email))


async def set_password(store: Store, name: str, password: str) -> None:
    """Replace a user's password for the second-factor login."""
    await store.set_password_hash(name, await hash_new_password(password))


async def set_groups(store: Store, name: str, groups: Sequence[str]) -> UserRecord:
    """Replace a user's groups (none: remove all)."""
    return await store.set_user_groups(name, check_groups(groups))
