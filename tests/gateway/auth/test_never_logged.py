"""No secret reaches the disk: after a sign-in with password + TOTP over real TLS, a
request with the session cookie, a failed sign-in and a sign-in with a recovery code,
the bytes of every file in the data directory (the database and its WAL, the audit
JSON lines, the checkpoint file, any spool, the gateway's log) hold neither the
password, the TOTP codes, the recovery code nor the cookie value."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from tests.gateway.audit.test_events import records
from tests.gateway.auth.conftest import PASSWORD, Alice
from tests.gateway.auth.test_login import app_get, session_cookie, sign_in
from tests.gateway.conftest import Gateway


def occurrences(data_dir: Path, secret: str) -> list[str]:
    """The files under ``data_dir`` holding ``secret`` as a token of its own (a 6-digit
    code must not be "found" inside a hex hash or a serial number)."""
    pattern = re.compile(rb"(?<![0-9A-Za-z])" + re.escape(secret.encode()) + rb"(?![0-9A-Za-z])")
    return [str(path.relative_to(data_dir)) for path in sorted(data_dir.rglob("*"))
            if path.is_file() and pattern.search(path.read_bytes())]


async def test_no_secret_is_stored_anywhere_in_the_data_dir(gateway: Gateway,
                                                            alice: Alice) -> None:
    log_file = gateway.data_dir / "logs" / "gateway.log"
    log_file.parent.mkdir()
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        code = alice.code()
        status, _, headers = await sign_in(gateway, code=code, next_="/a?b=c")
        assert status == 303
        cookie = session_cookie(headers)
        assert (await app_get(gateway, cookie, path="/reports?id=7"))[0] == 200
        alice.clock.advance(30)
        wrong_code = alice.code()
        status, _, _ = await sign_in(gateway, password="Tr0ub4dor&3-wrong", code=wrong_code)
        assert status == 401  # the wrong password, with a right code
        alice.clock.advance(30)
        recovery = alice.recovery[3]
        status, _, headers = await sign_in(gateway, code=recovery)
        assert status == 303
        second_cookie = session_cookie(headers)
        assert (await app_get(gateway, second_cookie))[0] == 200
        rows = await records(gateway)  # flushed: the table, the JSON lines, checkpoints
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()

    # The run did reach every place searched below.
    assert [r["factors"] for r in rows if r["type"] == "login"] == [
        "cert,totp", "cert", "cert,recovery"]
    assert (gateway.data_dir / "audit" / "audit.jsonl").stat().st_size > 0
    assert log_file.stat().st_size > 0
    # The search does find what is stored: the user's name is in the table and the log.
    assert "audit/audit.jsonl" in occurrences(gateway.data_dir, "alice")
    assert any(name.startswith("certgate.db") for name in occurrences(gateway.data_dir,
                                                                        "cert,recovery"))
    secrets = {"password": PASSWORD, "wrong password": "Tr0ub4dor&3-wrong", "TOTP code": code,
               "second TOTP code": wrong_code, "recovery code": recovery, "cookie": cookie,
               "second cookie": second_cookie}
    found = {name: occurrences(gateway.data_dir, value) for name, value in secrets.items()}
    assert found == {name: [] for name in secrets}
