"""Upstream assertions: ES256 tokens that PyJWT verifies against our JWKS, their
claims and lifetime, the per-(certificate, app, factors) cache and ``forget``."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.auth.assertion import AssertionSigner, generate_assertion_key
from pki.keys import InsecureFileError, key_from_pem, key_to_pem

TTL = timedelta(seconds=60)
FP = "ab" * 32
ARGS: dict[str, Any] = {"user": "alice", "groups": ["staff", "pbx-admins"],
                        "serial_hex": "0A1B2C", "fingerprint": FP, "app": "wiki",
                        "audience": "https://wiki.example.test", "factors": ["cert"]}


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    loaded = key_from_pem(generate_assertion_key(), None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    return loaded


@pytest.fixture
def signer(key: ec.EllipticCurvePrivateKey) -> AssertionSigner:
    return AssertionSigner(key, issuer="certgate-test", ttl=TTL)


def verify(signer: AssertionSigner, token: str, **options: Any) -> dict[str, Any]:
    """What an upstream does: take the key from the published JWKS by ``kid``."""
    kid = jwt.get_unverified_header(token)["kid"]
    [jwk] = [k for k in signer.jwks()["keys"] if k["kid"] == kid]
    public = jwt.PyJWK(jwk).key
    claims: dict[str, Any] = jwt.decode(token, public, algorithms=["ES256"],
                                        audience=ARGS["audience"], issuer="certgate-test",
                                        **options)
    return claims


def test_token_verifies_against_the_jwks_with_the_expected_claims(
        signer: AssertionSigner) -> None:
    now = datetime.now(UTC)
    token = signer.sign(**ARGS, now=now)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] == signer.kid
    claims = verify(signer, token)
    assert claims["sub"] == "alice"
    assert claims["groups"] == ["pbx-admins", "staff"]  # sorted
    assert claims["app"] == "wiki"
    assert claims["cert_serial"] == "0A1B2C" and claims["cert_sha256"] == FP
    assert claims["amr"] == ["cert"]
    assert claims["iat"] == int(now.timestamp())
    assert claims["nbf"] == claims["iat"] - 5  # a little slack for upstream clocks
    assert claims["exp"] - claims["iat"] == 60
    assert len(claims["jti"]) >= 16
    assert set(claims) == {"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "groups", "app",
                           "cert_serial", "cert_sha256", "amr"}  # nothing secret rides along


def test_jwks_publishes_the_public_key_with_its_rfc7638_thumbprint(
        signer: AssertionSigner, key: ec.EllipticCurvePrivateKey) -> None:
    [jwk] = signer.jwks()["keys"]
    assert {k: jwk[k] for k in ("kty", "crv", "use", "alg")} == {
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256"}
    assert "d" not in jwk  # never the private part
    numbers = key.public_key().public_numbers()
    assert jwt.PyJWK(jwk).key.public_numbers() == numbers
    # RFC 7638 section 3.2: the required members, lexical order, no whitespace.
    canonical = (f'{{"crv":"P-256","kty":"EC","x":"{jwk["x"]}","y":"{jwk["y"]}"}}').encode()
    assert jwk["kid"] == base64.urlsafe_b64encode(
        hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def test_another_key_or_audience_is_refused(signer: AssertionSigner) -> None:
    other = AssertionSigner(ec.generate_private_key(ec.SECP256R1()), issuer="certgate-test",
                            ttl=TTL)
    forged = other.sign(**ARGS, now=datetime.now(UTC))
    public = jwt.PyJWK(signer.jwks()["keys"][0]).key
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, public, algorithms=["ES256"], audience=ARGS["audience"])
    token = signer.sign(**ARGS, now=datetime.now(UTC))
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, public, algorithms=["ES256"], audience="https://other.test")


def test_token_expires_after_its_ttl(signer: AssertionSigner) -> None:
    token = signer.sign(**ARGS, now=datetime.now(UTC) - timedelta(seconds=61))
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(signer, token)


def test_cache_reuses_a_token_while_more_than_half_its_life_remains(
        signer: AssertionSigner) -> None:
    now = datetime.now(UTC)
    first = signer.sign(**ARGS, now=now)
    assert signer.sign(**ARGS, now=now + timedelta(seconds=29)) == first
    later = signer.sign(**ARGS, now=now + timedelta(seconds=30))  # half gone: a fresh one
    assert later != first
    assert jwt.decode(later, options={"verify_signature": False})["iat"] == \
        int(now.timestamp()) + 30


@pytest.mark.parametrize("change", [
    {"factors": ["cert", "totp"]}, {"app": "pbx"}, {"groups": ["staff"]},
    {"fingerprint": "cd" * 32},
])
def test_cache_key_covers_certificate_app_factors_and_groups(
        signer: AssertionSigner, change: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    first = signer.sign(**ARGS, now=now)
    other = signer.sign(**{**ARGS, **change}, now=now)
    assert other != first
    claims = jwt.decode(other, options={"verify_signature": False})
    [(name, value)] = change.items()
    assert claims[{"factors": "amr", "fingerprint": "cert_sha256"}.get(name, name)] == value


def test_forget_drops_only_the_named_certificates(signer: AssertionSigner) -> None:
    now = datetime.now(UTC)
    alice = signer.sign(**ARGS, now=now)
    bob_args = {**ARGS, "user": "bob", "fingerprint": "cd" * 32}
    bob = signer.sign(**bob_args, now=now)
    signer.forget({FP})
    assert signer.sign(**ARGS, now=now) != alice
    assert signer.sign(**bob_args, now=now) == bob


def test_from_file_loads_a_0600_p256_key(tmp_path: Path) -> None:
    path = tmp_path / "assertion.pem"
    path.write_bytes(generate_assertion_key())
    path.chmod(0o600)
    signer = AssertionSigner.from_file(path, issuer="certgate-test", ttl=TTL)
    assert verify(signer, signer.sign(**ARGS, now=datetime.now(UTC)))["sub"] == "alice"
    path.chmod(0o644)
    with pytest.raises(InsecureFileError):
        AssertionSigner.from_file(path, issuer="certgate-test", ttl=TTL)


@pytest.mark.parametrize("other_key", [
    lambda: ec.generate_private_key(ec.SECP384R1()),
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
], ids=["p384", "rsa"])
def test_from_file_refuses_other_keys(tmp_path: Path, other_key: Any) -> None:
    path = tmp_path / "assertion.pem"
    path.write_bytes(key_to_pem(other_key(), None))
    path.chmod(0o600)
    with pytest.raises(ValueError, match="must hold an EC P-256 key for ES256"):
        AssertionSigner.from_file(path, issuer="certgate-test", ttl=TTL)


def test_generated_key_is_unencrypted_pkcs8_p256() -> None:
    pem = generate_assertion_key()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = key_from_pem(pem, None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey) and loaded.curve.name == "secp256r1"
