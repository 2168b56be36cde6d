"""The console's overview: a certificate expiring soon, a locked sign-in, refusals of
the last day (sign-in prompts left out) and the audit chains' checkpoints."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from gateway.manage import certs
from gateway.manage.ca import load_online_ca
from tests.gateway.conftest import Gateway
from tests.gateway.console.conftest import Admin, console, console_config

pytestmark = console_config


async def test_what_needs_attention_is_on_the_overview(gateway: Gateway,
                                                       admin: Admin) -> None:
    config = gateway.runtime.state.config
    now = admin.alice.clock.now
    store = await gateway.store()
    try:
        issued = await certs.issue_certificate(
            store, config, lambda: load_online_ca(config), user="dave", days=10, now=now,
            bundle=certs.BundleRequest(out=gateway.data_dir / "dave-soon.p12"))
        await store.add_failure(["user:bob"], now, lambda f: replace(
            f, count=5, locked_until=now + timedelta(minutes=15)))
    finally:
        await store.close()
    assert (await gateway.request("GET", "/", user="bob"))[0] == 403  # a refusal

    async def shown() -> bool:
        status, body, _ = await console(gateway, "GET", "/", cookie=admin.cookie)
        return status == 200 and b"<td>bob</td>" in body  # bob's refusal was written

    await gateway.wait_for(shown, timeout=5)
    _, body, _ = await console(gateway, "GET", "/", cookie=admin.cookie)
    text = body.decode()
    expiring = text[text.index("Certificates expiring"):text.index("Sign-ins locked now</h2>")]
    assert "<td>dave</td>" in expiring and f"{issued.record.serial:X}" in expiring
    locked = text[text.index("Sign-ins locked now</h2>"):text.index("Refused in the last")]
    assert "user:bob" in locked
    refused = text[text.index("Refused in the last"):text.index("Audit trail</h2>")]
    assert "<td>bob</td>" in refused and "mfa-required" not in refused
    assert "signed and matching" in text[text.index("Audit trail</h2>"):]
