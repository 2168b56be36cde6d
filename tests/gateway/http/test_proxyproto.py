"""The PROXY v2 parser: what balancers send is read exactly; hostile headers are refused
with a reason, never an exception of another kind."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http.proxyproto import (
    MAX_BODY,
    PREFIX,
    SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    build_header,
    header_length,
    parse_header,
    starts_like_proxy,
)


def parse(data: bytes) -> ProxyHeader:
    return parse_header(data[:PREFIX], data[PREFIX:])


@pytest.mark.parametrize(("client", "server"), [
    (("203.0.113.7", 51234), ("192.0.2.1", 443)),
    (("2001:db8::7", 65535), ("2001:db8::1", 8443)),
    (("0.0.0.0", 0), ("255.255.255.255", 1)),
])
def test_addresses_are_read_exactly(client: tuple[str, int], server: tuple[str, int]) -> None:
    assert parse(build_header(client, server)) == ProxyHeader(client, server)


def test_tlvs_are_skipped_and_local_carries_no_client() -> None:
    tlvs = bytes([0x01, 0, 2]) + b"h2" + bytes([0x20, 0, 0])  # ALPN, an empty SSL TLV
    header = build_header(("198.51.100.9", 1000), ("192.0.2.1", 443), tlvs=tlvs)
    assert parse(header).client == ("198.51.100.9", 1000)
    assert parse(build_header(None)) == ProxyHeader(None)
    # LOCAL ignores its block, whatever the family byte says.
    local = SIGNATURE + bytes((0x20, 0x31)) + struct.pack("!H", 4) + b"abcd"
    assert parse(local) == ProxyHeader(None)


def _with(header: bytes, at: int, value: int) -> bytes:
    return header[:at] + bytes((value,)) + header[at + 1:]


GOOD = build_header(("203.0.113.7", 4000), ("192.0.2.1", 443))

HOSTILE = [
    pytest.param(GOOD[:10], "truncated", id="shorter-than-the-prefix"),
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(5), "no-header",
                 id="a-tls-hello-without-header"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n", "no-header", id="plain-http"),
    pytest.param(_with(GOOD, 3, ord("X")), "no-header", id="wrong-signature"),
    pytest.param(b"PROXY TCP4 203.0.113.7 192.0.2.1 4000 443\r\n", "version-1", id="v1-text"),
    pytest.param(_with(GOOD, 12, 0x11), "malformed", id="version-1-binary"),
    pytest.param(_with(GOOD, 12, 0x31), "malformed", id="version-3"),
    pytest.param(_with(GOOD, 12, 0x22), "malformed", id="unknown-command"),
    pytest.param(_with(GOOD, 13, 0x31), "malformed", id="unix-family"),
    pytest.param(_with(GOOD, 13, 0x12), "malformed", id="udp-over-ipv4"),
    pytest.param(_with(GOOD, 13, 0x00), "malformed", id="unspec-with-proxy-command"),
    pytest.param(_with(GOOD, 13, 0x41), "malformed", id="unknown-family"),
    pytest.param(GOOD[:14] + struct.pack("!H", 11) + GOOD[16:27], "malformed",
                 id="too-short-for-ipv4-addresses"),
    pytest.param(_with(build_header(("2001:db8::7", 1)), 15, 20), "malformed",
                 id="too-short-for-ipv6-addresses"),
    pytest.param(GOOD[:14] + struct.pack("!H", MAX_BODY + 1) + bytes(MAX_BODY + 1),
                 "malformed", id="oversize-length"),
    pytest.param(GOOD[:14] + struct.pack("!H", 0xFFFF), "malformed", id="max-length"),
    pytest.param(GOOD[:-3], "truncated", id="body-cut-short"),
    pytest.param(GOOD[:14] + struct.pack("!H", 14) + GOOD[16:] + b"\x01\x00",
                 "malformed", id="tlv-cut-short"),
    pytest.param(GOOD[:14] + struct.pack("!H", 17) + GOOD[16:] + b"\x01\x00\x09ab",
                 "malformed", id="tlv-longer-than-header"),
]


@pytest.mark.parametrize(("data", "reason"), HOSTILE)
def test_hostile_headers_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ProxyHeaderError) as caught:
        parse(data)
    assert caught.value.reason == reason
    assert str(caught.value)  # a sentence for the log


def test_version_1_is_named_in_the_refusal() -> None:
    with pytest.raises(ProxyHeaderError, match="send-proxy-v2"):
        header_length(b"PROXY TCP4 1.2.3.4 "[:PREFIX])


REASONS = {"truncated", "no-header", "version-1", "malformed"}


def judge(data: bytes) -> None:
    """Parsed into an address and port, or refused with a known reason: nothing else."""
    try:
        header = parse(data)
    except ProxyHeaderError as exc:
        assert exc.reason in REASONS
    else:
        assert header.client is None or 0 <= header.client[1] <= 65535


@given(st.binary(min_size=PREFIX, max_size=PREFIX + 64))
def test_any_bytes_parse_or_are_refused(data: bytes) -> None:
    judge(data)


@given(st.binary(min_size=0, max_size=60))
def test_any_bytes_after_a_valid_prefix_parse_or_are_refused(tail: bytes) -> None:
    judge(GOOD[:14] + struct.pack("!H", len(tail)) + tail)


@pytest.mark.parametrize(("first", "expected"), [
    (b"\r", True), (b"\r\n\r", True), (b"P", True), (b"PRO", True), (SIGNATURE + b"!", True),
    (b"PROXY TCP4", True), (b"\r\nX", False), (b"POST / HTTP/1.1", False),
    (b"\x16\x03\x01", False), (b"\x80", False), (b"G", False), (b"", False)])
def test_starts_like_proxy(first: bytes, expected: bool) -> None:
    assert starts_like_proxy(first) is expected
