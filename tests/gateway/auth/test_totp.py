"""TOTP: RFC 6238 vectors, drift, replay of a used step, code hygiene."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.auth.totp import (
    accepted_step,
    code_at_step,
    new_secret,
    normalise_code,
    provisioning_uri,
    time_step,
)

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


# RFC 6238 Appendix B, the SHA-1 rows (8 digits there; a 6-digit code is the last six).
@pytest.mark.parametrize(("unix", "code8"), [
    (59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
    (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130"),
])
def test_rfc6238_vectors(unix: int, code8: str) -> None:
    now = datetime.fromtimestamp(unix, UTC)
    assert accepted_step(RFC_SECRET, code8[-6:], now=now, after_step=None) == time_step(now)
    wrong = f"{(int(code8[-6:]) + 1) % 10**6:06d}"
    assert accepted_step(RFC_SECRET, wrong, now=now, after_step=None) is None


NOW = datetime(2026, 11, 25, 10, 0, 15, tzinfo=UTC)


@pytest.mark.parametrize(("offset", "accepted"), [(0, True), (-1, True), (1, True),
                                                  (-2, False), (2, False)])
def test_one_step_of_drift_either_way(offset: int, accepted: bool) -> None:
    secret = new_secret()
    step = time_step(NOW) + offset
    got = accepted_step(secret, code_at_step(secret, step), now=NOW, after_step=None)
    assert got == (step if accepted else None)


def test_a_used_step_is_never_accepted_again() -> None:
    secret = new_secret()
    step = time_step(NOW)
    code = code_at_step(secret, step)
    assert accepted_step(secret, code, now=NOW, after_step=None) == step
    assert accepted_step(secret, code, now=NOW, after_step=step) is None
    # An older step (still inside the drift window) is refused after a newer one.
    older = code_at_step(secret, step - 1)
    assert accepted_step(secret, older, now=NOW, after_step=step) is None
    later = NOW + timedelta(seconds=30)
    assert accepted_step(secret, code_at_step(secret, step + 1), now=later,
                         after_step=step) == step + 1


@pytest.mark.parametrize(("text", "code"), [
    ("123456", "123456"), (" 123 456 ", "123456"), ("123-456", "123456"),
    ("12345", None), ("1234567", None), ("12345a", None), ("", None), ("١٢٣٤٥٦", None),
])
def test_code_hygiene(text: str, code: str | None) -> None:
    assert normalise_code(text) == code


def test_secret_and_provisioning_uri() -> None:
    secret = new_secret()
    assert len(base64.b32decode(secret)) == 20  # 160 bits, RFC 4226's recommendation
    uri = provisioning_uri(secret, account="alice@example.com", issuer="ACME Gateway")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert parts.path == "/ACME%20Gateway:alice@example.com"
    q = parse_qs(parts.query)
    assert q == {"secret": [secret], "issuer": ["ACME Gateway"], "algorithm": ["SHA1"],
                 "digits": ["6"], "period": ["30"]}
