"""Password hashing with argon2id (argon2-cffi's recommended parameters).

Pure functions; must not log or store passwords.
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile


class WeakPasswordError(ValueError):
    """The password does not meet the minimum policy."""


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"the password must have at least {MIN_LENGTH} characters")
    if password.strip() != password:
        raise WeakPasswordError("the password must not start or end with spaces")


def hash_password(password: str) -> str:
    check_policy(password)
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def decoy_hash() -> str:
    """A real argon2id hash of a random secret: verifying against it when a user has
    no password costs the same time as a real check, so timing tells nothing."""
    return _HASHER.hash(secrets.token_urlsafe(24))


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)
