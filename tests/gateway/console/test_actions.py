"""Each certificate action of the console, over real TLS: the confirm page, the POST,
the change in the store and its audit record with the console user as actor."""

from __future__ import annotations

import re

import pytest

from gateway.audit.query import AuditQuery
from gateway.store.records import CertStatus
from tests.gateway.conftest import Gateway
from tests.gateway.console.conftest import Admin, console, console_config, csrf_of

pytestmark = console_config


async def _bob(gateway: Gateway) -> tuple[int, CertStatus]:
    store = await gateway.store()
    try:
        cert = (await store.list_certificates(user="bob"))[-1]
    finally:
        await store.close()
    return cert.serial, cert.status


async def _act(gateway: Gateway, admin: Admin, action: str, serial: int,
               **extra: str) -> tuple[int, bytes]:
    status, body, _ = await console(gateway, "GET", f"/certificates/confirm?action={action}"
                                    f"&serial={serial:X}", cookie=admin.cookie)
    assert status == 200, body[:500]
    form = {"csrf": csrf_of(body), "serial": f"{serial:X}", **extra}
    nonce = re.search(rb'name="nonce" value="([^"]+)"', body)
    if nonce:
        form["nonce"] = nonce.group(1).decode()
    status, body, _ = await console(gateway, "POST", f"/certificates/{action}",
                                    cookie=admin.cookie, data=form)
    return status, body


@pytest.mark.parametrize(("action", "then"), [("suspend", CertStatus.SUSPENDED),
                                               ("revoke", CertStatus.REVOKED)])
async def test_status_changes_are_made_and_recorded(gateway: Gateway, admin: Admin,
                                                    action: str, then: CertStatus) -> None:
    serial, _ = await _bob(gateway)
    status, body = await _act(gateway, admin, action, serial, reason="keyCompromise")
    assert status == 200, body[:600]
    assert (await _bob(gateway)) == (serial, then)
    store = await gateway.store()
    try:
        rows = await store.search_audit(AuditQuery(type=f"cert.{action}", user="bob"))
    finally:
        await store.close()
    assert [r["actor"] for r in rows] == ["console:alice"]
    if action == "suspend":
        status, body = await _act(gateway, admin, "resume", serial)
        assert status == 200 and (await _bob(gateway)) == (serial, CertStatus.ACTIVE)
