"""What the sign-in writes to the audit trail: the factors a sign-in passed ("cert,totp",
"cert,recovery"), and one ``lockout`` record for the attempt that locks sign-in, with
the reference the person saw; never the password that was tried."""

from __future__ import annotations

import json

import pytest

from tests.gateway.audit.test_events import records
from tests.gateway.auth.conftest import Alice
from tests.gateway.auth.test_login import login_form, sign_in
from tests.gateway.conftest import Gateway


async def test_signing_in_records_what_was_passed(gateway: Gateway, alice: Alice) -> None:
    status, _, headers = await sign_in(gateway, code=alice.code(), next_="/r?k=v")
    assert status == 303
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    status, _, _ = await gateway.request("GET", "/r?k=v", host="secure.test",
                                         headers={"Cookie": cookie})
    assert status == 200
    login = (await records(gateway, "login"))[-1]
    assert (login["reason"], login["factors"], login["user"]) == ("login-succeeded",
                                                                 "cert,totp", "alice")
    assert (await records(gateway, "access"))[-1]["factors"] == "cert,totp"
    alice.clock.advance(30)
    status, _, _ = await sign_in(gateway, code=alice.recovery[0])
    assert status == 303
    assert (await records(gateway, "login"))[-1]["factors"] == "cert,recovery"


@pytest.mark.config(auth={"lockout": {"max_failures": 2}})
async def test_the_attempt_that_locks_sign_in_is_a_lockout_record(gateway: Gateway,
                                                                  alice: Alice) -> None:
    csrf = await login_form(gateway)  # the lockout notice replaces the form later
    for _ in range(2):
        status, body, _ = await sign_in(gateway, password="wrong horse battery",
                                        code=alice.code(), csrf=csrf, json=True)
    assert status == 429
    [lockout] = await records(gateway, "lockout")
    assert lockout["reference"] == body["reference"]  # as on the page the person saw
    assert (lockout["user"], lockout["decision"], lockout["reason"]) == ("alice", "deny",
                                                                        "locked")
    assert lockout["fingerprint"] and lockout["serial"] and lockout["source_ip"] == "127.0.0.1"
    detail = json.loads(lockout["detail"])
    assert detail["locked_until"] == body["locked_until"] and detail["max_failures"] == 2
    # A further attempt while locked is a login refusal, not another lockout.
    status, _, _ = await sign_in(gateway, code=alice.code(), csrf=csrf, json=True)
    assert status == 429
    assert len(await records(gateway, "lockout")) == 1
    assert "wrong horse battery" not in json.dumps(await records(gateway))
