"""Password set-up codes ("reset codes"): 16 characters from the stop codes' alphabet
without look-alikes, printed ``xxxx-xxxx-xxxx-xxxx`` to read out on the phone; input
is accepted with or without dashes or spaces, in any case. About 79 bits each, and
guesses count towards the sign-in lockout.

Hashing and checking are the stop codes' (argon2id, ``gateway.auth.stopcodes``): they
cost tens of milliseconds, so callers run them in a worker thread. Pure apart from the
randomness of ``new_reset_code``; never logs a code.
"""

from __future__ import annotations

import secrets

from gateway.auth.stopcodes import ALPHABET, code_matches, hash_stop_code, normalise

LENGTH = 16

__all__ = ["LENGTH", "code_matches", "hash_reset_code", "new_reset_code", "well_formed"]


def new_reset_code() -> str:
    """A fresh code, formatted for people (``k7m2-pq9x-w4ab-3hjn``)."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, LENGTH, 4))


def well_formed(code: str) -> bool:
    wanted = normalise(code)
    return len(wanted) == LENGTH and all(c in ALPHABET for c in wanted)


def hash_reset_code(code: str) -> str:
    return hash_stop_code(code)
