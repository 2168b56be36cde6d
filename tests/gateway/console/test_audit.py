"""The console's audit page: the CLI's filters and refusals, each search recorded as
``audit.read`` by the console user, and the access-review report as a download."""

from __future__ import annotations

import base64
import hashlib
import re

from gateway.audit.query import AuditQuery
from tests.gateway.conftest import Gateway
from tests.gateway.console.conftest import Admin, console, console_config

pytestmark = console_config


async def _reads(gateway: Gateway) -> list[dict[str, object]]:
    store = await gateway.store()
    try:
        return await store.search_audit(AuditQuery(type="audit.read"))
    finally:
        await store.close()


async def test_search_shows_records_and_is_recorded(gateway: Gateway, admin: Admin) -> None:
    assert (await gateway.request("GET", "/", user="bob"))[0] == 403

    async def found() -> bool:
        status, body, _ = await console(gateway, "GET", "/audit?user=bob&decision=deny",
                                        cookie=admin.cookie)
        return status == 200 and b"no-matching-allow-rule" in body

    await gateway.wait_for(found, timeout=5)
    reads = await _reads(gateway)
    assert reads and {r["actor"] for r in reads} == {"console:alice"}
    assert '"filters":{"decision":"deny","user":"bob"}' in str(reads[0]["detail"])

    # The page alone searches nothing and records nothing.
    before = len(await _reads(gateway))
    status, body, _ = await console(gateway, "GET", "/audit", cookie=admin.cookie)
    assert status == 200 and b"Search" in body and len(await _reads(gateway)) == before


async def test_a_wrong_filter_is_refused_in_the_cli_s_words(gateway: Gateway,
                                                            admin: Admin) -> None:
    status, body, _ = await console(gateway, "GET", "/audit?decision=maybe",
                                    cookie=admin.cookie)
    assert status == 200 and b"--decision &#39;maybe&#39; is not one of" in body
    status, body, _ = await console(gateway, "GET", "/audit?since=yesterday",
                                    cookie=admin.cookie)
    assert b"is neither a duration" in body


async def test_the_report_downloads_as_a_self_contained_page(gateway: Gateway,
                                                             admin: Admin) -> None:
    status, body, headers = await console(gateway, "GET", "/audit/report?since=7d",
                                          cookie=admin.cookie)
    assert status == 200, body[:300]
    assert headers["Content-Disposition"].startswith('attachment; filename="access-review-')
    assert b"<html" in body and b"certgate-console" in body  # who can reach the console
    csp = headers["Content-Security-Policy"]
    assert "sandbox" in csp and "unsafe-inline" not in csp and 'style="' not in body.decode()
    style = re.search(rb"<style>(.*?)</style>", body, re.S)
    assert style is not None
    assert f"'sha256-{base64.b64encode(hashlib.sha256(style.group(1)).digest()).decode()}'" \
        in csp
    reads = await _reads(gateway)
    assert any('"command":"report"' in str(r["detail"]) and r["actor"] == "console:alice"
               for r in reads)
