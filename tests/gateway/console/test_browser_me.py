""""My access" in a real browser: headless Chromium presenting alice's certificate,
signing in with password and code, seeing her certificates (the renew notice too),
sessions and recent access, and suspending the certificate of a lost USB stick
through the confirmation page, without JavaScript doing any of it.

Screenshots for a person to look at: ``/tmp/me.png`` (desktop), ``/tmp/me-phone.png``
(390x844) and the confirmation, also under ``tests/artifacts/``. Skips as
``tests/gateway/auth/test_browser.py`` does when Chromium or its tools are missing.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

from gateway.store.records import CertStatus
from tests.gateway.auth.conftest import PASSWORD, Alice
from tests.gateway.auth.test_browser import ARTIFACTS, _shot, _submit, chromium_page
from tests.gateway.conftest import Gateway, cli


async def test_my_access_in_a_real_browser(gateway: Gateway, alice: Alice,
                                           tmp_path: Path) -> None:
    await asyncio.to_thread(cli, "--config", str(gateway.config_path), "cert", "issue",
                            "alice", "--out", str(tmp_path / "stick.p12"),
                            "--p12-password-file", str(tmp_path / "p12pw"))
    store = await gateway.store()
    try:
        in_use, stick = await store.list_certificates(user="alice")
    finally:
        await store.close()
    # Three weeks before the certificate in this browser expires.
    alice.clock.now = in_use.not_after - timedelta(days=21, hours=2)
    base, wiki = f"https://secure.test:{gateway.port}", f"https://wiki.test:{gateway.port}"
    async with chromium_page(gateway, tmp_path, "alice") as page:
        await page.goto(f"{base}/.certgate/me")
        assert page.url == f"{base}/.certgate/login?next=/.certgate/me"
        response = await _submit(page, PASSWORD, alice.code())
        assert page.url == f"{base}/.certgate/me" and response.status == 200
        for path in ("/handbook", "/admin", "/docs/holidays"):
            await page.goto(f"{wiki}{path}")

        async def trail() -> bool:
            s = await gateway.store()
            try:
                return len(await s.recent_audit("alice")) >= 6
            finally:
                await s.close()
        await gateway.wait_for(trail, timeout=5)

        await page.goto(f"{base}/.certgate/me")
        assert await page.inner_text("h1") == "My access"
        notice = await page.inner_text(".notice")
        assert notice.startswith("Renew before ") and "(in 21 days)" in notice
        assert await page.locator(".item.current").count() == 2
        log = await page.inner_text(".log")
        assert "Refused: wiki GET /admin (" in log
        # The admin's changes and the sign-in in sentences, not the trail's raw words.
        assert f"Your certificate …{f'{stick.serial:X}'[-8:]} was issued by the administrator" \
            in log
        assert "You signed in" in log and "Noted" not in log
        await _shot(page, "me")
        await page.set_viewport_size({"width": 390, "height": 844})
        await _shot(page, "me-phone")
        await page.set_viewport_size({"width": 900, "height": 760})

        # The lost stick: suspend it through the confirmation page.
        async with page.expect_navigation():
            await page.click("a.button.warn")
        heading = await page.inner_text("h1")
        assert heading.startswith("Suspend certificate …") and heading.endswith("?")
        assert f"{stick.serial:X}".endswith(heading[len("Suspend certificate …"):-1])
        assert "you stay signed in here" in await page.inner_text("main")
        await _shot(page, "me-suspend")
        async with page.expect_navigation():
            await page.click("button.warn")
        assert page.url == f"{base}/.certgate/me?done=suspended"
        assert "The certificate is suspended." in await page.inner_text(".done")
        await _shot(page, "me-suspended")
    store = await gateway.store()
    try:
        assert (await store.get_certificate(stick.serial)).status is CertStatus.SUSPENDED
        assert (await store.get_certificate(in_use.serial)).status is CertStatus.ACTIVE
    finally:
        await store.close()
    for name in ("me", "me-phone"):
        shutil.copyfile(ARTIFACTS / f"{name}.png", Path("/tmp") / f"{name}.png")
