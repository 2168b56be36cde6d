"""Signed identity assertions for upstreams: short-lived ES256 JWTs and their JWKS.

Upstreams that want more than the ``X-Certgate-User`` header verify
``X-Certgate-Assertion`` against ``/.certgate/jwks.json``. Signing costs tens of
microseconds, so a token is cached per (certificate, app, factors) and reused
while more than half of its lifetime remains.

Must not do I/O after ``from_file``; must not put secrets into tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from pki.keys import key_from_pem, key_to_pem, read_secret_file


def generate_assertion_key() -> bytes:
    """A fresh EC P-256 private key as unencrypted PKCS#8 PEM (stored 0600)."""
    return key_to_pem(ec.generate_private_key(ec.SECP256R1()), None)


def _b64(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()


class AssertionSigner:
    """Signs assertions with one EC P-256 key; publishes it as a JWK set."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, *, issuer: str, ttl: timedelta) -> None:
        self._key = key
        self._issuer = issuer
        self._ttl = ttl
        numbers = key.public_key().public_numbers()
        self._jwk = {"kty": "EC", "crv": "P-256", "x": _b64(numbers.x), "y": _b64(numbers.y)}
        # RFC 7638 thumbprint: SHA-256 over the required members in lexical order.
        canonical = json.dumps(self._jwk, separators=(",", ":"), sort_keys=True).encode()
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(
            b"=").decode()
        self._cache: dict[tuple[str, str, tuple[str, ...], str, datetime | None],
                          tuple[str, datetime]] = {}

    @classmethod
    def from_file(cls, path: Path, *, issuer: str, ttl: timedelta) -> AssertionSigner:
        key = key_from_pem(read_secret_file(path), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError(f"{path} must hold an EC P-256 key for ES256")
        return cls(key, issuer=issuer, ttl=ttl)

    def sign(self, *, user: str, groups: Sequence[str], serial_hex: str, fingerprint: str,
             app: str, audience: str, factors: Sequence[str], now: datetime,
             auth_time: datetime | None = None) -> str:
        """``auth_time``: when the last second factor was accepted (OIDC's claim name)."""
        cache_key = (fingerprint, app, tuple(factors), ",".join(sorted(groups)), auth_time)
        cached = self._cache.get(cache_key)
        if cached is not None and cached[1] - now > self._ttl / 2:
            return cached[0]
        expires = now + self._ttl
        claims: dict[str, Any] = {
            "iss": self._issuer, "sub": user, "aud": audience,
            "iat": int(now.timestamp()), "nbf": int(now.timestamp()) - 5,
            "exp": int(expires.timestamp()), "jti": secrets.token_urlsafe(12),
            "groups": sorted(groups), "app": app, "cert_serial": serial_hex,
            "cert_sha256": fingerprint, "amr": list(factors),
        }
        if auth_time is not None:
            claims["auth_time"] = int(auth_time.timestamp())
        token = jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})
        if len(self._cache) > 100_000:
            self._cache.clear()  # bounded: certificates x apps can grow without limit
        self._cache[cache_key] = (token, expires)
        return token

    def forget(self, fingerprints: set[str]) -> None:
        """Drop cached tokens of revoked or changed certificates."""
        for key in [k for k in self._cache if k[0] in fingerprints]:
            del self._cache[key]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self._jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}]}
