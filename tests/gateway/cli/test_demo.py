"""The README's one-command demo, run as a real process and stopped."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from cryptography.x509.oid import AuthorityInformationAccessOID


def _revocation_urls(cert: x509.Certificate) -> tuple[str, str]:
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    crl = cdp[0].full_name[0].value  # type: ignore[index]
    ocsp = next(d.access_location.value for d in aia
                if d.access_method == AuthorityInformationAccessOID.OCSP)
    return str(crl), str(ocsp)


def test_demo_prints_working_addresses_and_its_revocation_urls_answer(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli.main", "demo", "--data-dir", str(data),
         "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Stop with Ctrl-C"):
                break
        text = "".join(lines)
        assert "certgate demo is ready." in text, text
        assert f"Import {data / 'demo.p12'}" in text
        password = (data / "demo-p12-password.txt").read_text().strip()
        assert f"password: {password}" in text
        assert "https://intranet.localhost:" in text
        assert "this is a DEMO" in text
        # Only addresses that work: no bare IP (it names no app), no init next steps.
        assert "https://127.0.0.1" not in text and "certgate ready" not in text, text
        assert "CERTGATE_CONFIG" not in text and "offline" not in text, text

        _, cert, _ = pkcs12.load_key_and_certificates((data / "demo.p12").read_bytes(),
                                                      password.encode())
        assert cert is not None
        crl_url, ocsp_url = _revocation_urls(cert)
        assert f"{crl_url} (CRL) and {ocsp_url} (OCSP)" in text
        with urllib.request.urlopen(crl_url, timeout=10) as resp:
            crl = x509.load_der_x509_crl(resp.read())
        assert crl.issuer == cert.issuer
        if shutil.which("openssl") is None:
            pytest.skip("openssl not installed")
        leaf = tmp_path / "demo-cert.pem"
        leaf.write_bytes(cert.public_bytes(Encoding.PEM))
        out = subprocess.run(
            ["openssl", "ocsp", "-url", ocsp_url, "-issuer", str(data / "ca" / "issuing.pem"),
             "-cert", str(leaf), "-CAfile", str(data / "ca" / "root.pem")],
            capture_output=True, text=True, timeout=30)
        assert "Response verify OK" in out.stderr + out.stdout, out
        assert f"{leaf}: good" in out.stdout, out
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
