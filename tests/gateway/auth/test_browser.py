"""The sign-in pages in a real browser: headless Chromium presenting alice's client
certificate from its NSS database, chosen by a managed policy without a prompt.

What a person sees: sent to the sign-in page with her name on it, a wrong password
told in plain words, the right password and code taking her to the page she asked
for, her whoami page with the Sign out button, and the lockout page after five
wrong tries; then, signed in on one app host, a second app host opening without a
prompt (the sign-in handed over), and signing out there ending both. Screenshots of
each go to ``tests/artifacts/`` (and a copy to
``/tmp/certgate-screenshots/``) for a person to look at.

Skips when Debian's ``/usr/bin/chromium``, NSS's ``pk12util``/``certutil``, the
``playwright`` module or a writable ``/etc/chromium/policies/managed`` is missing
(Chromium on Linux reads managed policies only from there).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.auth.conftest import PASSWORD, Alice
from tests.gateway.conftest import Gateway, apps

CHROMIUM = Path("/usr/bin/chromium")
POLICY_DIR = Path("/etc/chromium/policies/managed")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
SHARED = Path("/tmp/certgate-screenshots")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP *.test 127.0.0.1"]


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    for tool in ("pk12util", "certutil"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install libnss3-tools)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright module is not installed (pip install playwright)"
    try:
        POLICY_DIR.mkdir(parents=True, exist_ok=True)
    except OSError:
        return f"{POLICY_DIR} is not writable (Chromium reads managed policies only there)"
    if not os.access(POLICY_DIR, os.W_OK):
        return f"{POLICY_DIR} is not writable (Chromium reads managed policies only there)"
    return None


def _nss_home(home: Path, gateway: Gateway, user: str) -> None:
    """``$HOME/.pki/nssdb`` as Chromium on Linux reads it: the user's PKCS#12 (the one
    ``certgate cert issue`` wrote for the fixture) and the test CA trusted for TLS."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    cert_pem = gateway.certs[user][0]
    p12 = cert_pem.with_suffix(".p12")
    password = (cert_pem.parent / "p12pw").read_text().strip()

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, timeout=30)

    run("certutil", "-N", "-d", f"sql:{db}", "--empty-password")
    run("pk12util", "-d", f"sql:{db}", "-i", str(p12), "-W", password, "-K", "")
    run("certutil", "-A", "-d", f"sql:{db}", "-n", "certgate-test", "-t", "C,,",
        "-i", str(gateway.ca_pem))


