"""``certgate doctor`` on a real install (issue 12 point 3): each finding provoked —
a world-readable key, a key owned by another user, the server certificate expiring
under an injected clock, an unreachable database, an app host missing from the server
certificate, a dead upstream, a TLS upstream it can't verify, a non-empty spool, CRL
URLs changed after issuing — and reported with its fix and the exit code; ``--json``
parses."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import yaml

from gateway.manage.servers import read_leaf
from tests.gateway.cli.conftest import Certgate, Result


def findings(result: Result) -> dict[str, dict[str, Any]]:
    data = result.json()
    assert data["exit_code"] == result.code
    return {f["check"]: f for f in data["findings"]}


def edit(cg: Certgate, **changes: Any) -> None:
    cfg = yaml.safe_load(cg.config.read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    cg.config.write_text(yaml.safe_dump(cfg))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket closes


@contextlib.contextmanager
def listening(context: ssl.SSLContext | None = None) -> Iterator[int]:
    """A TCP (or TLS) server on a thread of its own: the CLI runs its own event loop."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port: list[int] = []

    async def serve() -> asyncio.Server:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)

    def main() -> None:
        server = loop.run_until_complete(serve())
        port.append(server.sockets[0].getsockname()[1])
        started.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())

    thread = threading.Thread(target=main)
    thread.start()
    started.wait(10)
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_a_fresh_install_passes_and_json_parses(cg: Certgate) -> None:
    result = cg("doctor", "--json")
    assert result.code == 0, result.out
    found = findings(result)
    assert result.json()["status"] == "pass"
    assert {"config", "key-files", "root-ca", "issuing-ca", "server-cert", "server-names",
            "renewal", "database", "migrations", "clock", "crl", "audit-chain", "pki-urls",
            "audit-spool"} <= set(found)
    assert all(f["status"] == "pass" and f["fix"] is None for f in found.values())
    assert "renews the server certificate itself on" in found["renewal"]["message"]
    text = cg("doctor")
    assert text.code == 0
    assert text.out.splitlines()[-1].startswith(f"{len(found)} passed, 0 warning(s)")


def test_world_readable_key_fails_with_the_chmod(cg: Certgate) -> None:
    key = cg.data_dir / "tls" / "server-key.pem"
    key.chmod(0o644)
    result = cg("doctor", "--json")
    assert result.code == 2
    finding = findings(result)["key-file:server-key.pem"]
    assert finding["status"] == "fail"
    assert "mode 0644" in finding["message"]
    assert finding["fix"] == f"run chmod 600 {key}"
    text = cg("doctor")
    assert text.code == 2
    assert "FAIL  key-file:server-key.pem" in text.out
    assert f"fix: run chmod 600 {key}" in text.out


def test_key_owned_by_another_user_fails_with_the_chown(cg: Certgate) -> None:
    result = cg("doctor", "--json", "--service-user", "nobody")
    assert result.code == 2
    found = findings(result)
    finding = found["key-file:issuing-key.pem"]
    assert "not by nobody" in finding["message"]
    assert finding["fix"].startswith("run chown nobody ")


