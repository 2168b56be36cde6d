"""Certificate use-cases against a real store and a real CA: records, .p12 files, CRLs,
and refusals that change nothing."""

from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from cryptography.x509.oid import NameOID

from gateway.config import Config
from gateway.manage import certs
from gateway.manage.bundles import BundleRequest
from gateway.manage.ca import CaLoader
from gateway.manage.errors import ManageError
from gateway.store.db import serial_hex
from gateway.store.errors import ConflictError, NotFoundError
from gateway.store.records import CertStatus
from gateway.store.store import Store
from pki.ca import CertificateAuthority
from pki.keys import PkiError, PrivateKey, fingerprint_sha256, generate_key

Clock = Callable[[], datetime]


async def issue(store: Store, config: Config, load_ca: CaLoader, clock: Clock, tmp_path: Path,
                user: str = "alice", days: int | None = None) -> certs.IssuedCertificate:
    out = tmp_path / f"{user}-{len(list(tmp_path.glob('*.p12')))}.p12"
    return await certs.issue_certificate(store, config, load_ca, user=user, days=days,
                                         bundle=BundleRequest(out=out), now=clock())


async def latest_crl(store: Store) -> x509.CertificateRevocationList:
    latest = await store.latest_crl()
    assert latest is not None
    return x509.load_der_x509_crl(latest[3])


def crl_reason(crl: x509.CertificateRevocationList, serial: int) -> x509.ReasonFlags | None:
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None, "the serial is not in the CRL"
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


async def test_issue_writes_a_0600_p12_and_records_it(alice: Store, config: Config,
                                                      load_ca: CaLoader, clock: Clock,
                                                      tmp_path: Path) -> None:
    issued = await issue(alice, config, load_ca, clock, tmp_path, days=10)
    assert stat.S_IMODE(issued.path.stat().st_mode) == 0o600
    assert issued.password is not None  # generated, shown once
    bundle = pkcs12.load_pkcs12(issued.path.read_bytes(), issued.password.encode())
    assert bundle.cert is not None and bundle.key is not None
    cert = bundle.cert.certificate
    assert fingerprint_sha256(cert) == issued.record.fingerprint
    assert bundle.key.public_key() == cert.public_key()
    assert (await alice.get_certificate(cert.serial_number)) == issued.record
    record = issued.record
    assert (record.user, record.status, record.key_source) == ("alice", CertStatus.ACTIVE, "p12")
    assert (record.not_after - record.issued_at).days == 10
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.RFC822Name) == ["alice@example.test"]
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        "https://gw.example.test/.certgate/users/alice"]
    assert await alice.latest_crl() is None  # issuing revokes nothing


async def test_issue_with_a_given_password_and_the_default_path(
        alice: Store, config: Config, load_ca: CaLoader, clock: Clock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    issued = await certs.issue_certificate(
        alice, config, load_ca, user="bob",
        bundle=BundleRequest(password="correct-horse", profile="compat"), now=clock())
    assert issued.password is None  # a given password is never handed back
    assert issued.path == Path(f"bob-{serial_hex(issued.record.serial)[:8]}.p12")
    loaded = pkcs12.load_pkcs12((tmp_path / issued.path).read_bytes(), b"correct-horse")
    assert loaded.cert is not None
    sans = loaded.cert.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.RFC822Name) == []  # bob has no email: URI only


@pytest.mark.parametrize(("case", "error", "message"), [
    ("unknown user", NotFoundError, "no user named 'nobody'"),
    ("disabled user", ManageError, "user 'alice' is disabled; enable them first"),
    ("existing file", ManageError, "already exists; refusing to overwrite it"),
    ("short password", ManageError, "the PKCS#12 password must have at least 8 characters"),
])
async def test_issue_refusals_change_nothing(alice: Store, config: Config, load_ca: CaLoader,
                                             clock: Clock, tmp_path: Path, case: str,
                                             error: type[Exception], message: str) -> None:
    existing = tmp_path / "existing.p12"
    existing.write_bytes(b"keep me")
    user, bundle = "alice", BundleRequest(out=tmp_path / "new.p12")
    if case == "unknown user":
        user = "nobody"
    elif case == "disabled user":
        await alice.set_user_enabled("alice", False)
    elif case == "existing file":
        bundle = BundleRequest(out=existing)
    else:
        bundle = BundleRequest(out=tmp_path / "new.p12", password="short")
    with pytest.raises(error, match=message):
        await certs.issue_certificate(alice, config, load_ca, user=user, bundle=bundle,
                                      now=clock())
    assert await alice.list_certificates() == []
    assert existing.read_bytes() == b"keep me"
    assert not (tmp_path / "new.p12").exists()