@contextlib.contextmanager
def _auto_select_certificate(port: int) -> Iterator[None]:
    """A managed policy that makes Chromium present the certificate without asking."""
    path = POLICY_DIR / f"certgate-test-{os.getpid()}.json"
    rule = json.dumps({"pattern": f"https://[*.]test:{port}", "filter": {}})
    path.write_text(json.dumps({"AutoSelectCertificateForUrls": [rule]}))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def chromium_page(gateway: Gateway, tmp_path: Path, user: str) -> AsyncIterator[Any]:
    """A page of headless Chromium presenting ``user``'s certificate without a prompt;
    skips the test when the browser or its tools are missing."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    home = tmp_path / "browser-home"
    _nss_home(home, gateway, user)
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    # The policy's pattern, https://[*.]test:port, covers every app host of the tests.
    with _auto_select_certificate(gateway.port):
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS,
                                               env=env, headless=True)
            try:
                yield await browser.new_page(viewport={"width": 900, "height": 760})
            finally:
                await browser.close()


async def _shot(page: Any, name: str, copy_to: Path = SHARED) -> None:
    """The whole page as ``<tests/artifacts>/<name>.png``, and a copy in ``copy_to``."""
    ARTIFACTS.mkdir(exist_ok=True)
    copy_to.mkdir(exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(target), full_page=True)
    shutil.copyfile(target, copy_to / target.name)


async def _submit(page: Any, password: str, code: str) -> Any:
    await page.fill("#password", password)
    await page.fill("#code", code)
    async with page.expect_navigation() as navigation:
        await page.click("button[type=submit]")
    return await navigation.value


async def test_sign_in_in_a_real_browser(gateway: Gateway, alice: Alice,
                                         tmp_path: Path) -> None:
    base = f"https://secure.test:{gateway.port}"
    async with chromium_page(gateway, tmp_path, "alice") as page:
        # Sent to the sign-in page, which knows her from the certificate.
        await page.goto(f"{base}/some/page?x=1")
        assert page.url == f"{base}/.certgate/login?next=/some/page%3Fx%3D1"
        assert await page.inner_text(".who strong") == "alice"
        await _shot(page, "login")

        # A wrong password: told so, without saying which factor.
        response = await _submit(page, "not my password", alice.code())
        assert response.status == 401
        assert "The password or the code is not right" in await page.inner_text(
            ".error")
        await _shot(page, "login-error")

        # The right ones: on to the page she asked for, through the gateway.
        response = await _submit(page, PASSWORD, alice.code())
        assert page.url == f"{base}/some/page?x=1" and response.status == 200
        seen = await response.json()
        assert seen["path"] == "/some/page?x=1"
        assert seen["headers"]["X-Certgate-User"] == "alice"
        assert seen["headers"]["X-Certgate-Factors"] == "mtls,pwd,otp"

        await page.goto(f"{base}/.certgate/whoami")
        assert await page.inner_text("h1") == "You are alice"
        await _shot(page, "whoami")
        async with page.expect_navigation() as navigation:
            await page.click("button[type=submit]")
        assert (await navigation.value).status == 200
        assert await page.inner_text("h1") == "Signed out"
        await _shot(page, "signed-out")

        # Five wrong tries lock sign-in, and the page says until when and whom to call.
        await page.goto(f"{base}/some/page")
        for _ in range(5):
            response = await _submit(page, "still not it", alice.code())
        assert response.status == 429
        text = await page.inner_text("main")
        assert "Sign-in is locked until" in text and "(in about 15 minutes)" in text
        assert "your administrator" in text
        assert await page.locator("#password").count() == 0
        await _shot(page, "lockout")


@apps(wiki={"mfa": "required"})
async def test_one_sign_in_opens_a_second_app_host(gateway: Gateway, alice: Alice,
                                                   tmp_path: Path) -> None:
    first, second = f"https://secure.test:{gateway.port}", f"https://wiki.test:{gateway.port}"
    async with chromium_page(gateway, tmp_path, "alice") as page:
        await page.goto(f"{first}/start")
        assert page.url.startswith(f"{first}/.certgate/login?")
        response = await _submit(page, PASSWORD, alice.code())
        assert page.url == f"{first}/start" and response.status == 200

        # The second app host: no sign-in page, straight to the application.
        response = await page.goto(f"{second}/docs?p=2")
        assert response is not None and response.status == 200
        assert page.url == f"{second}/docs?p=2"
        seen = await response.json()
        assert seen["path"] == "/docs?p=2"
        assert seen["headers"]["X-Certgate-Factors"] == "mtls,pwd,otp"
        hops, request = [], response.request
        while request.redirected_from is not None:
            request = request.redirected_from
            hops.append(request.url.split("?", 1)[0])
        assert hops == [f"{second}/.certgate/handoff", f"{first}/.certgate/handoff",
                        f"{second}/docs"]
        assert await page.locator("#password").count() == 0
        await _shot(page, "handoff-second-app")

        # Signing out on the second host signs out of the first one too.
        await page.goto(f"{second}/.certgate/whoami")
        async with page.expect_navigation() as navigation:
            await page.click("button[type=submit]")
        assert (await navigation.value).status == 200
        assert "every application" in await page.inner_text("main")
        await _shot(page, "signed-out-everywhere")
        await page.goto(f"{first}/start")
        assert page.url.startswith(f"{first}/.certgate/login?")
