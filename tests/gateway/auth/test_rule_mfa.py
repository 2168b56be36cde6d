"""A second factor asked by one allow rule, end to end over real TLS: the PBX's
phonebook takes the certificate alone, its admin pages a TOTP newer than 15 min."""

from __future__ import annotations

from tests.gateway.auth.conftest import Alice
from tests.gateway.auth.test_login import app_get, session_cookie, sign_in
from tests.gateway.conftest import Gateway, apps

PBX_LIKE = {"mfa": "none", "allow": [
    {"groups": ["staff"], "paths": ["/phonebook"]},
    {"groups": ["staff"], "paths": ["/admin"], "mfa": "required", "mfa_max_age": "15m"}]}


@apps(secure=PBX_LIKE)
async def test_certificate_only_path_and_step_up_path(gateway: Gateway, alice: Alice) -> None:
    status, body, _ = await app_get(gateway, None, path="/phonebook/42")
    assert status == 200 and body["headers"]["X-Certgate-Factors"] == "mtls"
    status, _, headers = await app_get(gateway, None, path="/admin/trunks", html=True)
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/admin/trunks")
    assert [r["path"] for r in gateway.seen.requests] == ["/phonebook/42"]

    status, _, headers = await sign_in(gateway, code=alice.code(), next_="/admin/trunks")
    assert (status, headers["Location"]) == (303, "/admin/trunks")
    cookie = session_cookie(headers)
    status, body, _ = await app_get(gateway, cookie, path="/admin/trunks")
    assert status == 200 and body["headers"]["X-Certgate-Factors"] == "mtls,pwd,otp"
    # The session rides along on the phonebook too, which still asks nothing more.
    assert (await app_get(gateway, cookie, path="/phonebook"))[0] == 200

    alice.clock.advance(16 * 60)  # the TOTP is too old for /admin, not for the phonebook
    status, body, _ = await app_get(gateway, cookie, path="/admin/trunks")
    assert (status, body["error"]) == (401, "mfa-too-old")
    status, _, headers = await app_get(gateway, cookie, path="/admin/trunks", html=True)
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/admin/trunks")
    assert (await app_get(gateway, cookie, path="/phonebook"))[0] == 200
