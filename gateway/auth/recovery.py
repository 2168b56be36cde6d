"""One-time recovery codes: ten per enrollment, shown once, stored only as argon2id hashes.

A code stands in for a TOTP code when the phone is lost. Codes are 10 characters
from an alphabet without look-alikes (no 0/O, 1/l/I), grouped ``xxxxx-xxxxx`` for
reading aloud; input is accepted with or without the dash, in any case.

Pure apart from the randomness of ``new_recovery_codes``; never logs a code.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

COUNT = 10
_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
_LENGTH = 10
_HASHER = PasswordHasher()


def new_recovery_codes(count: int = COUNT) -> list[str]:
    """Fresh codes, formatted for people (``k7m2p-q9xw4``); about 49 bits each."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalise(code: str) -> str:
    return code.replace("-", "").replace(" ", "").strip().lower()


def hash_recovery_code(code: str) -> str:
    return _HASHER.hash(normalise(code))


def matching_code(code: str, hashes: Sequence[str | None]) -> int | None:
    """The index of the unused hash ``code`` matches (used ones are None), or None."""
    wanted = normalise(code)
    if len(wanted) != _LENGTH or any(c not in _ALPHABET for c in wanted):
        return None
    for i, stored in enumerate(hashes):
        if stored is None:
            continue
        try:
            if _HASHER.verify(stored, wanted):
                return i
        except (VerificationError, InvalidHashError):
            continue
    return None