async def test_the_ca_is_loaded_only_after_the_user_checks(alice: Store, config: Config,
                                                           clock: Clock) -> None:
    def no_ca() -> CertificateAuthority:
        raise AssertionError("the CA (and its passphrase prompt) must come last")

    await alice.set_user_enabled("alice", False)
    with pytest.raises(ManageError, match="disabled"):
        await certs.issue_certificate(alice, config, no_ca, user="alice", now=clock())


async def test_renew_supersedes_and_publishes_a_crl(alice: Store, config: Config,
                                                    load_ca: CaLoader, clock: Clock,
                                                    tmp_path: Path) -> None:
    old = await issue(alice, config, load_ca, clock, tmp_path)
    renewed = await certs.renew_certificate(
        alice, config, load_ca, serial=old.record.serial,
        bundle=BundleRequest(out=tmp_path / "new.p12"), now=clock())
    assert renewed.path == tmp_path / "new.p12" and renewed.path.exists()
    assert renewed.replaces == old.record
    stored_old = await alice.get_certificate(old.record.serial)
    assert (stored_old.status, stored_old.reason, stored_old.replaced_by) == (
        CertStatus.REVOKED, "superseded", renewed.record.serial)
    assert (await alice.get_certificate(renewed.record.serial)).status is CertStatus.ACTIVE
    assert renewed.crl is not None and renewed.crl.published
    crl = await latest_crl(alice)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == \
        renewed.crl.number
    assert crl_reason(crl, old.record.serial) is x509.ReasonFlags.superseded
    with pytest.raises(ManageError, match="is revoked; issue a new one"):
        await certs.renew_certificate(alice, config, load_ca, serial=old.record.serial,
                                      bundle=BundleRequest(out=tmp_path / "x.p12"), now=clock())
    assert not (tmp_path / "x.p12").exists()


def _csr(key: PrivateKey) -> x509.CertificateSigningRequest:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ceo")])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())


async def test_sign_csr_certifies_the_device_key_for_the_user(alice: Store, config: Config,
                                                              load_ca: CaLoader,
                                                              clock: Clock) -> None:
    key = generate_key()
    csr = certs.csr_from_pem(_csr(key).public_bytes(Encoding.PEM), "req.pem")
    record = await certs.sign_csr(alice, config, load_ca, csr=csr, user="alice", now=clock())
    cert = x509.load_pem_x509_certificate(record.pem.encode())
    assert cert.public_key() == key.public_key()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert (record.key_source, record.user) == ("csr", "alice")
    assert await alice.get_certificate(record.serial) == record
    with pytest.raises(ManageError, match="junk.pem is not a PEM certificate signing request"):
        certs.csr_from_pem(b"junk", "junk.pem")
    weak = _csr(ec.generate_private_key(ec.SECP521R1()))
    with pytest.raises(PkiError, match="curve"):
        await certs.sign_csr(alice, config, load_ca, csr=weak, user="alice", now=clock())
    assert len(await alice.list_certificates()) == 1


async def test_revoke_publishes_reason_and_invalidity_date(alice: Store, config: Config,
                                                           load_ca: CaLoader, clock: Clock,
                                                           tmp_path: Path) -> None:
    issued = await issue(alice, config, load_ca, clock, tmp_path)
    compromised = clock()
    done = await certs.revoke_certificate(alice, config, load_ca, serial=issued.record.serial,
                                          reason="keyCompromise",
                                          invalidity_date=compromised, now=clock())
    assert [c.serial for c in done.changed] == [issued.record.serial]
    assert done.changed[0].status is CertStatus.REVOKED
    assert done.crl.published and done.crl.message == f"published CRL number {done.crl.number}"
    crl = await latest_crl(alice)
    assert crl_reason(crl, issued.record.serial) is x509.ReasonFlags.key_compromise
    entry = crl.get_revoked_certificate_by_serial_number(issued.record.serial)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.InvalidityDate).value \
        .invalidity_date_utc == compromised
    with pytest.raises(ConflictError, match="is already revoked"):
        await certs.revoke_certificate(alice, config, load_ca, serial=issued.record.serial,
                                       now=clock())


