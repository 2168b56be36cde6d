"""E-mailing the one-time download link from the hand-over page, to a real SMTP server
on loopback: the button only where it can work, the mail (the link and the steps,
never the password or the stop code), the ``download.mailed`` record without the
token, the refusals, and a relay that is down."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace

from gateway.audit.query import AuditQuery
from gateway.config.mail import MailConfig
from gateway.manage import users
from tests.gateway.conftest import Gateway
from tests.gateway.console.conftest import CONSOLE, Admin, console, console_config, csrf_of
from tests.gateway.mailserver import running_mailserver
from tests.gateway.ops.test_mail import free_port

pytestmark = console_config
ERIN = "o'neil&co@example.com"  # a real address whose characters must be escaped


def use_relay(gateway: Gateway, port: int) -> None:
    runtime = gateway.runtime
    mail = MailConfig(host="127.0.0.1", port=port, security="none", sender="it@example.com",
                      timeout="5s")  # type: ignore[arg-type] - pydantic parses the duration
    runtime.state = replace(runtime.state,
                            config=runtime.state.config.model_copy(update={"mail": mail}))


async def add_user(gateway: Gateway, name: str, email: str | None) -> None:
    store = await gateway.store()
    try:
        await users.add_user(store, name, email=email, groups=["sales"])
    finally:
        await store.close()


async def hand_over(gateway: Gateway, admin: Admin, user: str) -> bytes:
    status, body, _ = await console(gateway, "GET", "/certificates", cookie=admin.cookie)
    nonce = re.search(rb'name="nonce" value="([^"]+)"', body)
    assert status == 200 and nonce is not None
    status, body, _ = await console(gateway, "POST", "/certificates/issue", cookie=admin.cookie,
                                    data={"csrf": csrf_of(body), "user": user,
                                          "profile": "modern",
                                          "nonce": nonce.group(1).decode()})
    assert status == 200 and f"Hand over {user}".encode() in body, body[:600]
    return bytes(body)


def field(body: bytes, name: str) -> str:
    found = re.search(rf'id="{name}">([^<]+)<'.encode(), body)
    assert found is not None, name
    return html.unescape(found.group(1).decode())


def mail_form(body: bytes) -> dict[str, str]:
    form = re.search(rb'<form method="post" action="/certificates/mail-link".*?</form>', body,
                     re.S)
    assert form is not None
    token = re.search(rb'name="t" value="([^"]+)"', form.group(0))
    assert token is not None
    return {"csrf": csrf_of(form.group(0)), "t": token.group(1).decode()}


async def test_the_link_is_e_mailed_without_the_password_or_the_stop_code(
        gateway: Gateway, admin: Admin) -> None:
    await add_user(gateway, "erin", ERIN)
    # Without a mail: section there is no button.
    assert b"E-mail the link" not in await hand_over(gateway, admin, "erin")

    async with running_mailserver() as server:
        use_relay(gateway, server.port)
        page = await hand_over(gateway, admin, "erin")
        assert b"E-mail the link to o&#39;neil&amp;co@example.com" in page
        assert ERIN.encode() not in page  # the address only as escaped text
        link, password, stop_code = (field(page, n) for n in ("link", "password", "stop-code"))
        form = mail_form(page)
        assert link.endswith("?t=" + form["t"])
        status, body, _ = await console(gateway, "POST", "/certificates/mail-link",
                                        cookie=admin.cookie, data=form)
        assert status == 200 and b"E-mail sent" in body, body[:600]
        assert b"o&#39;neil&amp;co@example.com" in body
        arrived = await server.next()

    assert arrived.recipients == [ERIN] and arrived.message["From"] == "it@example.com"
    assert arrived.message["Subject"] == "Your certificate for the company's applications"
    assert link in arrived.body and "Hello erin" in arrived.body
    assert "tell you the password by phone" in arrived.body
    raw = arrived.message.as_string()
    assert password not in raw and stop_code not in raw
    assert gateway.runtime.metrics.registry.get_sample_value(
        "certgate_mail_total", {"kind": "download", "result": "sent"}) == 1

    store = await gateway.store()
    try:
        rows = await store.search_audit(AuditQuery(type="download.mailed"))
    finally:
        await store.close()
    assert [(r["actor"], r["user"], r["reason"]) for r in rows] == [
        ("console:alice", "erin", "sent")]
    detail = rows[0]["detail"]
    assert (json.loads(detail) if isinstance(detail, str) else detail)["to"] == ERIN
    assert form["t"] not in str(rows[0])  # the token is a secret: never recorded

    # The link was mailed, not spent: it still opens its page.
    status, body, _ = await gateway.request("GET", link.split(CONSOLE, 1)[1], user=None,
                                            host=CONSOLE, headers={"Accept": "text/html"})
    assert status == 200 and b"Download my certificate" in body


async def test_no_button_and_a_refusal_where_there_is_no_address(gateway: Gateway,
                                                                 admin: Admin) -> None:
    await add_user(gateway, "frank", "<b>frank</b>@example.com")  # stored, but not mailable
    async with running_mailserver() as server:
        use_relay(gateway, server.port)
        page = await hand_over(gateway, admin, "frank")
        assert b"E-mail the link" not in page and b"<b>frank" not in page
        token = field(page, "link").split("?t=", 1)[1]
        csrf = csrf_of((await console(gateway, "GET", "/certificates",
                                      cookie=admin.cookie))[1])
        status, body, _ = await console(gateway, "POST", "/certificates/mail-link",
                                        cookie=admin.cookie,
                                        data={"csrf": csrf, "t": token})
        assert status == 400 and b"frank has no e-mail address" in body
        for made_up in ("A" * 43, "<script>alert(1)</script>", ""):
            status, body, _ = await console(gateway, "POST", "/certificates/mail-link",
                                            cookie=admin.cookie,
                                            data={"csrf": csrf, "t": made_up})
            assert status == 400 and b"link is not known" in body, made_up
            assert b"<script>alert(1)" not in body
        assert server.inbox.empty()


async def test_a_relay_that_is_down_says_so_and_is_counted(gateway: Gateway,
                                                           admin: Admin) -> None:
    await add_user(gateway, "erin", ERIN)
    use_relay(gateway, free_port())
    page = await hand_over(gateway, admin, "erin")
    status, body, _ = await console(gateway, "POST", "/certificates/mail-link",
                                    cookie=admin.cookie, data=mail_form(page))
    assert status == 502 and b"could not be sent" in body and b"by hand" in body
    assert gateway.runtime.metrics.registry.get_sample_value(
        "certgate_mail_total", {"kind": "download", "result": "failed"}) == 1
    store = await gateway.store()
    try:
        rows = await store.search_audit(AuditQuery(type="download.mailed"))
    finally:
        await store.close()
    assert [r["reason"] for r in rows] == ["failed"]
