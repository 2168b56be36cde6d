"""The certificate index: one reason per way to be refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.identity.index import CertificateIndex, Identity
from gateway.store.records import CertRecord, CertStatus, IdentitySnapshot, UserRecord
from pki.ocsp import OcspStatus
from policies.model import Reason

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
USER = UserRecord("alice", "a@x.test", True, ("staff",), None, NOW)
CERT = CertRecord(serial=7, user="alice", fingerprint="f" * 64, subject="CN=alice",
                  not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=1),
                  status=CertStatus.ACTIVE, issued_at=NOW, pem="")


def index(user: UserRecord | None = USER, cert: CertRecord = CERT) -> CertificateIndex:
    return CertificateIndex.from_snapshot(
        IdentitySnapshot(users=(user,) if user else (), certificates=(cert,), last_event_id=0))


@pytest.mark.parametrize(("built", "fingerprint", "now", "expected"), [
    (index(), None, NOW, Reason.NO_CERTIFICATE),
    (index(), "0" * 64, NOW, Reason.UNKNOWN_CERTIFICATE),
    (index(cert=replace(CERT, status=CertStatus.REVOKED)), "f" * 64, NOW,
     Reason.CERTIFICATE_REVOKED),
    (index(cert=replace(CERT, status=CertStatus.SUSPENDED)), "f" * 64, NOW,
     Reason.CERTIFICATE_SUSPENDED),
    (index(), "f" * 64, NOW + timedelta(days=1), Reason.CERTIFICATE_EXPIRED),
    (index(), "f" * 64, NOW - timedelta(days=2), Reason.CERTIFICATE_NOT_YET_VALID),
    (index(user=replace(USER, enabled=False)), "f" * 64, NOW, Reason.USER_DISABLED),
    (index(user=None), "f" * 64, NOW, Reason.USER_DISABLED),
])
def test_refusal_reasons(built: CertificateIndex, fingerprint: str | None, now: datetime,
                         expected: Reason) -> None:
    assert built.resolve(fingerprint, now) is expected


def test_valid_identity_and_live_updates() -> None:
    built = index()
    found = built.resolve("f" * 64, NOW)
    assert isinstance(found, Identity)
    assert (found.user, found.groups, found.serial_hex) == ("alice", frozenset({"staff"}), "07")
    assert built.apply_user("alice", replace(USER, groups=("ops",))) == {"f" * 64}
    assert built.resolve("f" * 64, NOW).groups == frozenset({"ops"})  # type: ignore[union-attr]
    assert built.apply_certificate(7, replace(CERT, status=CertStatus.REVOKED)) == {"f" * 64}
    assert built.resolve("f" * 64, NOW) is Reason.CERTIFICATE_REVOKED
    assert built.ocsp_status(7) == OcspStatus("revoked", None, None)
    assert built.ocsp_status(8) == OcspStatus("unknown")
    assert built.apply_certificate(7, None) == {"f" * 64}
    assert built.resolve("f" * 64, NOW) is Reason.UNKNOWN_CERTIFICATE and len(built) == 0
