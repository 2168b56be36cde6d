"""`certgate cert …` and `certgate crl` with real openssl: issue, verify, revoke, CRL."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from cryptography.x509.oid import NameOID

from pki.keys import generate_key
from tests.gateway.cli.conftest import Certgate

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)


def issue(cg: Certgate, user: str, tmp_path: Path, *extra: str) -> dict[str, str]:
    out = tmp_path / f"{user}-{len(list(tmp_path.glob('*.p12')))}.p12"
    return dict(cg.ok("cert", "issue", user, "--out", str(out), "--json", *extra).json())


def leaf_pem(info: dict[str, str], tmp_path: Path) -> Path:
    loaded = pkcs12.load_pkcs12(Path(info["file"]).read_bytes(), info["password"].encode())
    assert loaded.cert is not None
    path = tmp_path / f"{info['serial']}.pem"
    path.write_bytes(loaded.cert.certificate.public_bytes(Encoding.PEM))
    return path


def verify(cg: Certgate, leaf: Path, crl: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = ["verify", "-purpose", "sslclient", "-CAfile", str(cg.data_dir / "ca" / "root.pem"),
            "-untrusted", str(cg.data_dir / "ca" / "issuing.pem")]
    if crl is not None:
        args += ["-crl_check", "-CRLfile", str(crl)]
    return openssl(*args, str(leaf))


@pytest.fixture
def alice(cg: Certgate) -> Certgate:
    cg.ok("user", "add", "alice", "--email", "alice@example.test", "--group", "staff")
    return cg


def test_issue_verify_revoke_with_openssl(alice: Certgate, tmp_path: Path) -> None:
    info = issue(alice, "alice", tmp_path)
    p12 = Path(info["file"])
    assert stat.S_IMODE(p12.stat().st_mode) == 0o600
    assert re.fullmatch(r"([A-Za-z2-9]{5}-){3}[A-Za-z2-9]{5}", info["password"])
    leaf = leaf_pem(info, tmp_path)
    assert verify(alice, leaf).returncode == 0
    crl = tmp_path / "crl.pem"
    alice.ok("crl", "--pem", "--out", str(crl))
    assert verify(alice, leaf, crl).returncode == 0
    alice.ok("cert", "revoke", info["serial"], "--reason", "keyCompromise")
    alice.ok("crl", "--pem", "--force", "--out", str(crl))
    revoked = verify(alice, leaf, crl)
    assert revoked.returncode != 0 and "certificate revoked" in revoked.stdout + revoked.stderr
    assert alice.ok("cert", "show", info["serial"], "--json").json()["status"] == "revoked"


def test_pkcs12_profiles_open_with_openssl(alice: Certgate, tmp_path: Path,
                                           p12_password_file: Path) -> None:
    for profile in ("modern", "compat"):
        info = issue(alice, "alice", tmp_path, "--p12-profile", profile,
                     "--p12-password-file", str(p12_password_file))
        assert info["password"] is None  # a given password is never echoed
        legacy = ["-legacy"] if profile == "compat" and "-legacy" in openssl(
            "pkcs12", "-help").stderr else []
        proc = openssl("pkcs12", *legacy, "-info", "-in", info["file"], "-passin",
                       "pass:correct-horse-battery", "-nokeys", "-noout")
        assert proc.returncode == 0, proc.stderr
        assert ("AES-256-CBC" if profile == "modern" else "3-KeyTripleDES") in proc.stderr


def test_crl_verifies_numbers_increase_and_suspend_holds(alice: Certgate, tmp_path: Path) -> None:
    info = issue(alice, "alice", tmp_path)
    alice.ok("cert", "suspend", info["serial"])
    first, second = tmp_path / "1.der", tmp_path / "2.der"
    alice.ok("crl", "--out", str(first))
    crl = x509.load_der_x509_crl(first.read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(int(info["serial"], 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is \
        x509.ReasonFlags.certificate_hold
    proc = openssl("crl", "-inform", "DER", "-in", str(first), "-noout", "-verify", "-CAfile",
                   str(alice.data_dir / "ca" / "issuing.pem"))
    assert "verify OK" in proc.stdout + proc.stderr
    alice.ok("cert", "resume", info["serial"])
    alice.ok("crl", "--out", str(second))
    crl2 = x509.load_der_x509_crl(second.read_bytes())
    assert crl2.get_revoked_certificate_by_serial_number(int(info["serial"], 16)) is None

    def number(c: x509.CertificateRevocationList) -> int:
        return c.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    assert number(crl2) > number(crl)
    assert crl2.last_update_utc > crl.last_update_utc
    current = tmp_path / "current.der"
    alice.ok("crl", "--current", "--out", str(current))
    assert current.read_bytes() == second.read_bytes()


def test_renew_supersedes(alice: Certgate, tmp_path: Path) -> None:
    old = issue(alice, "alice", tmp_path)
    renewed = alice.ok("cert", "renew", old["serial"], "--out", str(tmp_path / "new.p12"),
                       "--json").json()
    shown = alice.ok("cert", "show", old["serial"], "--json").json()
    assert (shown["status"], shown["reason"], shown["replaced_by"]) == (
        "revoked", "superseded", renewed["serial"])
    assert alice.ok("cert", "show", renewed["serial"], "--json").json()["status"] == "active"


def test_list_filters(alice: Certgate, tmp_path: Path) -> None:
    alice.ok("user", "add", "bob")
    a = issue(alice, "alice", tmp_path, "--days", "10")
    b = issue(alice, "bob", tmp_path)
    alice.ok("cert", "revoke", b["serial"])

    def serials(*args: str) -> list[str]:
        return [c["serial"] for c in alice.ok("cert", "list", "--json", *args).json()]

    assert sorted(serials()) == sorted([a["serial"], b["serial"]])
    assert serials("--user", "bob") == [b["serial"]]
    assert serials("--status", "revoked") == [b["serial"]]
    assert serials("--status", "active") == [a["serial"]]
    assert serials("--expiring-within", "30") == [a["serial"]]
    assert serials("--status", "expired") == []


def test_revoke_all_of_a_user(alice: Certgate, tmp_path: Path) -> None:
    for _ in range(2):
        issue(alice, "alice", tmp_path)
    out = alice.ok("cert", "revoke", "--user", "alice", "--all", "--reason",
                   "affiliationChanged").out
    assert out.count("revoked ") == 2
    dropped = alice("cert", "revoke", "--user", "alice", "--all", "--reason", "keyCompromise",
                    "--invalidity-date", "2026-01-02")
    assert dropped.code == 2 and "--invalidity-date goes with one SERIAL" in dropped.err
    assert {c["status"] for c in alice.ok("cert", "list", "--json").json()} == {"revoked"}


def test_sign_csr(alice: Certgate, tmp_path: Path) -> None:
    key = generate_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ceo")])).sign(key, hashes.SHA256())
    (tmp_path / "req.pem").write_bytes(csr.public_bytes(Encoding.PEM))
    alice.ok("cert", "sign-csr", str(tmp_path / "req.pem"), "--user", "alice", "--out",
             str(tmp_path / "signed.pem"))
    signed = x509.load_pem_x509_certificate((tmp_path / "signed.pem").read_bytes())
    assert signed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert verify(alice, tmp_path / "signed.pem").returncode == 0
    (tmp_path / "junk.pem").write_text("junk")
    result = alice("cert", "sign-csr", str(tmp_path / "junk.pem"), "--user", "alice")
    assert (result.code, result.err.strip()) == (
        1, f"certgate: {tmp_path / 'junk.pem'} is not a PEM certificate signing request")


@pytest.mark.parametrize(("args", "code", "message"), [
    (["cert", "issue", "nobody"], 1, "certgate: no user named 'nobody'"),
    (["cert", "show", "ABCDEF"], 1, "certgate: no certificate with serial ABCDEF"),
    (["cert", "show", "xyz!"], 2, "is not a certificate serial"),
    (["cert", "revoke", "ABCDEF"], 1, "certgate: no certificate with serial ABCDEF"),
    (["cert", "revoke", "{serial}"], 1, "is already revoked"),
    (["cert", "revoke", "{serial}", "--reason", "certificateHold"], 2, "Invalid value"),
    (["cert", "revoke", "{serial}", "--reason", "lostIt"], 2, "Invalid value"),
    (["cert", "revoke"], 2, "give a SERIAL, or --user USER --all"),
    (["cert", "resume", "{serial}"], 1, "is revoked, not suspended"),
    (["cert", "suspend", "{serial}"], 1, "is revoked, not active"),
    (["cert", "renew", "{serial}"], 1, "is revoked; issue a new one"),
    (["cert", "issue", "alice", "--out", "{existing}"], 1, "already exists; refusing"),
    (["cert", "issue", "alice", "--days", "0"], 2, "Invalid value for '--days'"),
])
def test_refusals_change_nothing(alice: Certgate, tmp_path: Path, args: list[str], code: int,
                                 message: str) -> None:
    info = issue(alice, "alice", tmp_path)
    alice.ok("cert", "revoke", info["serial"])
    existing = tmp_path / "existing.p12"
    existing.write_bytes(b"keep me")
    before = alice.ok("cert", "list", "--json").out
    result = alice(*[a.format(serial=info["serial"], existing=existing) for a in args])
    assert result.code == code, result.err
    assert message in result.err
    assert alice.ok("cert", "list", "--json").out == before
    assert existing.read_bytes() == b"keep me"


def test_disabled_user_gets_no_certificate(alice: Certgate) -> None:
    alice.ok("user", "disable", "alice")
    result = alice("cert", "issue", "alice")
    assert (result.code, result.err.strip()) == (
        1, "certgate: user 'alice' is disabled; enable them first")
    assert alice.ok("cert", "list", "--json").json() == []


def test_crl_out_refuses_an_existing_file_unless_forced(alice: Certgate, tmp_path: Path) -> None:
    def number(pem: bytes) -> int:
        crl = x509.load_pem_x509_crl(pem)
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)

    before = number(alice.ok("crl", "--current", "--pem").out.encode())
    out = tmp_path / "published.crl"
    out.write_bytes(b"the CRL relying parties fetch now")
    refused = alice("crl", "--out", str(out))
    assert refused.code == 1
    assert f"{out} already exists; refusing to overwrite it (add --force" in refused.err
    assert "Traceback" not in refused.err
    assert out.read_bytes() == b"the CRL relying parties fetch now"
    alice.ok("crl", "--force", "--pem", "--out", str(out))
    assert number(out.read_bytes()) == before + 1  # the refused run signed nothing
    help_text = alice("crl", "--help", config=False).out
    assert "--force" in help_text and "EXAMPLES" in help_text


def test_issue_server_certificate_verifies_against_the_root(cg: Certgate, tmp_path: Path) -> None:
    out = tmp_path / "new-server.pem"
    result = cg.ok("cert", "issue-server", "wiki.example.test", "gw.example.test", "192.0.2.7",
                   "--out", str(out))
    key = tmp_path / "new-server-key.pem"
    assert str(out) in result.out and str(key) in result.out
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    proc = openssl("verify", "-purpose", "sslserver", "-CAfile",
                   str(cg.data_dir / "ca" / "root.pem"), "-untrusted", str(out), str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = openssl("x509", "-in", str(out), "-noout", "-ext", "subjectAltName").stdout
    assert "DNS:wiki.example.test, DNS:gw.example.test, IP Address:192.0.2.7" in text, text
    again = cg("cert", "issue-server", "wiki.example.test", "--out", str(out))
    assert again.code == 1 and "already exists" in again.err


def test_issue_and_renew_show_a_stop_code_once(alice: Certgate, tmp_path: Path,
                                               p12_password_file: Path) -> None:
    code = r"[2-9a-z]{4}-[2-9a-z]{4}-[2-9a-z]{4}"
    info = issue(alice, "alice", tmp_path, "--p12-password-file", str(p12_password_file))
    assert info["password"] is None and re.fullmatch(code, info["stop_code"])
    text = alice.ok("cert", "renew", info["serial"], "--out", str(tmp_path / "r.p12")).out
    found = re.search(rf"stop code: ({code})  \(user name: alice\)\n", text)
    assert found is not None and found.group(1) != info["stop_code"], text
    assert "/.certgate/lost" in text
    shown = alice.ok("cert", "show", info["serial"], "--json").out
    assert info["stop_code"] not in shown  # shown at issue only, never again
