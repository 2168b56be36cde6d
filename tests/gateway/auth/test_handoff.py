"""One sign-in on every app host, end to end over real TLS: the hand-off from the host
the person signed in on to another app host of the gateway, step by step, and each
way it must refuse (reused, expired, another certificate, another host, a target
that is not an app of this gateway, hostile tokens), the absolute lifetime kept,
and sign-out or ``session kill`` ending the handed-off sessions too."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.auth.sessions import COOKIE
from gateway.cli.main import main
from gateway.identity.index import Identity
from pki.keys import fingerprint_sha256
from tests.gateway.auth.conftest import PASSWORD, Alice
from tests.gateway.auth.test_login import csrf_of, session_cookie
from tests.gateway.conftest import Gateway, apps, craft_cert, register, write_pair

WIKI, PBX = "wiki.test", "pbx.test"
# Two app hosts that both ask for the second factor; alice (staff) may use both.
two_mfa_apps = apps(wiki={"mfa": "required"},
                    pbx={"mfa": "required", "allow": [{"groups": ["staff"]}]})
TOKEN_IN = re.compile(r"\?token=([A-Za-z0-9_-]{43})&next=")


def as_browser(gw: Gateway, host: str, cookie: str | None = None) -> dict[str, str]:
    """What a browser sends: the Host with the port it used, asking for HTML."""
    headers = {"Host": f"{host}:{gw.port}", "Accept": "text/html"}
    if cookie:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    return headers


async def get(gw: Gateway, host: str, path: str, cookie: str | None = None, *,
              user: str = "alice", files: tuple[Path, Path] | None = None
              ) -> tuple[int, Any, Any]:
    return await gw.request("GET", path, host=host, user=user, files=files,
                            headers=as_browser(gw, host, cookie))


async def sign_in_on(gw: Gateway, alice: Alice, host: str = WIKI) -> str:
    status, page, _ = await get(gw, host, "/.certgate/login?next=/")
    assert status == 200
    status, _, headers = await gw.request(
        "POST", "/.certgate/login", host=host, headers=as_browser(gw, host),
        data={"csrf": csrf_of(page), "next": "/", "password": PASSWORD, "code": alice.code()})
    assert status == 303
    return session_cookie(headers)


async def token_for(gw: Gateway, wiki_cookie: str, *, to: str = PBX,
                    next_: str = "/reports%3Fy%3D1") -> str:
    """Steps 2: at the host signed in on, a token for ``to``; checks the Location."""
    status, _, headers = await get(gw, WIKI, f"/.certgate/handoff?to={to}&next={next_}",
                                   wiki_cookie)
    assert status == 303
    location = headers["Location"]
    assert location.startswith(f"https://{to}:{gw.port}/.certgate/handoff?token=")
    assert location.endswith(f"&next={next_}")
    match = TOKEN_IN.search(location)
    assert match, location
    return match.group(1)


async def take(gw: Gateway, token: str, *, host: str = PBX, cookie: str | None = None,
               files: tuple[Path, Path] | None = None,
               next_: str = "/reports%3Fy%3D1") -> tuple[int, Any, Any]:
    return await get(gw, host, f"/.certgate/handoff?token={token}&next={next_}", cookie,
                     files=files)


async def handed_off(gw: Gateway, wiki_cookie: str) -> str:
    status, _, headers = await take(gw, await token_for(gw, wiki_cookie))
    assert (status, headers["Location"]) == (303, "/reports?y=1")
    return session_cookie(headers)


async def audit_lines(gw: Gateway) -> tuple[str, list[dict[str, Any]]]:
    await gw.runtime.audit.flush()
    text = gw.runtime.audit.path.read_text()
    return text, [json.loads(line) for line in text.splitlines()]


async def last_reason_is(gw: Gateway, reason: str) -> None:
    """The newest audit record says ``reason`` (the writer's batch may still be on its
    way to the file when ``flush`` returns, so wait a moment for it)."""
    async def written() -> bool:
        records = (await audit_lines(gw))[1]
        return bool(records) and records[-1]["reason"] == reason

    await gw.wait_for(written)


def login_on(gw: Gateway, host: str, next_: str = "/reports%3Fy%3D1") -> str:
    return f"https://{host}:{gw.port}/.certgate/login?next={next_}"


@two_mfa_apps
async def test_one_sign_in_covers_a_second_app_host(gateway: Gateway, alice: Alice) -> None:
    wiki = await sign_in_on(gateway, alice)
    signed_in_at = int(alice.clock.now.timestamp())
    alice.clock.advance(40)
    logins_before = len(gateway.seen.requests)

    # 1. pbx has no session, but the certificate is signed in on wiki: fetch it there.
    status, _, headers = await get(gateway, PBX, "/reports?y=1")
    assert (status, headers["Location"]) == (
        303, f"https://{WIKI}:{gateway.port}/.certgate/handoff?to={PBX}&next=/reports%3Fy%3D1")
    # 2. wiki hands a one-time token to pbx.
    token = await token_for(gateway, wiki)
    # 3. pbx takes it in: a session of its own, and back to the page asked for.
    status, _, headers = await take(gateway, token)
    assert (status, headers["Location"]) == (303, "/reports?y=1")
    assert headers["Referrer-Policy"] == "no-referrer"
    pbx = session_cookie(headers)
    assert pbx != wiki

    status, body, _ = await get(gateway, PBX, "/reports?y=1", pbx)
    assert status == 200 and body["path"] == "/reports?y=1"
    seen = body["headers"]
    assert seen["X-Certgate-User"] == "alice" and seen["X-Certgate-Factors"] == "mtls,pwd,otp"
    assert seen["X-Certgate-Auth-Time"] == str(signed_in_at)  # the code typed on wiki
    assert len(gateway.seen.requests) == logins_before + 1  # no login form on the way
    assert (await get(gateway, WIKI, "/", wiki))[0] == 200  # wiki's session carries on

    store = await gateway.store()
    try:
        by_host = {s.host: s for s in await store.list_sessions("alice")}
    finally:
        await store.close()
    assert by_host[PBX].origin == by_host[WIKI].id_hash
    assert by_host[PBX].created_at == by_host[WIKI].created_at

    await last_reason_is(gateway, "allowed")  # the last request: wiki's page
    text, records = await audit_lines(gateway)
    assert token not in text  # the audit path keeps no query (apps may opt in: not these)
    reasons = [(r["host"].split(":")[0], r["path"].split("?")[0], r["reason"]) for r in records
               if r["reason"].startswith("handoff")]
    assert reasons == [(PBX, "/reports", "handoff-sent"),
                       (WIKI, "/.certgate/handoff", "handoff-issued"),
                       (PBX, "/.certgate/handoff", "handoff-accepted")]
    assert {r["path"].partition("?")[2] for r in records
            if r["reason"].startswith("handoff")} <= {"", "[redacted]"}


@two_mfa_apps
async def test_a_token_works_once(gateway: Gateway, alice: Alice) -> None:
    token = await token_for(gateway, await sign_in_on(gateway, alice))
    assert (await take(gateway, token))[0] == 303
    status, _, headers = await take(gateway, token)
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/reports%3Fy%3D1")
    assert "Set-Cookie" not in headers
    await last_reason_is(gateway, "handoff-used")


@two_mfa_apps
async def test_a_token_is_useless_with_another_certificate(gateway: Gateway, alice: Alice,
                                                           tmp_path: Path) -> None:
    now = datetime.now(UTC)
    cert, key = craft_cert(gateway.ca(), "alice", not_before=now - timedelta(hours=2),
                           not_after=now + timedelta(days=1))
    await register(gateway, cert, "alice")  # a second certificate of the same person
    second = write_pair(cert, key, tmp_path / "alice-2")

    async def known() -> bool:
        return isinstance(gateway.runtime.index.resolve(fingerprint_sha256(cert),
                                                        alice.clock.now), Identity)

    await gateway.wait_for(known)
    token = await token_for(gateway, await sign_in_on(gateway, alice))
    status, _, headers = await take(gateway, token, files=second)
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/reports%3Fy%3D1")
    assert "Set-Cookie" not in headers
    await last_reason_is(gateway, "handoff-other-certificate")
    # Nor does the second certificate find the first one's sign-in to fetch.
    status, _, headers = await get(gateway, PBX, "/", files=second)
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/")


@two_mfa_apps
async def test_a_token_for_pbx_is_refused_on_wiki(gateway: Gateway, alice: Alice) -> None:
    token = await token_for(gateway, await sign_in_on(gateway, alice))
    status, _, headers = await take(gateway, token, host=WIKI)
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/reports%3Fy%3D1")
    assert "Set-Cookie" not in headers
    await last_reason_is(gateway, "handoff-other-host")


@two_mfa_apps
async def test_an_expired_token_is_refused(gateway: Gateway, alice: Alice) -> None:
    token = await token_for(gateway, await sign_in_on(gateway, alice))
    alice.clock.advance(61)
    status, _, headers = await take(gateway, token)
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/reports%3Fy%3D1")
    await last_reason_is(gateway, "handoff-expired")


@two_mfa_apps
@pytest.mark.parametrize("to", ["evil.example", WIKI, "", "WIKI.TEST", f"{PBX}:443",
                                f"{PBX}/x", "https://evil.example/", "x" * 5000, None])
async def test_only_to_another_app_host_of_this_gateway(gateway: Gateway, alice: Alice,
                                                        to: str | None) -> None:
    wiki = await sign_in_on(gateway, alice)
    query = "" if to is None else f"?to={to}&next=/"
    status, body, headers = await get(gateway, WIKI, f"/.certgate/handoff{query}", wiki)
    assert status == 400 and "Location" not in headers
    assert b"only to other applications of this gateway" in body
    await last_reason_is(gateway, "handoff-bad-target")


@two_mfa_apps
@pytest.mark.parametrize("token", ["", "x", "A" * 43, "A" * 4000, "%C3%A9" * 43,
                                   "A" * 42 + "%00", "../../x"])
async def test_hostile_tokens_go_to_the_login_page(gateway: Gateway, alice: Alice,
                                                   token: str) -> None:
    status, _, headers = await take(gateway, token, next_="//evil.example/")
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/")
    assert "Set-Cookie" not in headers


@two_mfa_apps
async def test_next_stays_on_the_app_host(gateway: Gateway, alice: Alice) -> None:
    wiki = await sign_in_on(gateway, alice)
    for next_ in ("https://evil.example/", "//evil.example/", "/.certgate/handoff?to=x"):
        token = await token_for(gateway, wiki, next_="/")
        status, _, headers = await take(gateway, token, next_=next_)
        assert (status, headers["Location"]) == (303, "/")
    status, _, headers = await gateway.request("POST", "/.certgate/handoff?to=pbx.test",
                                               host=WIKI, headers=as_browser(gateway, WIKI))
    assert status == 405


@two_mfa_apps
async def test_not_signed_in_at_the_origin_means_signing_in_at_the_target(
        gateway: Gateway, alice: Alice) -> None:
    for cookie in (None, "forged"):
        status, _, headers = await get(
            gateway, WIKI, f"/.certgate/handoff?to={PBX}&next=/reports%3Fy%3D1", cookie)
        # pbx's sign-in page, never pbx's hand-off again: no loop.
        assert (status, headers["Location"]) == (303, login_on(gateway, PBX))
    await last_reason_is(gateway, "handoff-no-session")


@two_mfa_apps
async def test_without_a_sign_in_anywhere_it_is_the_login_page(gateway: Gateway,
                                                               alice: Alice) -> None:
    status, _, headers = await get(gateway, PBX, "/")
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/")
    # Behind port 443 the Host has no port, nor has the hand-off address.
    await sign_in_on(gateway, alice)
    status, _, headers = await gateway.request("GET", "/", host=PBX,
                                               headers={"Accept": "text/html"})
    assert headers["Location"] == f"https://{WIKI}/.certgate/handoff?to={PBX}&next=/"


@apps(wiki={"mfa": "required"},
      pbx={"mfa": "required", "mfa_max_age": "15m", "allow": [{"groups": ["staff"]}]})
async def test_step_up_and_api_clients_never_hand_off(gateway: Gateway, alice: Alice) -> None:
    wiki = await sign_in_on(gateway, alice)
    status, body, _ = await gateway.request("GET", "/", host=PBX)  # JSON: 401 as before
    assert (status, body["error"], body["login"]) == (401, "mfa-required",
                                                      "/.certgate/login?next=/")
    status, body, _ = await gateway.request("POST", "/", host=PBX,
                                            headers={"Accept": "text/html"})
    assert status == 401
    pbx = await handed_off(gateway, wiki)
    alice.clock.advance(16 * 60)
    assert (await get(gateway, WIKI, "/", wiki))[0] == 200  # wiki asks no fresh code
    status, _, headers = await get(gateway, PBX, "/reports", pbx)
    # A step-up is a fresh code typed on pbx, never a sign-in fetched from elsewhere.
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/reports")


@two_mfa_apps
async def test_a_hand_off_never_extends_the_absolute_lifetime(gateway: Gateway,
                                                              alice: Alice) -> None:
    wiki = await sign_in_on(gateway, alice)
    for _ in range(14):  # used every 50 minutes: 11 h 40 min of the 12 h
        alice.clock.advance(50 * 60)
        assert (await get(gateway, WIKI, "/", wiki))[0] == 200
    pbx = await handed_off(gateway, wiki)
    assert (await get(gateway, PBX, "/", pbx))[0] == 200
    alice.clock.advance(25 * 60)  # 12 h 05 min after signing in on wiki
    status, _, headers = await get(gateway, PBX, "/", pbx)
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/")


@two_mfa_apps
async def test_signing_out_on_pbx_signs_out_of_every_app(gateway: Gateway,
                                                         alice: Alice) -> None:
    wiki = await sign_in_on(gateway, alice)
    pbx = await handed_off(gateway, wiki)
    status, page, _ = await get(gateway, PBX, "/.certgate/whoami", pbx)
    assert status == 200
    status, page, headers = await gateway.request(
        "POST", "/.certgate/logout", host=PBX, headers=as_browser(gateway, PBX, pbx),
        data={"csrf": csrf_of(page)})
    assert status == 200 and b"signed out of every application" in page
    assert f"{COOKIE}=\"\"" in headers["Set-Cookie"]
    for host, cookie in ((PBX, pbx), (WIKI, wiki)):
        status, _, headers = await get(gateway, host, "/", cookie)
        assert (status, headers["Location"]) == (303, "/.certgate/login?next=/")
    store = await gateway.store()
    try:
        assert await store.list_sessions("alice") == []
    finally:
        await store.close()


@two_mfa_apps
async def test_killing_the_origin_ends_the_handed_off_session(
        gateway: Gateway, alice: Alice, capsys: pytest.CaptureFixture[str]) -> None:
    wiki = await sign_in_on(gateway, alice)
    pbx = await handed_off(gateway, wiki)
    cli = ("--config", str(gateway.config_path), "session")
    capsys.readouterr()
    assert await asyncio.to_thread(main, [*cli, "list", "--json"]) == 0
    listed = {s["host"]: s for s in json.loads(capsys.readouterr().out)}
    assert listed[PBX]["handed_off_from"] == listed[WIKI]["id"]
    assert listed[WIKI]["handed_off_from"] is None
    assert await asyncio.to_thread(main, [*cli, "kill", listed[WIKI]["id"]]) == 0
    assert "ended 2 session(s)" in capsys.readouterr().out

    async def ended() -> bool:
        return (await get(gateway, PBX, "/", pbx))[0] == 303

    await gateway.wait_for(ended, timeout=1.5)  # through the change feed, within a second
