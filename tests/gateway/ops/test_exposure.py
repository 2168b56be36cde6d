"""Listener exposure is said at start: admin beyond loopback warns, PKI is stated."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import HostPort
from gateway.ops.exposure import exposure


def _config(admin: str, pki: str | None) -> Any:
    class Fake:  # only the two listener fields are read
        admin_listen = HostPort.model_validate(admin)
        pki_listen = HostPort.model_validate(pki) if pki else None
    return Fake()


@pytest.mark.parametrize(("admin", "pki", "warned", "noted"), [
    ("127.0.0.1:9443", "127.0.0.1:8080", False, False),
    ("[::1]:9443", None, False, False),
    ("localhost:9443", "0.0.0.0:8080", False, True),  # what `certgate init` writes
    ("0.0.0.0:9443", "0.0.0.0:8080", True, True),
    ("192.0.2.10:9443", None, True, False),
    ("gw.example.com:9443", None, True, False),
])
def test_exposure(admin: str, pki: str | None, warned: bool, noted: bool) -> None:
    warnings, notes = exposure(_config(admin, pki))
    assert bool(warnings) is warned and bool(notes) is noted
    if warned:
        assert "/metrics" in warnings[0] and admin in warnings[0]

