"""Issuing the gateway's TLS certificate: names, files, refusals."""

from __future__ import annotations

import ipaddress
import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from cryptography import x509

from gateway.manage.ca import CaLoader
from gateway.manage.errors import ManageError
from gateway.manage.servers import issue_server_certificate, key_path_for
from pki.keys import key_from_pem


def test_issues_for_the_given_names_with_a_0600_key(load_ca: CaLoader, tmp_path: Path,
                                                     clock: Callable[[], datetime]) -> None:
    out = tmp_path / "tls" / "new.pem"
    made = issue_server_certificate(load_ca, ("wiki.example.com", "192.0.2.7"), out=out,
                                    key_out=key_path_for(out), key_type="ec-p256", now=clock())
    assert made.key_path == tmp_path / "tls" / "new-key.pem"
    assert stat.S_IMODE(made.key_path.stat().st_mode) == 0o600
    chain = x509.load_pem_x509_certificates(out.read_bytes())
    assert len(chain) == 2 and chain[0].serial_number == made.serial
    san = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["wiki.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.7")]
    key = key_from_pem(made.key_path.read_bytes(), None)
    assert key.public_key() == chain[0].public_key()


@pytest.mark.parametrize(("names", "existing", "message"), [
    ((), False, "at least one name"),
    (("not a host",), False, "'not a host' is not a hostname"),
    (("wiki.example.com",), True, "already exists"),
])
def test_refusals(load_ca: CaLoader, tmp_path: Path, clock: Callable[[], datetime],
                  names: tuple[str, ...], existing: bool, message: str) -> None:
    out = tmp_path / "server.pem"
    if existing:
        out.write_text("keep me")
    with pytest.raises(ManageError, match=message):
        issue_server_certificate(load_ca, names, out=out, key_out=key_path_for(out),
                                 key_type="ec-p256", now=clock())
    assert not key_path_for(out).exists()
