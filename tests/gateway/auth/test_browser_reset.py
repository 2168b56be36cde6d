"""A password reset in a real browser: alice, an admin, sets one for carol in the
console and reads the code off the page; carol opens the app in headless Chromium with
her certificate, types the code, a new password and her authenticator's code, and
reaches the app. Screenshots: /tmp/shots-reset/ (and the artifacts folder)."""

from __future__ import annotations

from pathlib import Path

from tests.gateway.auth.conftest import PASSWORD, Alice, with_authenticator
from tests.gateway.auth.test_browser import _shot, _submit, chromium_page
from tests.gateway.conftest import Gateway
from tests.gateway.console.conftest import CONSOLE, console_config, make_admin, real_time

pytestmark = console_config
SHOTS = Path("/tmp/shots-reset")
NEW = "my own new passphrase"


async def test_admin_sets_a_reset_and_the_person_chooses_a_password(
        gateway: Gateway, alice: Alice, tmp_path: Path) -> None:
    carol = await with_authenticator(gateway, alice, "carol")
    await make_admin(gateway)
    base = f"https://{CONSOLE}:{gateway.port}"
    async with chromium_page(gateway, tmp_path, "alice") as page:
        await page.goto(f"{base}/")
        await _submit(page, PASSWORD, alice.code())
        real_time(alice)
        await page.goto(f"{base}/users?user=carol")
        async with page.expect_navigation():
            await page.click("text=Set a password reset…")
        assert await page.inner_text("h1") == "Set a password reset for carol?"
        async with page.expect_navigation():
            await page.click("button:has-text('Set a password reset')")
        assert await page.inner_text("h1") == "Password reset for carol"
        code = (await page.inner_text("#reset-code")).strip()
        assert "Tell carol this code by phone. It works once, until" in await page.inner_text(
            "main")
        await _shot(page, "console-password-reset", SHOTS)

    app = f"https://secure.test:{gateway.port}"
    async with chromium_page(gateway, tmp_path / "carol", "carol") as page:
        await page.goto(f"{app}/reports")
        assert page.url.startswith(f"{app}/.certgate/login?next=/reports")
        assert "Your administrator has set a password reset" in await page.inner_text("main")
        await _shot(page, "reset", SHOTS)
        # A mistyped repeat first: said in words, nothing counted.
        await page.fill("#reset_code", code)
        await page.fill("#password", NEW)
        await page.fill("#repeat", NEW + "!")
        await page.fill("#code", carol.code())
        async with page.expect_navigation() as navigation:
            await page.click("button[type=submit]")
        assert (await navigation.value).status == 400
        assert "are not the same" in await page.inner_text(".error")
        await _shot(page, "reset-error", SHOTS)
        await page.fill("#reset_code", code.upper())
        await page.fill("#password", NEW)
        await page.fill("#repeat", NEW)
        await page.fill("#code", carol.code())
        async with page.expect_navigation():
            await page.click("button[type=submit]")
        assert page.url == f"{app}/reports"
        assert "carol" in await page.content()
