"""A minimal DER reader/writer for the OCSP structures ``cryptography`` handles
only one at a time (a request listing several certificates, a response answering
each of them).

Reads and writes definite-length TLVs with single-byte tags (all the OCSP tags
are low-number tags); anything else raises ``ValueError``. Pure: no I/O.
"""

from __future__ import annotations

SEQUENCE = 0x30
OCTET_STRING = 0x04
BIT_STRING = 0x03


def _header(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at ``offset``."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags are not supported")
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    if start + length > len(data):
        raise ValueError("truncated DER")
    return tag, start, start + length


def elements(data: bytes) -> list[bytes]:
    """The consecutive TLVs (each whole: tag, length, content) that fill ``data``."""
    out: list[bytes] = []
    offset = 0
    while offset < len(data):
        _, _, end = _header(data, offset)
        out.append(data[offset:end])
        offset = end
    return out


def tag_of(tlv: bytes) -> int:
    return _header(tlv, 0)[0]


def content_of(tlv: bytes) -> bytes:
    """The content of one whole TLV (which must be exactly one element)."""
    _, start, end = _header(tlv, 0)
    if end != len(tlv):
        raise ValueError("trailing data after DER element")
    return tlv[start:end]


def children(tlv: bytes) -> list[bytes]:
    """The elements inside a constructed TLV (a SEQUENCE or an explicit tag)."""
    return elements(content_of(tlv))


def encode(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content
