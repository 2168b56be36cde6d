"""``/.certgate/lost`` in a real browser on a phone-sized screen (390x844), without any
client certificate: the form, a wrong code told in plain words, the right code
stopping the certificate. Screenshots go to ``/tmp/lost-form.png``,
``/tmp/lost-wrong.png`` and ``/tmp/lost-done.png`` for a person to look at.

Skips when ``/usr/bin/chromium`` or the ``playwright`` module is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.store.db import serial_hex
from gateway.store.records import CertStatus
from tests.gateway.auth.test_lost import issue_for
from tests.gateway.conftest import HOST, Gateway

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp")

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed")


async def test_a_person_on_a_phone_stops_a_lost_certificate(gateway: Gateway,
                                                            tmp_path: Path) -> None:
    dave = await issue_for(gateway, "dave", tmp_path)
    url = f"https://{HOST}:{gateway.port}/.certgate/lost"
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP *.test 127.0.0.1"])
        try:
            context = await browser.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                has_touch=True, ignore_https_errors=True)
            page = await context.new_page()
            response = await page.goto(url)
            assert response is not None and response.status == 200
            await page.screenshot(path=str(SHOTS / "lost-form.png"), full_page=True)

            await page.fill("#user", "dave")
            await page.fill("#code", "2345-6789-abcd")
            await page.click("button[type=submit]")
            assert "do not match a certificate" in await page.inner_text("[role=alert]")
            assert await page.input_value("#user") == "dave"  # not typed again
            await page.screenshot(path=str(SHOTS / "lost-wrong.png"), full_page=True)

            await page.fill("#code", dave.code)
            await page.click("button[type=submit]")
            text = await page.inner_text("main")
            assert f"Your certificate ending …{serial_hex(dave.serial)[-4:]} is stopped" in text
            await page.screenshot(path=str(SHOTS / "lost-done.png"), full_page=True)
        finally:
            await browser.close()
    store = await gateway.store()
    try:
        assert (await store.get_certificate(dave.serial)).status is CertStatus.SUSPENDED
    finally:
        await store.close()
