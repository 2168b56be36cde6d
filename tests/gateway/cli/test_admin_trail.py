"""Every admin change the CLI makes is an audit record on the ``<node>.cli`` chain:
time, node, type, a reference, the user changed, serial and fingerprint where a
certificate is concerned, and the actor (the OS user); never a password, a TOTP
secret, a recovery code or a .p12 password. The chain verifies with its signed
checkpoints, and a change whose record can't be written fails the command (exit 1)
after it printed what it did."""

from __future__ import annotations

import asyncio
import getpass
import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.config import load_config
from gateway.store.records import FailureRecord, SessionRecord
from gateway.store.store import Store
from tests.gateway.audit.helpers import stored
from tests.gateway.cli.conftest import Certgate

PASSWORD = "Correct-Horse-Battery-9"


def set_node(cg: Certgate, node: str) -> None:
    cfg = yaml.safe_load(cg.config.read_text())
    cfg["node"] = node
    cg.config.write_text(yaml.safe_dump(cfg))


def in_store(cg: Certgate, work: Any) -> Any:
    async def go() -> Any:
        store = await Store.open(load_config(cg.config).database_url)
        try:
            return await work(store)
        finally:
            await store.close()
    return asyncio.run(go())


def cli_rows(cg: Certgate) -> list[dict[str, Any]]:
    return in_store(cg, lambda store: stored(store, "gw1.cli"))  # type: ignore[no-any-return]


def csr_file(tmp_path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])).sign(key, hashes.SHA256())
    path = tmp_path / "alice.csr"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return path


