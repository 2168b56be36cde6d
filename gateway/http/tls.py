"""The public listener's TLS context and the client identity taken from a connection.

The context asks for a client certificate with *optional* verification, so a
browser without one completes the handshake and gets a page telling the person
how to import theirs. A certificate that is presented but fails verification
(another CA, a self-signed look-alike, expired at handshake time, a serverAuth-only
EKU that fails OpenSSL's sslclient purpose check) still fails the handshake with
a TLS alert: Python's ssl module has no verify callback to turn that into a page.

A reload swaps the context new handshakes use (``ServerTls``); open connections
keep theirs. Every error names the ``tls.*`` key and the file.

The SHA-256 fingerprint of the peer certificate is computed once per connection
and cached. Must not look anything up: identity resolution is ``identity``'s job.
"""

from __future__ import annotations

import hashlib
import ssl
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gateway.config import TlsConfig
from pki.keys import PkiError, check_secret_mode

# ECDHE only for TLS 1.2 (forward secrecy); TLS 1.3 suites are always ECDHE/DHE.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


class TlsFileError(PkiError):
    """A file of the ``tls:`` section is missing, unreadable or not what it should be."""


def _floor(min_version: str) -> ssl.TLSVersion:
    return ssl.TLSVersion.TLSv1_3 if min_version == "1.3" else ssl.TLSVersion.TLSv1_2


def _readable(key: str, path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise TlsFileError(f"tls.{key}: {path}: {exc.strerror or exc}") from None


def build_server_context(tls: TlsConfig) -> ssl.SSLContext:
    """Server context; refuses a key file readable by group or others.

    Raises ``TlsFileError`` (or ``InsecureFileError``) naming the key and the file.
    """
    for key, path in (("cert", tls.cert), ("key", tls.key), ("client_ca", tls.client_ca),
                      ("client_chain", tls.client_chain)):
        if path is not None:
            _readable(key, path)
    check_secret_mode(tls.key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _floor(tls.min_version)
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        ctx.load_cert_chain(str(tls.cert), str(tls.key))
    except ssl.SSLError as exc:
        why = ("the key does not match the certificate" if exc.reason == "KEY_VALUES_MISMATCH"
               else f"not a PEM certificate and its unencrypted key ({exc.reason or exc})")
        raise TlsFileError(f"tls.cert, tls.key: {tls.cert}, {tls.key}: {why}") from None
    for key, path in (("client_ca", tls.client_ca), ("client_chain", tls.client_chain)):
        if path is None:
            continue
        # The issuing CA (client_chain) is ours too; trusting it lets leaf-only clients verify.
        try:
            ctx.load_verify_locations(cafile=str(path))
        except ssl.SSLError as exc:
            raise TlsFileError(f"tls.{key}: {path}: not PEM certificates ({exc.reason or exc})"
                               ) from None
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.sni_callback = _remember_sni
    return ctx


class ServerTls:
    """The public listener's own context, and the one each new handshake switches to.

    The listener's SNI callback (called by OpenSSL with or without SNI) sets the
    connection's context to ``current``: a reload builds a new context from the new
    config and ``use`` makes it current, so a renewed certificate needs no restart.
    Open connections keep the context they shook hands with.

    Found by test (OpenSSL 3.0; tests/gateway/http/test_tls_reload.py): the
    switch takes the new certificate and key (and the client CAs to verify against:
    seen in a manual experiment, not in that test), but the protocol version is chosen
    before the SNI callback runs, from the listener's own context, so a floor set
    only on the new context is ignored. ``use`` therefore also sets
    ``minimum_version`` on the listener's context in place; each new connection
    copies it when it is created. (Ciphers and options are fixed, the same in both.)
    """

    def __init__(self, listener: ssl.SSLContext, current: ssl.SSLContext) -> None:
        self.listener = listener
        self.current = current
        listener.sni_callback = self._switch

    def use(self, context: ssl.SSLContext, tls: TlsConfig) -> None:
        """New handshakes from now on: ``context``'s certificate, ``tls.min_version``."""
        self.current = context
        self.listener.minimum_version = _floor(tls.min_version)

    def _switch(self, ssl_object: Any, name: str | None, ctx: ssl.SSLContext) -> None:
        _remember_sni(ssl_object, name, ctx)
        if ssl_object.context is not self.current:
            ssl_object.context = self.current


# Server-side SSLObject.server_hostname is always None; the name the client asked
# for is only seen by the SNI callback, so it is kept here per connection.
_SNI: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _remember_sni(ssl_object: Any, name: str | None, _ctx: ssl.SSLContext) -> None:
    if name:
        _SNI[ssl_object] = name.lower()


class _PeerInfo:
    __slots__ = ("der", "fingerprint")

    def __init__(self, der: bytes | None) -> None:
        self.der = der
        self.fingerprint = hashlib.sha256(der).hexdigest() if der else None


# One entry per live TLS connection, dropped with the connection's SSLObject.
_PEERS: weakref.WeakKeyDictionary[Any, _PeerInfo] = weakref.WeakKeyDictionary()


def _ssl_object(transport: Any) -> Any:
    return transport.get_extra_info("ssl_object") if transport is not None else None


def _peer(transport: Any) -> _PeerInfo | None:
    obj = _ssl_object(transport)
    if obj is None:
        return None
    info = _PEERS.get(obj)
    if info is None:
        info = _PeerInfo(obj.getpeercert(binary_form=True))
        _PEERS[obj] = info
    return info


def peer_fingerprint(transport: Any) -> str | None:
    """Lowercase hex SHA-256 of the verified peer certificate, or None."""
    info = _peer(transport)
    return info.fingerprint if info else None


def peer_certificate_pem_quoted(transport: Any) -> str | None:
    """The peer certificate as URL-encoded PEM, for upstreams that want it."""
    info = _peer(transport)
    if info is None or info.der is None:
        return None
    return quote(ssl.DER_cert_to_PEM_cert(info.der), safe="")


def sni_hostname(transport: Any) -> str | None:
    """The server name the client sent in its TLS hello (None for IP addresses)."""
    obj = _ssl_object(transport)
    return _SNI.get(obj) if obj is not None else None
