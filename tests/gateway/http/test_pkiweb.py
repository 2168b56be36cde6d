"""The PKI listener as relying parties use it: ``openssl ocsp`` over HTTP."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys

import pytest
from cryptography import x509

from tests.gateway.conftest import Gateway

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


async def test_one_ocsp_request_about_several_certificates_answers_each(
        gateway: Gateway) -> None:
    ca = gateway.data_dir / "ca"
    leaves = [gateway.certs[user][0] for user in ("alice", "bob", "carol")]
    bob = x509.load_pem_x509_certificate(leaves[1].read_bytes()).serial_number
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli.main", "cert", "revoke", f"{bob:X}", "--reason",
        "keyCompromise", env={**os.environ, "CERTGATE_CONFIG": str(gateway.config_path)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert await proc.wait() == 0, await proc.stdout.read()  # type: ignore[union-attr]
    for _ in range(40):  # the change feed reaches the index within a second
        if gateway.runtime.index.ocsp_status(bob).state == "revoked":
            break
        await asyncio.sleep(0.05)
    args = ["openssl", "ocsp", "-url", f"http://127.0.0.1:{gateway.pki_port}/ocsp",
            "-issuer", str(ca / "issuing.pem"), "-CAfile", str(ca / "root.pem")]
    for leaf in leaves:
        args += ["-cert", str(leaf)]
    proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT)
    out = (await proc.communicate())[0].decode()
    assert "Response verify OK" in out and "nonce" not in out.lower(), out  # nonce echoed
    assert f"{leaves[0]}: good" in out, out
    assert f"{leaves[1]}: revoked" in out, out
    assert f"{leaves[2]}: good" in out, out
