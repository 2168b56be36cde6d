"""Stop codes: one per certificate, shown once at issue, stored only as an argon2id hash.

A stop code lets a person who lost the device holding a certificate suspend it from
any browser, without the certificate (``gateway.auth.lost``). Codes are 12
characters from an alphabet without look-alikes (no 0/O, 1/l/I), printed
``xxxx-xxxx-xxxx`` for writing down; input is accepted with or without dashes or
spaces, in any case. About 59 bits each; guessing is also rate-limited.

Pure apart from the randomness of ``new_stop_code``; never logs a code. Hashing
and checking cost tens of milliseconds: callers run them in a worker thread.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
LENGTH = 12
_HASHER = PasswordHasher()  # argon2id, the same parameters as passwords


def new_stop_code() -> str:
    """A fresh code, formatted for people (``k7m2-pq9x-w4ab``)."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, LENGTH, 4))


def normalise(code: str) -> str:
    return code.replace("-", "").replace(" ", "").strip().lower()


def well_formed(code: str) -> bool:
    wanted = normalise(code)
    return len(wanted) == LENGTH and all(c in ALPHABET for c in wanted)


def hash_stop_code(code: str) -> str:
    return _HASHER.hash(normalise(code))


def code_matches(stored_hash: str, code: str) -> bool:
    """True when ``code`` is the one ``stored_hash`` was made from."""
    try:
        return _HASHER.verify(stored_hash, normalise(code))
    except (VerificationError, InvalidHashError):
        return False
