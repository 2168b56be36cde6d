"""The admin console in a real browser: headless Chromium presenting alice's client
certificate (as in ``tests/gateway/auth/test_browser.py``).

alice, an admin, signs in on the console host, issues a certificate for erin, a new
colleague; the one-time download link delivers a ``.p12`` that NSS's ``pk12util``
imports with the password shown on the hand-over page, and a second use of the link
is refused. erin's open keep-alive connection works until alice revokes the
certificate from the console, and is refused within a second after. carol, signed in
but not an admin, gets the refusal page. Screenshots: /tmp/console-overview.png,
/tmp/console-handover.png, /tmp/console-link.png (and the artifacts folder).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest

from gateway.manage import users
from tests.gateway.auth.conftest import PASSWORD, Alice, with_authenticator
from tests.gateway.auth.test_browser import _shot, _submit, chromium_page
from tests.gateway.conftest import Gateway, extract_pem
from tests.gateway.console.conftest import CONSOLE, console_config, make_admin, real_time

pytestmark = console_config


def _pk12util_imports(p12: Path, password: str, tmp_path: Path) -> str:
    db = tmp_path / "erin-nssdb"
    db.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True,
                   capture_output=True, timeout=60)
    proc = subprocess.run(["pk12util", "-i", str(p12), "-d", f"sql:{db}", "-W", password],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True,
                          text=True, timeout=60).stdout


async def test_issue_hand_over_download_once_and_revoke(gateway: Gateway, alice: Alice,
                                                        tmp_path: Path) -> None:
    store = await gateway.store()
    try:
        await users.add_user(store, "erin", groups=["staff"])
    finally:
        await store.close()
    await make_admin(gateway)
    base = f"https://{CONSOLE}:{gateway.port}"
    async with chromium_page(gateway, tmp_path, "alice") as page:
        # Sent to sign in, then the overview.
        await page.goto(f"{base}/")
        assert page.url.startswith(f"{base}/.certgate/login?next=/")
        await _submit(page, PASSWORD, alice.code())
        assert page.url == f"{base}/" and await page.inner_text("h1") == "Overview"
        real_time(alice)
        await _shot(page, "console-overview", Path("/tmp"))

        # Issue for erin: the hand-over page with the link, the password, the stop code.
        await page.goto(f"{base}/certificates")
        await page.fill("#issue-user", "erin")
        async with page.expect_navigation():
            await page.click("text=Issue certificate")
        assert await page.inner_text("h1") == "Hand over erin's certificate"
        link = (await page.inner_text("#link")).strip()
        password = (await page.inner_text("#password")).strip()
        assert link.startswith(f"{base}/.certgate/download?t=")
        assert len(password) >= 8 and "-" in await page.inner_text("#stop-code")
        await _shot(page, "console-handover", Path("/tmp"))

        # The link page (no client certificate is needed there) and its one download.
        await page.goto(link)
        assert "Download my certificate" in await page.inner_text("main")
        await _shot(page, "console-link", Path("/tmp"))
        async with page.expect_download() as waiting:
            await page.click("text=Download my certificate")
        download = await waiting.value
        p12 = tmp_path / "erin.p12"
        await download.save_as(str(p12))
        listing = await asyncio.to_thread(_pk12util_imports, p12, password, tmp_path)
        assert "erin" in listing
        response = await page.goto(link)
        assert response is not None and response.status == 410
        assert "already used" in await page.inner_text("h1")

        # erin on a keep-alive connection, then revoked from the console.
        erin = extract_pem(p12, password, tmp_path / "erin")
        connector = aiohttp.TCPConnector(ssl=gateway.client_ssl(files=erin), limit=1)
        opened: list[object] = []
        trace = aiohttp.TraceConfig()

        async def on_open(*args: object) -> None:
            opened.append(args)

        trace.on_connection_create_end.append(on_open)
        async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:
            async def status() -> int:
                async with session.get(gateway.url("/hello"), server_hostname="wiki.test",
                                       headers={"Host": "wiki.test",
                                                "Accept": "application/json"}) as resp:
                    await resp.read()
                    return resp.status

            assert await status() == 200
            await page.goto(f"{base}/certificates?user=erin")
            async with page.expect_navigation():
                await page.click("text=Revoke…")
            assert await page.inner_text("h1") == "Revoke a certificate?"
            await page.select_option("#reason", "keyCompromise")
            async with page.expect_navigation():
                await page.click("text=Revoke certificate")
            assert "is revoked" in await page.inner_text("main")

            async def refused() -> bool:
                return await status() == 403

            assert await gateway.wait_for(refused, timeout=1.0) < 1.0
            assert len(opened) == 1  # every request went over the one kept-alive connection


async def test_a_signed_in_non_admin_sees_the_refusal_page(gateway: Gateway, alice: Alice,
                                                           tmp_path: Path) -> None:
    carol = await with_authenticator(gateway, alice, "carol")
    async with chromium_page(gateway, tmp_path, "carol") as page:
        await page.goto(f"https://secure.test:{gateway.port}/")
        await _submit(page, PASSWORD, carol.code())  # a valid session on an app
        response = await page.goto(f"https://{CONSOLE}:{gateway.port}/")
        assert response is not None and response.status == 403
        assert await page.inner_text("h1") == "Access denied"
        assert "certgate console" not in await page.content()


if shutil.which("pk12util") is None:  # pragma: no cover - the image has NSS tools
    pytestmark = [console_config, pytest.mark.skip(reason="pk12util is not installed")]
