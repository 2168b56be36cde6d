"""The syslog forward: real UDP, TCP and Unix receivers on this machine get every record
and checkpoint as RFC 5424 messages that parse and still verify; a dead receiver is
a failure the forwarder reports, never a wait for the database, and its buffer is
bounded."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.chain import Chain, hash_of
from gateway.audit.checkpoint import signature_ok
from gateway.audit.checkpointer import Checkpointer
from gateway.audit.sinks import DatabaseSink
from gateway.audit.syslog import SyslogForwarder, SyslogTarget, parse_syslog_url
from gateway.audit.writer import AuditWriter
from gateway.store.store import Store
from tests.gateway.audit.helpers import record, stored
from tests.gateway.audit.serving import serving
from tests.gateway.conftest import Gateway, Template

KEY = Ed25519PrivateKey.generate()
# RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD SP MSG
RFC5424 = re.compile(
    rb'<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>[!-~]{1,255}) (?P<app>[!-~]{1,48}) '
    rb'(?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) '
    rb'\[certgate@32473 node="(?P<node>[^"]*)" seq="(?P<seq>\d+)" hash="(?P<hash>[0-9a-f]{64})"\] '
    rb'\xef\xbb\xbf(?P<msg>.*)\Z', re.DOTALL)


def parse(message: bytes) -> dict[str, Any]:
    match = RFC5424.match(message)
    assert match is not None, message[:200]
    out: dict[str, Any] = {k: v.decode() for k, v in match.groupdict().items()}
    out["body"] = json.loads(match["msg"])
    return out


@pytest.mark.parametrize(("text", "target"), [
    ("udp://siem.example:514", SyslogTarget("udp", "siem.example", 514)),
    ("tcp://10.0.0.5:601", SyslogTarget("tcp", "10.0.0.5", 601)),
    ("tcp://[2001:db8::1]:6514", SyslogTarget("tcp", "2001:db8::1", 6514)),
    ("unix:///dev/log", SyslogTarget("unix", path="/dev/log")),
])
def test_syslog_addresses(text: str, target: SyslogTarget) -> None:
    assert parse_syslog_url(text) == target and str(target) == text


@pytest.mark.parametrize(("text", "says"), [
    ("siem.example:514", "no syslog transport"),
    ("http://siem.example:514", "no syslog transport"),
    ("udp://siem.example", "names no port"),
    ("tcp://siem.example:99999", "is not a syslog address"),
    ("udp://siem.example:514/path", "only a host and a port"),
    ("unix://dev/log", "three slashes"),
    ("", "must be a syslog address"),
])
def test_bad_syslog_addresses_are_refused_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_syslog_url(text)


class Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.messages.append(data)


@asynccontextmanager
async def udp_receiver() -> AsyncIterator[tuple[int, list[bytes]]]:
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        Udp, local_addr=("127.0.0.1", 0))
    try:
        yield transport.get_extra_info("sockname")[1], protocol.messages
    finally:
        transport.close()


@asynccontextmanager
async def tcp_receiver(port: int = 0) -> AsyncIterator[tuple[int, list[bytes]]]:
    """Parses RFC 6587 octet-counted frames: ``LEN SP MSG``."""
    messages: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = int((await reader.readuntil(b" "))[:-1])
                messages.append(await reader.readexactly(length))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield server.sockets[0].getsockname()[1], messages
    finally:
        server.close()
        await server.wait_closed()


async def until(predicate: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.02)


async def forward_all(forwarder: SyslogForwarder) -> None:
    while forwarder.queued:
        await forwarder.send_round()


def writer_with(store: Store, tmp_path: Path, forwarder: SyslogForwarder) -> AuditWriter:
    checkpointer = Checkpointer(KEY, path=tmp_path / "cp.jsonl", database=store, every=5,
                                syslog=forwarder)
    return AuditWriter(node="gw1", sinks=[DatabaseSink(store, "gw1")],
                       spool_path=tmp_path / "spool.jsonl", checkpointer=checkpointer,
                       syslog=forwarder)


def check_messages(messages: list[bytes], rows: list[dict[str, Any]]) -> None:
    parsed = [parse(m) for m in messages]
    records = [p for p in parsed if p["msgid"] != "checkpoint"]
    checkpoints = [p for p in parsed if p["msgid"] == "checkpoint"]
    assert [p["body"] for p in records] == rows  # every record, in order, hashes included
    for p in records:
        row = p["body"]
        assert hash_of(row["prev_hash"], row) == row["hash"] == p["hash"]
        assert p["pri"] == str(10 * 8 + 6) and p["msgid"] == "access" and p["app"] == "certgate"
        assert p["ts"] == row["at"] and (p["node"], int(p["seq"])) == ("gw1", row["seq"])
    assert [int(p["seq"]) for p in checkpoints] == [5, 10]
    for p in checkpoints:
        assert p["pri"] == str(10 * 8 + 5) and signature_ok(KEY.public_key(), p["body"])
        assert p["body"]["hash"] == rows[int(p["seq"]) - 1]["hash"]


async def test_udp_receiver_gets_every_record_and_checkpoint(store: Store,
                                                             tmp_path: Path) -> None:
    async with udp_receiver() as (port, messages):
        forwarder = SyslogForwarder(SyslogTarget("udp", "127.0.0.1", port))
        writer = writer_with(store, tmp_path, forwarder)
        await writer.start()
        for n in range(10):
            writer.emit(record(n, path="/ünï\x00"))
            if n % 5 == 4:
                await writer.flush()
        await forward_all(forwarder)
        await until(lambda: len(messages) == 12)
        await writer.close()
        await forwarder.close()
        check_messages(messages, (await stored(store, "gw1"))[:10])


async def test_tcp_receiver_gets_octet_counted_frames(store: Store, tmp_path: Path) -> None:
    async with tcp_receiver() as (port, messages):
        forwarder = SyslogForwarder(parse_syslog_url(f"tcp://127.0.0.1:{port}"),
                                    facility="local3")
        writer = writer_with(store, tmp_path, forwarder)
        await writer.start()
        for n in range(10):
            writer.emit(record(n))
            if n % 5 == 4:
                await writer.flush()
        await forward_all(forwarder)
        await until(lambda: len(messages) == 12)
        await forwarder.close()
        assert {parse(m)["pri"] for m in messages} == {str(19 * 8 + 6), str(19 * 8 + 5)}


async def test_unix_socket_receiver(tmp_path: Path) -> None:
    path = tmp_path / "log"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(5)
    try:
        forwarder = SyslogForwarder(parse_syslog_url(f"unix://{path}"))
        rows = [Chain("gw1").link(record(0).fields())]
        forwarder.offer(rows)
        await forwarder.send_round()
        got = await asyncio.to_thread(receiver.recv, 65536)
        assert parse(got)["body"] == rows[0]
        await forwarder.close()
    finally:
        receiver.close()


async def test_a_dead_receiver_fails_loudly_keeps_the_database_going_and_catches_up(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nobody listens on (yet)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    forwarder = SyslogForwarder(SyslogTarget("tcp", "127.0.0.1", port), buffer=8)
    writer = writer_with(store, tmp_path, forwarder)
    await writer.start()
    for n in range(10):
        writer.emit(record(n))
    await writer.flush()  # the database is not held up by the dead SIEM
    assert len(await stored(store, "gw1")) == 10 and not writer.failing
    with pytest.raises(OSError, match=f"cannot forward the audit trail to syslog at "
                                      f"tcp://127.0.0.1:{port}"):
        await forwarder.send_round()
    # Bounded: 10 records + 1 checkpoint offered, 8 kept, the 3 oldest dropped, said once.
    assert (forwarder.queued, forwarder.dropped, forwarder.sent) == (8, 3, 0)
    assert sum("buffer of 8 messages is full" in r.message for r in caplog.records) == 1
    async with tcp_receiver(port) as (_, messages):
        await forward_all(forwarder)
        await until(lambda: len(messages) == 8)
        bodies = [parse(m)["body"] for m in messages]
        assert [b["seq"] for b in bodies] == [4, 5, 6, 7, 8, 9, 10, 10]  # oldest went
        assert "signature" in bodies[-1] and forwarder.sent == 8
        await forwarder.close()
    await writer.close()


async def readyz(gw: Gateway) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{gw.admin_port}/readyz") as resp:
        return dict(await resp.json())


async def test_a_running_gateway_forwards_each_request_to_syslog(
        tmp_path: Path, gateway_template: Template) -> None:
    async with udp_receiver() as (port, messages), \
            serving(tmp_path, gateway_template, syslog=f"udp://127.0.0.1:{port}") as gw:
        status, _, _ = await gw.request("GET", "/to-the-siem")
        assert status == 200
        await until(lambda: any(b"/to-the-siem" in m for m in messages))
        parsed = [parse(m) for m in messages]
        assert [p["msgid"] for p in parsed[:2]] == ["gateway.start", "access"]
        assert parsed[1]["body"]["path"] == "/to-the-siem" and parsed[1]["node"] == \
            gw.runtime.audit.node


async def test_a_dead_siem_is_degraded_in_readyz_and_holds_up_nothing(
        tmp_path: Path, gateway_template: Template) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with serving(tmp_path, gateway_template, syslog=f"tcp://127.0.0.1:{port}") as gw:
        for n in range(3):
            status, _, _ = await gw.request("GET", f"/siem-down/{n}")
            assert status == 200

        async def degraded() -> bool:
            body = await readyz(gw)
            return any(d["component"] == "audit syslog forward" for d in body["degraded"])

        await gw.wait_for(degraded, 10)
        [entry] = [d for d in (await readyz(gw))["degraded"]
                   if d["component"] == "audit syslog forward"]
        assert f"tcp://127.0.0.1:{port}" in entry["reason"] and entry["queued_messages"] >= 4
        assert "the database still gets every one" in entry["meaning"]

        async def written() -> bool:
            store = await gw.store()
            try:
                rows = await stored(store, gw.runtime.audit.node)
            finally:
                await store.close()
            return [r["path"] for r in rows if r["type"] == "access"] == \
                [f"/siem-down/{n}" for n in range(3)]

        await gw.wait_for(written, 5)  # the database is not held up
        assert not gw.runtime.audit.failing
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{gw.admin_port}/metrics") as resp:
            metrics = await resp.text()
        assert "certgate_audit_syslog_sent_messages_total 0.0" in metrics
        assert "certgate_audit_syslog_queued_messages 0.0" not in metrics
