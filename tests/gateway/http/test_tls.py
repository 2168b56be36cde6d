"""The public listener's TLS context over real handshakes: the minimum version, client
certificates optional but verified when sent, the peer fingerprint and SNI taken from
the connection, and the refusal of a key file others can read."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

from gateway.config import TlsConfig
from gateway.http.tls import (
    build_server_context,
    peer_certificate_pem_quoted,
    peer_fingerprint,
    sni_hostname,
)
from pki.ca import issue_server_cert
from pki.keys import InsecureFileError, generate_key, key_to_pem
from tests.pki.conftest import NOW, CaFiles, make_ca, write_pem


@dataclass(frozen=True)
class Pki:
    ca: CaFiles
    dir: Path
    alice: tuple[Path, Path]      # a client certificate of our CA
    outsider: tuple[Path, Path]   # same name, another CA

    def tls(self, **extra: object) -> TlsConfig:
        return TlsConfig.model_validate({
            "cert": self.dir / "server.pem", "key": self.dir / "server-key.pem",
            "client_ca": self.ca.root_pem, "client_chain": self.ca.issuing_pem, **extra})


def _pair(files: CaFiles, user: str, out: Path) -> tuple[Path, Path]:
    cert, key = files.client(user)
    write_pem(out.with_suffix(".crt"), cert)
    out.with_suffix(".key").write_bytes(key_to_pem(key, None))
    out.with_suffix(".key").chmod(0o600)
    return out.with_suffix(".crt"), out.with_suffix(".key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    out = tmp_path_factory.mktemp("tls")
    files = make_ca(out)
    key = generate_key()
    cert = issue_server_cert(files.ca, key.public_key(), ["wiki.test"], days=30, now=NOW)
    write_pem(out / "server.pem", cert, files.ca.issuing_cert)
    (out / "server-key.pem").write_bytes(key_to_pem(key, None))
    (out / "server-key.pem").chmod(0o600)
    other = make_ca(tmp_path_factory.mktemp("other-ca"), "Look-alike Corp")
    return Pki(files, out, _pair(files, "alice", out / "alice"),
               _pair(other, "alice", out / "outsider"))


@dataclass
class Server:
    port: int
    seen: list[tuple[str | None, str | None, str | None]]  # (fingerprint, sni, quoted pem)


@pytest.fixture
async def server(pki: Pki) -> AsyncIterator[Server]:
    seen: list[tuple[str | None, str | None, str | None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append((peer_fingerprint(writer.transport), sni_hostname(writer.transport),
                     peer_certificate_pem_quoted(writer.transport)))
        # Asked twice on one connection: the answer is cached, and the same.
        assert peer_fingerprint(writer.transport) == seen[-1][0]
        writer.write(b"ok\n")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=build_server_context(pki.tls()))
    try:
        yield Server(srv.sockets[0].getsockname()[1], seen)
    finally:
        srv.close()
        await srv.wait_closed()


def client_context(pki: Pki, files: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca.root_pem))
    if files is not None:
        ctx.load_cert_chain(str(files[0]), str(files[1]))
    return ctx


async def talk(port: int, ctx: ssl.SSLContext, server_hostname: str = "wiki.test") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                   server_hostname=server_hostname)
    try:
        return await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()


def test_context_settings(pki: Pki) -> None:
    ctx = build_server_context(pki.tls())
    assert ctx.verify_mode is ssl.CERT_OPTIONAL
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_COMPRESSION and ctx.options & ssl.OP_NO_RENEGOTIATION
    tls12 = [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and all(name.startswith("ECDHE-") for name in tls12)  # forward secrecy only
    assert build_server_context(pki.tls(min_version="1.3")).minimum_version \
        is ssl.TLSVersion.TLSv1_3


async def test_a_client_without_a_certificate_completes_the_handshake(
        pki: Pki, server: Server) -> None:
    assert await talk(server.port, client_context(pki)) == b"ok\n"
    assert server.seen == [(None, "wiki.test", None)]


async def test_fingerprint_and_pem_of_a_verified_client_certificate(
        pki: Pki, server: Server) -> None:
    assert await talk(server.port, client_context(pki, pki.alice)) == b"ok\n"
    [(fingerprint, sni, quoted)] = server.seen
    leaf = pki.alice[0].read_bytes()
    der = ssl.PEM_cert_to_DER_cert(leaf.decode())
    assert fingerprint == hashlib.sha256(der).hexdigest()
    assert sni == "wiki.test"
    assert quoted is not None and "\n" not in quoted and " " not in quoted
    assert ssl.PEM_cert_to_DER_cert(unquote(quoted)) == der


async def test_sni_is_lowercased_and_absent_for_an_ip(pki: Pki, server: Server) -> None:
    ctx = client_context(pki)
    ctx.check_hostname = False  # the server certificate names wiki.test only
    await talk(server.port, ctx, server_hostname="WIKI.Test")
    await talk(server.port, ctx, server_hostname="127.0.0.1")  # no SNI for addresses
    assert [sni for _, sni, _ in server.seen] == ["wiki.test", None]


async def test_a_certificate_of_another_ca_fails_the_handshake(
        pki: Pki, server: Server) -> None:
    # In TLS 1.3 the client may finish its half before the server's alert arrives:
    # then it reads end-of-stream instead of an error. Either way, nothing is served.
    try:
        answer = await talk(server.port, client_context(pki, pki.outsider))
    except (ssl.SSLError, ConnectionError):
        answer = b""
    assert answer == b""
    assert server.seen == []


async def test_minimum_version_is_enforced(pki: Pki) -> None:
    srv = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0,
                                     ssl=build_server_context(pki.tls(min_version="1.3")))
    try:
        ctx = client_context(pki)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await talk(srv.sockets[0].getsockname()[1], ctx)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        await talk(srv.sockets[0].getsockname()[1], ctx)  # the same client on 1.3 gets in
    finally:
        srv.close()
        await srv.wait_closed()


def test_a_key_others_can_read_is_refused(pki: Pki, tmp_path: Path) -> None:
    key = tmp_path / "server-key.pem"
    key.write_bytes((pki.dir / "server-key.pem").read_bytes())
    key.chmod(0o640)
    with pytest.raises(InsecureFileError, match="chmod 600"):
        build_server_context(pki.tls(key=key))


def test_no_transport_means_no_identity() -> None:
    assert peer_fingerprint(None) is None
    assert sni_hostname(None) is None
    assert peer_certificate_pem_quoted(None) is None


