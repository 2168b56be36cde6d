"""The one Content-Security-Policy in a real browser: headless Chromium loads the
sign-in, a refusal, the lost-certificate page, the 500 page, "My access" and a console
page; Chromium reports no refused style (``page.on("console")``), and each page is
still styled (its computed background is the stylesheet's, not the browser default).
Screenshots: ``/tmp/shots-pages/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.http import proxy
from tests.gateway.auth.conftest import PASSWORD, Alice
from tests.gateway.auth.test_browser import _submit, chromium_page
from tests.gateway.conftest import HOST, Gateway
from tests.gateway.console.conftest import CONSOLE, console_config, make_admin, real_time

pytestmark = console_config
SHOTS = Path("/tmp/shots-pages")
PAGE_BACKGROUND = "rgb(244, 245, 247)"  # body{background:#f4f5f7} of both stylesheets


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected fault")


async def _styled(page: Any, name: str, violations: list[str]) -> None:
    assert violations == [], (name, violations)
    background = await page.evaluate(
        "getComputedStyle(document.body).backgroundColor")
    assert background == PAGE_BACKGROUND, name
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_pages_apply_their_styles_under_the_policy(
        gateway: Gateway, alice: Alice, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    await make_admin(gateway)
    violations: list[str] = []
    app = f"https://secure.test:{gateway.port}"
    async with chromium_page(gateway, tmp_path, "alice") as page:
        page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text or "Refused" in m.text else None)
        await page.goto(f"{app}/")
        assert "/.certgate/login" in page.url
        await _styled(page, "sign-in", violations)
        await _submit(page, PASSWORD, alice.code())

        await page.goto(f"https://{HOST}:{gateway.port}/admin")
        assert await page.inner_text("h1") == "Access denied"
        await _styled(page, "refusal", violations)

        await page.goto(f"https://{HOST}:{gateway.port}/.certgate/lost")
        await _styled(page, "lost", violations)

        await page.goto(f"{app}/.certgate/me")
        assert await page.inner_text("h1") == "My access"
        await _styled(page, "my-access", violations)

        monkeypatch.setattr(proxy, "help_page", _explode)
        response = await page.goto(f"{app}/.certgate/help")
        assert response is not None and response.status == 500
        assert "Something went wrong on the gateway." in await page.inner_text("main")
        await _styled(page, "internal-error", violations)

        base = f"https://{CONSOLE}:{gateway.port}"
        await page.goto(f"{base}/")
        if "/.certgate/login" in page.url:
            await _submit(page, PASSWORD, alice.code())
        real_time(alice)
        assert await page.inner_text("h1") == "Overview"
        await _styled(page, "console-overview", violations)
