"""The PROXY protocol version 2 header, parsed strictly (no I/O here).

A TCP load balancer in front of certgate (HAProxy ``send-proxy-v2``, a cloud NLB)
opens each connection with a binary header saying whom it carries: the client's
address and port. The format (haproxy.org/download/2.9/doc/proxy-protocol.txt,
section 2.2): a 12-byte signature, a version/command byte, a family/transport byte,
a 2-byte big-endian length, then that many bytes of addresses and TLVs.

``header_length`` judges the fixed 16 bytes and says how many follow;
``parse_header`` reads the rest. Anything a conforming sender would not send is a
``ProxyHeaderError`` with a reason a person understands: a wrong signature, the
text form of version 1, another version or command, a family other than TCP over
IPv4 or IPv6, a length too short for its addresses or longer than ``MAX_BODY``,
TLVs that do not fill the block exactly. A LOCAL command (the balancer's own
health check) carries no client: the connection's real peer stands. TLVs are
checked for shape and skipped.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
PREFIX = 16  # signature, version/command, family/transport, length
# Addresses (at most 36 bytes) plus TLVs; HAProxy's own are far below this.
MAX_BODY = 1024
_V1 = b"PROXY "
_LOCAL, _PROXY = 0x20, 0x21
_TCP4, _TCP6 = 0x11, 0x21
_ADDRESS_BYTES = {_TCP4: 12, _TCP6: 36}


class ProxyHeaderError(ValueError):
    """Not a valid PROXY v2 header; ``reason`` is a short label for counting."""

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """What the balancer said: ``client`` None for LOCAL (use the real peer)."""

    client: tuple[str, int] | None
    server: tuple[str, int] | None = None


def starts_like_proxy(data: bytes) -> bool:
    """True when ``data`` (the first bytes that arrived) begins as a PROXY header would.

    Judged on what is there: ``\\r\\n`` could still become a v2 signature, ``PRO``
    a v1 line; ``POST /`` cannot. A TLS record never starts like either (0x16, or
    0x80 for an SSLv2-style hello).
    """
    return bool(data) and (SIGNATURE.startswith(data[:12]) or _V1.startswith(data[:6]))


def header_length(prefix: bytes) -> int:
    """How many bytes follow the 16-byte ``prefix``; raises ``ProxyHeaderError``."""
    if len(prefix) != PREFIX:
        raise ProxyHeaderError(f"the PROXY header ended after {len(prefix)} bytes",
                               "truncated")
    if prefix[:12] != SIGNATURE:
        if prefix.startswith(_V1):
            raise ProxyHeaderError("PROXY protocol version 1 (text) is not supported: "
                                   "configure the balancer to send version 2 "
                                   "(HAProxy: send-proxy-v2)", "version-1")
        raise ProxyHeaderError("the connection did not start with a PROXY v2 signature",
                               "no-header")
    command, family, length = prefix[12], prefix[13], struct.unpack("!H", prefix[14:16])[0]
    if command >> 4 != 2:
        raise ProxyHeaderError(f"PROXY protocol version {command >> 4} is not supported "
                               "(only 2)")
    if command not in (_LOCAL, _PROXY):
        raise ProxyHeaderError(f"unknown PROXY v2 command {command & 0xF}")
    if command == _PROXY and family not in _ADDRESS_BYTES:
        raise ProxyHeaderError(f"PROXY v2 family/transport 0x{family:02x} is not supported "
                               "(only TCP over IPv4 or IPv6)")
    if length > MAX_BODY:
        raise ProxyHeaderError(f"a PROXY v2 header of {length} bytes is longer than the "
                               f"{MAX_BODY} accepted")
    if command == _PROXY and length < _ADDRESS_BYTES[family]:
        raise ProxyHeaderError(f"a PROXY v2 header of {length} bytes is too short for its "
                               "addresses")
    return int(length)


def parse_header(prefix: bytes, body: bytes) -> ProxyHeader:
    """The header made of ``prefix`` (16 bytes) and ``body``; raises ``ProxyHeaderError``."""
    length = header_length(prefix)
    if len(body) != length:
        raise ProxyHeaderError(f"the PROXY header ended after {PREFIX + len(body)} of "
                               f"{PREFIX + length} bytes", "truncated")
    if prefix[12] == _LOCAL:  # the balancer speaking for itself; its block is ignored
        return ProxyHeader(None)
    family = prefix[13]
    size = _ADDRESS_BYTES[family] // 2 - 2
    src = ipaddress.ip_address(body[:size])
    dst = ipaddress.ip_address(body[size:2 * size])
    src_port, dst_port = struct.unpack("!HH", body[2 * size:2 * size + 4])
    _check_tlvs(body[2 * size + 4:])
    return ProxyHeader((str(src), src_port), (str(dst), dst_port))


def _check_tlvs(data: bytes) -> None:
    """Each TLV (type, 2-byte length, value) must fit, and together fill the rest."""
    at = 0
    while at < len(data):
        if len(data) - at < 3:
            raise ProxyHeaderError("a PROXY v2 TLV is cut short")
        at += 3 + struct.unpack("!H", data[at + 1:at + 3])[0]
        if at > len(data):
            raise ProxyHeaderError("a PROXY v2 TLV is longer than the header")


def build_header(client: tuple[str, int] | None, server: tuple[str, int] | None = None,
                 *, tlvs: bytes = b"") -> bytes:
    """A v2 header for ``client`` (None: LOCAL); what a balancer sends, for tests and tools."""
    if client is None:
        return SIGNATURE + bytes((_LOCAL, 0)) + struct.pack("!H", len(tlvs)) + tlvs
    src = ipaddress.ip_address(client[0])
    dst = ipaddress.ip_address((server or ("0.0.0.0", 0))[0])  # noqa: S104 - never bound
    if src.version == 6 and dst.version == 4:
        dst = ipaddress.ip_address("::")
    family = _TCP4 if src.version == 4 else _TCP6
    block = (src.packed + dst.packed
             + struct.pack("!HH", client[1], (server or ("", 0))[1]) + tlvs)
    return SIGNATURE + bytes((_PROXY, family)) + struct.pack("!H", len(block)) + block