@pytest.mark.parametrize(("reason", "invalidity", "message"), [
    ("certificateHold", False, "'certificateHold' is not a revocation reason"),
    ("lostIt", False, "'lostIt' is not a revocation reason"),
    ("unspecified", True, "an invalidity date goes with the reason keyCompromise"),
])
async def test_revoke_refusals_change_nothing(alice: Store, config: Config, load_ca: CaLoader,
                                              clock: Clock, tmp_path: Path, reason: str,
                                              invalidity: bool, message: str) -> None:
    issued = await issue(alice, config, load_ca, clock, tmp_path)
    with pytest.raises(ManageError, match=message):
        await certs.revoke_certificate(alice, config, load_ca, serial=issued.record.serial,
                                       reason=reason,
                                       invalidity_date=clock() if invalidity else None,
                                       now=clock())
    assert (await alice.get_certificate(issued.record.serial)).status is CertStatus.ACTIVE
    assert await alice.latest_crl() is None


async def test_revoke_every_certificate_of_a_user(alice: Store, config: Config,
                                                  load_ca: CaLoader, clock: Clock,
                                                  tmp_path: Path) -> None:
    mine = {(await issue(alice, config, load_ca, clock, tmp_path)).record.serial
            for _ in range(2)}
    bobs = await issue(alice, config, load_ca, clock, tmp_path, user="bob")
    done = await certs.revoke_user_certificates(alice, config, load_ca, user="alice",
                                                reason="affiliationChanged", now=clock())
    assert {c.serial for c in done.changed} == mine
    crl = await latest_crl(alice)
    assert {crl_reason(crl, s) for s in mine} == {x509.ReasonFlags.affiliation_changed}
    assert crl.get_revoked_certificate_by_serial_number(bobs.record.serial) is None
    again = await certs.revoke_user_certificates(alice, config, load_ca, user="alice",
                                                 now=clock())
    assert again.changed == ()


async def test_suspend_holds_and_resume_lifts(alice: Store, config: Config, load_ca: CaLoader,
                                              clock: Clock, tmp_path: Path) -> None:
    serial = (await issue(alice, config, load_ca, clock, tmp_path)).record.serial
    held = await certs.suspend_certificate(alice, config, load_ca, serial=serial, now=clock())
    assert held.changed[0].status is CertStatus.SUSPENDED
    assert crl_reason(await latest_crl(alice), serial) is x509.ReasonFlags.certificate_hold
    with pytest.raises(ConflictError, match="is suspended, not active"):
        await certs.suspend_certificate(alice, config, load_ca, serial=serial, now=clock())
    lifted = await certs.resume_certificate(alice, config, load_ca, serial=serial, now=clock())
    assert lifted.changed[0].status is CertStatus.ACTIVE
    after = await latest_crl(alice)
    assert after.get_revoked_certificate_by_serial_number(serial) is None
    assert lifted.crl.number is not None and held.crl.number is not None
    assert lifted.crl.number > held.crl.number
    with pytest.raises(ConflictError, match="is active, not suspended"):
        await certs.resume_certificate(alice, config, load_ca, serial=serial, now=clock())


async def test_a_revocation_stands_when_the_ca_key_is_out_of_reach(
        alice: Store, config: Config, load_ca: CaLoader, clock: Clock, tmp_path: Path) -> None:
    serial = (await issue(alice, config, load_ca, clock, tmp_path)).record.serial

    def locked() -> CertificateAuthority:
        raise PkiError("the key passphrase is wrong")

    done = await certs.revoke_certificate(alice, config, locked, serial=serial, now=clock())
    assert (await alice.get_certificate(serial)).status is CertStatus.REVOKED
    assert not done.crl.published
    assert done.crl.message == ("the CRL was not re-signed (the key passphrase is wrong); "
                                "run `certgate crl` or let the server re-sign it")
    assert await alice.latest_crl() is None
