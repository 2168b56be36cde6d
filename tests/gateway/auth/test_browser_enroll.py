"""Self-service enrollment in a real browser: headless Chromium presenting dave's
certificate (chosen by a managed policy, as in ``test_browser``), dave's authenticator
left to him by the admin.

What a person sees: sent to the sign-in page, which asks only for the password and
says what comes next; the enrollment page with the QR code and the key spelled out
(the test reads the key from the page, as a person would type it into the phone); a
wrong code told in plain words; the recovery codes; the application. Then the page
refuses to open again, and after an admin reset five wrong passwords lock sign-in.
Screenshots of each go to ``tests/artifacts/enroll-*.png`` (and
``/tmp/certgate-screenshots/``) for a person to look at.

Skips when Chromium, the NSS tools, playwright or the policy directory are missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.auth.totp import code_at_step, time_step
from gateway.manage import factors
from tests.gateway.auth.conftest import PASSWORD
from tests.gateway.auth.test_browser import _shot, chromium_page
from tests.gateway.auth.test_enroll import USER, Pending, pending
from tests.gateway.conftest import Gateway

__all__ = ["pending"]  # the fixture: dave with his authenticator left to him


async def _click(page: Any, selector: str) -> Any:
    async with page.expect_navigation() as navigation:
        await page.click(selector)
    return await navigation.value


async def _password(page: Any, password: str) -> Any:
    await page.fill("#password", password)
    return await _click(page, "button[type=submit]")


async def _code(page: Any, code: str) -> Any:
    await page.fill("#code", code)
    return await _click(page, "button[type=submit]")


async def test_enrollment_in_a_real_browser(gateway: Gateway, pending: Pending,
                                            tmp_path: Path) -> None:
    base = f"https://secure.test:{gateway.port}"
    async with chromium_page(gateway, tmp_path, USER) as page:
        # Sent to the sign-in page: the password only, and what comes next.
        await page.goto(f"{base}/some/page?x=1")
        assert page.url == f"{base}/.certgate/login?next=/some/page%3Fx%3D1"
        assert await page.inner_text(".who strong") == USER
        assert await page.locator("#code").count() == 0
        assert "set up" in await page.inner_text("main")
        await _shot(page, "enroll-password")

        # The enrollment page: a QR code, the key spelled out, a field for the code.
        response = await _password(page, PASSWORD)
        assert response.status == 200 and page.url == f"{base}/.certgate/enroll"
        assert response.headers["cache-control"] == "no-store"
        assert await page.locator("svg.qr").count() == 1
        spelled = await page.inner_text(".secret")
        secret = spelled.replace(" ", "")
        assert len(spelled.split(" ")) == 8 and len(secret) == 32
        await _shot(page, "enroll-page")

        # A typo: told plainly, the page stays, the QR code too.
        step = time_step(pending.clock.now)
        wrong = f"{(int(code_at_step(secret, step)) + 1) % 10**6:06d}"
        response = await _code(page, wrong)
        assert response.status == 401
        assert "That code is not right" in await page.inner_text(".error")
        assert await page.inner_text(".secret") == spelled
        await _shot(page, "enroll-wrong-code")

        # The right code: the recovery codes, once, and the way on.
        response = await _code(page, code_at_step(secret, step))
        assert response.status == 200
        codes = await page.locator(".codes code").all_inner_texts()
        assert len(set(codes)) == 10
        await _shot(page, "enroll-recovery-codes")
        response = await _click(page, "a.button")
        assert page.url == f"{base}/some/page?x=1" and response.status == 200
        seen = await response.json()
        assert seen["headers"]["X-Certgate-User"] == USER
        assert seen["headers"]["X-Certgate-Factors"] == "mtls,pwd,otp"

        # Done once: the page does not open again.
        response = await page.goto(f"{base}/.certgate/enroll")
        assert response is not None and response.status == 403
        assert "already set up" in await page.inner_text("main")
        await _shot(page, "enroll-closed")

        # Lost phone: the admin resets; five wrong passwords lock sign-in.
        store = await gateway.store()
        try:
            await factors.mark_totp_pending(store, gateway.runtime.state.config, USER)
        finally:
            await store.close()
        pending.clock.advance(60)

        async def signed_out() -> bool:  # the session ends through the change feed
            await page.goto(f"{base}/some/page")
            return "/.certgate/login" in page.url

        await gateway.wait_for(signed_out, timeout=3)
        assert await page.locator("#code").count() == 0
        for _ in range(5):
            response = await _password(page, "not my password")
        assert response.status == 429
        text = await page.inner_text("main")
        assert "Sign-in is locked until" in text and "(in about 15 minutes)" in text
        assert await page.locator("#password").count() == 0
        await _shot(page, "enroll-lockout")
