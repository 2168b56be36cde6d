"""The console's apps page: who can reach each app (the pure engine's standing) and
"why can't X reach Y" in the words of `certgate policy explain`."""

from __future__ import annotations

import re

from tests.gateway.conftest import Gateway
from tests.gateway.console.conftest import Admin, console, console_config

pytestmark = console_config


def _section(body: bytes, app: str) -> str:
    text = body.decode()
    start = text.index(f"<h2>{app} ")
    end = text.find("<h2>", start + 4)
    return text[start:end if end != -1 else None]


async def test_who_can_reach_each_app(gateway: Gateway, admin: Admin) -> None:
    status, body, _ = await console(gateway, "GET", "/apps", cookie=admin.cookie)
    assert status == 200
    wiki = _section(body, "wiki")
    assert re.search(r"<td>alice</td><td>(full|limited)</td>", wiki)
    assert "<td>bob</td>" not in wiki  # bob is in sales only
    pbx = _section(body, "pbx")
    assert "<td>carol</td><td>limited</td>" in pbx and "192.0.2.0/24" in pbx
    console_app = _section(body, "certgate-console")
    assert "<td>alice</td>" in console_app and "<td>dave</td>" not in console_app


async def test_why_cannot_bob_reach_the_wiki(gateway: Gateway, admin: Admin) -> None:
    status, body, _ = await console(gateway, "GET", "/apps?user=bob&app=wiki&path=/docs",
                                    cookie=admin.cookie)
    assert status == 200
    explained = re.search(rb'<pre class="link" id="explain">(.*?)</pre>', body, re.S)
    assert explained is not None and b"no-matching-allow-rule" in explained.group(1)
    status, body, _ = await console(gateway, "GET", "/apps?user=nobody&app=wiki",
                                    cookie=admin.cookie)
    assert status == 400 and b"no user named" in body
