"""The public listener's TLS context and the client identity taken from a connection.

The context asks for a client certificate with *optional* verification, so a
browser without one completes the handshake and gets a page telling the person
how to import theirs. A certificate that is presented but fails verification
(another CA, a self-signed look-alike, expired at handshake time, a serverAuth-only
EKU that fails OpenSSL's sslclient purpose check) still fails the handshake with
a TLS alert: Python's ssl module has no verify callback to turn that into a page.

The SHA-256 fingerprint of the peer certificate is computed once per connection
and cached. Must not look anything up: identity resolution is ``identity``'s job.
"""

from __future__ import annotations

import hashlib
import ssl
import weakref
from typing import Any
from urllib.parse import quote

from gateway.config import TlsConfig
from pki.keys import check_secret_mode

# ECDHE only for TLS 1.2 (forward secrecy); TLS 1.3 suites are always ECDHE/DHE.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def build_server_context(tls: TlsConfig) -> ssl.SSLContext:
    """Server context; refuses to start on a key file readable by group or others."""
    check_secret_mode(tls.key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = (ssl.TLSVersion.TLSv1_3 if tls.min_version == "1.3"
                           else ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    ctx.load_verify_locations(cafile=str(tls.client_ca))
    if tls.client_chain is not None:
        # The issuing CA is ours too; trusting it lets leaf-only clients verify.
        ctx.load_verify_locations(cafile=str(tls.client_chain))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.sni_callback = _remember_sni
    return ctx


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