def test_every_admin_change_is_recorded_with_its_actor(cg: Certgate, tmp_path: Path,
                                                        p12_password_file: Path) -> None:
    set_node(cg, "gw1")
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    cg.ok("user", "add", "alice", "--email", "alice@example.test", "--group", "staff",
          "--password-file", str(password_file))
    cg.ok("user", "add", "bob", "--totp", "pending")
    cg.ok("user", "groups", "set", "alice", "staff", "finance")
    cg.ok("user", "passwd", "alice", "--password-file", str(password_file))
    cg.ok("user", "disable", "bob")
    cg.ok("user", "enable", "bob")
    issued = cg.ok("cert", "issue", "alice", "--json", "--out", str(tmp_path / "a.p12")).json()
    generated = cg.ok("cert", "issue", "alice", "--json", "--out", str(tmp_path / "b.p12")
                      ).json()["password"]
    serial, fingerprint = issued["serial"], issued["fingerprint_sha256"]
    signed = cg.ok("cert", "sign-csr", str(csr_file(tmp_path)), "--user", "alice").out
    csr_serial = format(x509.load_pem_x509_certificate(signed.encode()).serial_number, "X")
    cg.ok("cert", "suspend", serial)
    cg.ok("cert", "resume", serial)
    renewed = cg.ok("cert", "renew", serial, "--json", "--p12-password-file",
                    str(p12_password_file), "--out", str(tmp_path / "c.p12")).json()
    cg.ok("cert", "revoke", renewed["serial"], "--reason", "keyCompromise")
    cg.ok("crl", "--out", str(tmp_path / "crl.der"))
    enrolled = cg.ok("user", "totp-enroll", "alice", "--json").json()
    codes = cg.ok("user", "recovery-codes", "alice", "--json").json()["recovery_codes"]
    now = datetime.now(UTC)

    async def lock_and_sign_in(store: Store) -> None:
        def locked(record: FailureRecord) -> FailureRecord:
            return FailureRecord(record.subject, 5, now, now + timedelta(minutes=15))
        await store.add_failure(["user:alice"], now, locked)
        await store.create_session(SessionRecord("ab" * 32, "alice", fingerprint, now, now,
                                                 now, ("mtls", "pwd", "otp")))
    in_store(cg, lock_and_sign_in)
    cg.ok("user", "unlock", "alice")
    assert "nothing to do" in cg.ok("user", "unlock", "alice").out  # no change: no record
    cg.ok("session", "kill", "--user", "alice")
    cg.ok("user", "totp-reset", "alice")
    cg.ok("cert", "issue-server", "wiki.example.test", "--out", str(tmp_path / "srv.pem"))
    cg.ok("audit", "verify")

    rows = cli_rows(cg)
    actor = getpass.getuser()
    by_type: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_type.setdefault(row["type"], []).append(row)
        assert row["node"] == "gw1.cli" and row["actor"] == actor
        assert row["at"].endswith("Z") and len(row["at"]) == len("2026-11-24T12:00:00.123Z")
        assert len(row["reference"]) == 12
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert list(by_type) == [
        "user.add", "totp.pending", "user.groups", "user.password", "user.disable",
        "user.enable", "cert.issue", "cert.suspend", "crl.sign", "cert.resume", "cert.renew",
        "cert.revoke", "totp.enroll", "recovery.replace", "unlock", "session.kill",
        "totp.reset", "audit.read"]
    assert [r["user"] for r in by_type["user.add"]] == ["alice", "bob"]
    assert json.loads(by_type["user.add"][0]["detail"]) == {
        "email": "alice@example.test", "groups": ["staff"], "password": True}
    assert json.loads(by_type["user.groups"][0]["detail"]) == {
        "before": ["staff"], "after": ["finance", "staff"]}
    first = by_type["cert.issue"][0]
    assert (first["user"], first["serial"], first["fingerprint"]) == ("alice", serial,
                                                                      fingerprint)
    assert by_type["cert.issue"][2]["serial"] == csr_serial
    assert json.loads(by_type["cert.issue"][2]["detail"])["key_source"] == "csr"
    assert by_type["cert.suspend"][0]["serial"] == serial
    server = by_type["cert.issue"][3]
    assert server["user"] is None and json.loads(server["detail"])["names"] == [
        "wiki.example.test"]
    renew = by_type["cert.renew"][0]
    assert renew["serial"] == renewed["serial"]
    assert json.loads(renew["detail"])["replaces"] == serial
    revoke = by_type["cert.revoke"][0]
    assert (revoke["serial"], revoke["reason"]) == (renewed["serial"], "keyCompromise")
    numbers = [json.loads(r["detail"])["crl_number"] for r in by_type["crl.sign"]]
    assert numbers == sorted(numbers) and len(numbers) == 5  # suspend/resume/renew/revoke/crl
    assert by_type["crl.sign"][0]["reference"] == by_type["cert.suspend"][0]["reference"]
    assert json.loads(by_type["session.kill"][0]["detail"]) == {"sessions": 1, "by": "user"}
    assert by_type["session.kill"][0]["user"] == "alice"
    read = json.loads(by_type["audit.read"][0]["detail"])
    assert (read["command"], read["ok"], read["since"]) == ("verify", True, None)

    # Never a secret: the password, the .p12 password, the TOTP secret, a recovery code.
    text = json.dumps(rows)
    for secret in (PASSWORD, generated, enrolled["secret"], *codes, "ab" * 32):
        assert secret not in text

    result = cg.ok("audit", "verify", "--json").json()
    [node] = [n for n in result["nodes"] if n["node"] == "gw1.cli"]
    assert result["ok"] and node["checkpoints_verified"] >= 1


def test_a_change_whose_record_fails_is_shown_then_fails(cg: Certgate) -> None:
    set_node(cg, "gw1")
    with sqlite3.connect(cg.data_dir / "certgate.db") as db:
        db.execute("CREATE TRIGGER no_audit BEFORE INSERT ON audit_records "
                   "BEGIN SELECT RAISE(ABORT, 'the audit table refuses writes'); END")
    result = cg("user", "add", "carol")
    assert result.code == 1
    assert "added user carol" in result.out  # what was done is still shown
    assert result.err.strip() == (
        "certgate: the change was made, but the audit record user.add could not be written: "
        "the audit table refuses writes")
    result = cg("audit", "verify")  # the chain is whole: its verdict is the exit code
    assert result.code == 0 and "the audit record audit.read could not be written" in result.err


def test_racing_cli_processes_keep_one_chain(cg: Certgate) -> None:
    """Three `certgate` processes at once: every change recorded, one unbroken chain."""
    set_node(cg, "gw1")
    cg.ok("user", "add", "alice")
    argv = [sys.executable, "-m", "gateway.cli.main", "--config", str(cg.config)]
    procs = [subprocess.Popen([*argv, "user", "groups", "set", "alice", f"g{n}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for n in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    rows = cli_rows(cg)
    assert [r["type"] for r in rows] == ["user.add"] + ["user.groups"] * 3
    assert [r["seq"] for r in rows] == [1, 2, 3, 4]
    assert cg.ok("audit", "verify").code == 0
