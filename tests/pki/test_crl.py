"""CRLs as OpenSSL and an RFC 5280 linter see them."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pki.crl import REASONS, RevokedEntry, build_crl, reason_from_name
from pki.keys import PkiError
from tests.pki.conftest import NOW, CaFiles, openssl, write_pem


def _crl(ca_files: CaFiles, entries: list[RevokedEntry], number: int = 1
         ) -> x509.CertificateRevocationList:
    return build_crl(ca_files.ca, entries, number=number, this_update=NOW,
                     next_update=NOW + timedelta(hours=24))


def test_openssl_crl_check_rejects_revoked_and_accepts_others(ca_files: CaFiles,
                                                               tmp_path: Path) -> None:
    revoked, _ = ca_files.client("mallory")
    kept, _ = ca_files.client("alice")
    crl = _crl(ca_files, [RevokedEntry(revoked.serial_number, NOW,
                                       x509.ReasonFlags.key_compromise, NOW - timedelta(days=1))])
    crl_path = tmp_path / "crl.pem"
    crl_path.write_bytes(crl.public_bytes(Encoding.PEM))
    # -crl_check checks the leaf against the issuing CA's CRL.
    for cert, ok in ((revoked, False), (kept, True)):
        leaf = write_pem(tmp_path / "leaf.pem", cert)
        proc = openssl("verify", "-crl_check", "-CRLfile", str(crl_path), "-CAfile",
                       str(ca_files.root_pem), "-untrusted", str(ca_files.issuing_pem), str(leaf))
        assert (proc.returncode == 0) is ok, proc.stdout + proc.stderr
        if not ok:
            assert "certificate revoked" in proc.stdout + proc.stderr


def test_openssl_verifies_the_crl_signature(ca_files: CaFiles, tmp_path: Path) -> None:
    crl_path = tmp_path / "crl.pem"
    crl_path.write_bytes(_crl(ca_files, []).public_bytes(Encoding.PEM))
    proc = openssl("crl", "-in", str(crl_path), "-noout", "-verify", "-CAfile",
                   str(write_pem(tmp_path / "issuing.pem", ca_files.ca.issuing_cert)))
    assert "verify OK" in proc.stdout + proc.stderr


def test_entries_carry_reason_and_invalidity_date(ca_files: CaFiles) -> None:
    entries = [
        RevokedEntry(11, NOW, x509.ReasonFlags.key_compromise, NOW - timedelta(hours=3)),
        RevokedEntry(12, NOW, x509.ReasonFlags.unspecified),
        RevokedEntry(13, NOW, None),
        RevokedEntry(14, NOW, x509.ReasonFlags.certificate_hold),
        RevokedEntry(15, NOW, x509.ReasonFlags.superseded, NOW - timedelta(hours=3)),
    ]
    crl = _crl(ca_files, entries, number=42)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    assert crl.is_signature_valid(ca_files.ca.issuing_cert.public_key())  # type: ignore[arg-type]

    def exts(serial: int) -> dict[type, object]:
        entry = crl.get_revoked_certificate_by_serial_number(serial)
        assert entry is not None
        return {type(e.value): e.value for e in entry.extensions}

    assert exts(11)[x509.CRLReason].reason is x509.ReasonFlags.key_compromise  # type: ignore[attr-defined]
    assert x509.InvalidityDate in exts(11)
    assert exts(12) == {} and exts(13) == {}  # unspecified is omitted, not written
    assert exts(14)[x509.CRLReason].reason is x509.ReasonFlags.certificate_hold  # type: ignore[attr-defined]
    assert x509.InvalidityDate not in exts(15)  # only for key compromise
    assert crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    with pytest.raises(x509.ExtensionNotFound):
        crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)


def test_crl_passes_the_rfc5280_linter(ca_files: CaFiles, tmp_path: Path) -> None:
    crl = _crl(ca_files, [RevokedEntry(99, NOW, x509.ReasonFlags.affiliation_changed)])
    path = tmp_path / "crl.der"
    path.write_bytes(crl.public_bytes(Encoding.DER))
    proc = subprocess.run([str(Path(sys.executable).parent / "lint_crl"), "lint", "-t", "CRL",
                           "-p", "PKIX", "-s", "ERROR", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"number": 0}, "must be positive"),
    ({"next_update": NOW - timedelta(seconds=1)}, "must come after"),
])
def test_bad_crl_arguments(ca_files: CaFiles, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"number": 1, "this_update": NOW,
                               "next_update": NOW + timedelta(hours=1)}
    args.update(kwargs)
    with pytest.raises(PkiError, match=message):
        build_crl(ca_files.ca, [], **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(REASONS))
def test_reason_names_round_trip(name: str) -> None:
    assert reason_from_name(name) is REASONS[name]


def test_unknown_reason_lists_the_valid_ones() -> None:
    with pytest.raises(PkiError, match="use one of: unspecified, keyCompromise"):
        reason_from_name("lostIt")
