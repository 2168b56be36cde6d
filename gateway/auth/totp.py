"""Time-based one-time codes (RFC 6238): SHA-1, 6 digits, 30-second steps, ±1 step of drift.

``accepted_step`` answers which time step a code belongs to, so that the caller can
refuse a step that was already used (the replay rule is a conditional write in the
store, shared by every node: a step is accepted only if it is newer than the last
accepted one). Built on pyotp; codes are compared in constant time.

Pure: no I/O, no clock reads (the caller passes ``now``); never logs a secret or a code.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime
from urllib.parse import quote

import pyotp

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
_CODE = re.compile(r"^[0-9]{6}$")
# A TOTP record's state: "pending" until the person confirms a first code on the
# enrollment page (the admin chose self-service), then "active".
PENDING = "pending"
ACTIVE = "active"


def secret_context(user: str) -> str:
    """What a sealed TOTP secret is bound to: it opens only in this user's row."""
    return f"totp:{user}"


def new_secret() -> str:
    """A fresh 160-bit secret in base32, as authenticator apps expect it."""
    return pyotp.random_base32(32)


def time_step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def normalise_code(text: str) -> str | None:
    """``"123 456"`` or ``"123-456"`` -> ``"123456"``; None when it is not six digits."""
    code = re.sub(r"[\s-]", "", text)
    return code if _CODE.match(code) else None


def code_at_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step)


def accepted_step(secret: str, code: str, *, now: datetime, after_step: int | None) -> int | None:
    """The time step ``code`` is valid for (now, one before or one after), or None.

    A step at or before ``after_step`` (the last one accepted for this user) is never
    accepted again: a code seen over someone's shoulder can't be replayed.
    """
    wanted = normalise_code(code)
    if wanted is None:
        return None
    current = time_step(now)
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    for step in (current, current - DRIFT_STEPS, current + DRIFT_STEPS):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), wanted):
            return step
    return None


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app scans (Key Uri Format)."""
    label = quote(f"{issuer}:{account}", safe=":@")
    return (f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer, safe='')}"
            f"&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}")