def test_server_certificate_expiring_and_expired_under_an_injected_clock(
        cg: Certgate, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = read_leaf(cg.data_dir / "tls" / "server.pem")
    soon = leaf.not_valid_after_utc - timedelta(days=10)
    monkeypatch.setattr("gateway.cli.doctor_cmd.now", lambda: soon)
    result = cg("doctor", "--json")
    found = findings(result)
    assert found["server-cert"]["status"] == "warn"
    assert "expires in 10 day(s)" in found["server-cert"]["message"]
    assert "renews its certificate itself" in found["server-cert"]["fix"]
    # Past two thirds of its life and not renewed: the renewal check says so too.
    assert found["renewal"]["status"] == "warn"
    # The CRL (24 h) expired long before: that is a failure, so the exit code is 2.
    assert found["crl"]["status"] == "fail"
    assert result.code == 2
    later = leaf.not_valid_after_utc + timedelta(seconds=1)
    monkeypatch.setattr("gateway.cli.doctor_cmd.now", lambda: later)
    found = findings(cg("doctor", "--json"))
    assert found["server-cert"]["status"] == "fail"
    assert "expired on" in found["server-cert"]["message"]


def test_only_a_warning_exits_1(cg: Certgate, monkeypatch: pytest.MonkeyPatch) -> None:
    # A spool left by a node that could not write the database: a warning, nothing fails.
    (cg.data_dir / "audit-spool.jsonl").write_text('{"seq": 1}\n{"seq": 2}\n')
    result = cg("doctor", "--json")
    finding = findings(result)["audit-spool"]
    assert finding["status"] == "warn"
    assert "2 audit record(s) are waiting in audit-spool.jsonl" in finding["message"]
    assert "make the database reachable" in finding["fix"]
    assert result.code == 1
    assert result.json()["status"] == "warn"


def test_unreachable_database_fails(cg: Certgate) -> None:
    edit(cg, database_url=f"postgresql+asyncpg://certgate@127.0.0.1:{closed_port()}/certgate")
    result = cg("doctor", "--json", "--timeout", "2")
    assert result.code == 2
    finding = findings(result)["database"]
    assert finding["status"] == "fail"
    assert "cannot reach the database at postgresql+asyncpg://certgate@127.0.0.1" \
        in finding["message"]
    assert "start the database or correct database_url" in finding["fix"]
    assert "migrations" not in findings(result)


def test_missing_sqlite_file_is_reported_not_created(cg: Certgate) -> None:
    edit(cg, database_url=f"sqlite+aiosqlite:///{cg.data_dir / 'elsewhere.db'}")
    result = cg("doctor", "--json")
    assert result.code == 2
    assert "there is no database at" in findings(result)["database"]["message"]
    assert not (cg.data_dir / "elsewhere.db").exists()


def test_app_host_missing_from_the_server_certificate_fails(cg: Certgate) -> None:
    with listening() as port:
        edit(cg, apps=[{"name": "intranet", "host": "intranet.example.test",
                        "upstream": f"http://127.0.0.1:{port}", "allow": [{"groups": ["staff"]}]}])
        result = cg("doctor", "--json")
    assert result.code == 2
    found = findings(result)
    finding = found["server-names"]
    assert finding["status"] == "fail"
    assert "does not name intranet.example.test" in finding["message"]
    assert "certgate cert issue-server gw.example.test 127.0.0.1 intranet.example.test" \
        in finding["fix"]
    assert found["upstream:intranet"]["status"] == "pass"


def test_dead_upstream_fails_and_live_ones_pass(cg: Certgate) -> None:
    dead = closed_port()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cg.data_dir / "tls" / "server.pem",
                               cg.data_dir / "tls" / "server-key.pem")
    with listening() as plain, listening(server_ctx) as tls:
        allow = [{"groups": ["staff"]}]
        edit(cg, public_hostnames=[], apps=[
            {"name": "wiki", "host": "wiki.test", "upstream": f"http://127.0.0.1:{dead}",
             "allow": allow},
            {"name": "crm", "host": "crm.test", "upstream": f"http://127.0.0.1:{plain}",
             "allow": allow, "routes": [{"path": "/old", "upstream":
                                         f"http://127.0.0.1:{dead}"}]},
            {"name": "pbx", "host": "pbx.test", "upstream": f"https://127.0.0.1:{tls}",
             "upstream_ca": "ca/root.pem", "allow": allow},
            {"name": "erp", "host": "erp.test", "upstream": f"https://localhost:{tls}",
             "allow": allow}])
        result = cg("doctor", "--json")
    assert result.code == 2
    found = findings(result)
    dead_one = found["upstream:wiki,crm"]
    assert dead_one["status"] == "fail"
    assert f"http://127.0.0.1:{dead}: cannot connect" in dead_one["message"]
    assert "start the app's server" in dead_one["fix"]
    assert found["upstream:crm"]["status"] == "pass"
    assert found["upstream:pbx"]["status"] == "pass"
    assert "completes a TLS handshake" in found["upstream:pbx"]["message"]
    unverified = found["upstream:erp"]
    assert unverified["status"] == "fail"
    assert "the TLS handshake failed" in unverified["message"]
    assert "upstream_ca" in unverified["fix"]


def test_crl_url_changed_after_issuing_warns(cg: Certgate, p12_password_file: Any) -> None:
    cg.ok("user", "add", "alice", "--group", "staff")
    cg.ok("cert", "issue", "alice", "--out", str(cg.data_dir.parent / "alice.p12"),
          "--p12-password-file", str(p12_password_file))
    assert findings(cg("doctor", "--json"))["pki-urls"]["status"] == "pass"
    edit(cg, pki={"crl_url": "http://pki.elsewhere.test/certgate.crl"})
    result = cg("doctor", "--json")
    finding = findings(result)["pki-urls"]
    assert finding["status"] == "warn"
    assert "but the config says http://pki.elsewhere.test/certgate.crl" in finding["message"]
    assert result.code == 1


def test_invalid_config_fails_naming_the_key(cg: Certgate) -> None:
    edit(cg, workers="many")
    result = cg("doctor", "--json")
    assert result.code == 2
    finding = findings(result)["config"]
    assert finding["status"] == "fail"
    assert "workers" in finding["message"]


def test_help_documents_the_exit_codes(cg: Certgate) -> None:
    out = cg("doctor", "--help").out
    assert "EXIT CODES" in out
    assert "1  at worst a warning" in out
    assert "--service-user" in out



def test_missing_data_dir_is_a_finding_not_a_traceback(cg: Certgate) -> None:
    edit(cg, data_dir="gone")
    result = cg("doctor", "--json")
    assert result.code == 2
    found = findings(result)
    assert found["data-dir"]["status"] == "fail"
    assert f"the data directory {cg.data_dir / 'gone'} can't be read" \
        in found["data-dir"]["message"]
    assert "there is no database at" in found["database"]["message"]


def test_a_missing_config_file_says_how_to_name_it(cg: Certgate) -> None:
    result = cg("--config", str(cg.data_dir / "nowhere.yaml"), "doctor", "--json",
                config=False)
    assert result.code == 2
    finding = findings(result)["config"]
    assert "there is no config file" in finding["message"]
    assert "--config FILE" in finding["fix"] and "CERTGATE_CONFIG" in finding["fix"]
