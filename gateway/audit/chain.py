"""The hash chain: the canonical encoding of a record and the hash that links it.

Every node keeps its own chain. A record (``ChainRow``: a plain dict of the
``FIELDS`` below) carries its node, its per-node sequence number ``seq`` (1, 2, …),
``prev_hash`` (the previous record's ``hash``; ``GENESIS`` for seq 1) and

    hash = SHA-256( prev_hash as 64 lowercase hex ASCII characters
                    || canonical(record) )           -> 64 lowercase hex characters

``canonical(record)`` is what a reviewer can re-implement in any language:

- a JSON object of every field in ``FIELDS`` except ``prev_hash`` and ``hash``
  (absent values are ``null``, so every record has the same keys);
- keys sorted, no whitespace (separators ``,`` and ``:``), non-ASCII characters
  written as themselves (not ``\\u`` escapes), encoded as UTF-8;
- ``at`` as ISO 8601 UTC with milliseconds and ``Z`` (``2026-11-24T12:00:00.123Z``);
- ``seq``, ``status`` as JSON integers; ``duration_ms`` as a JSON number rounded to
  3 decimals (Python's shortest round-trip form, e.g. ``0.5``, ``12.345``);
- ``detail`` (type-specific fields) as a string holding canonical JSON itself.

``node`` and ``seq`` are inside the hashed bytes, so moving or renumbering a record
breaks its hash. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64

# The record fields, in the order of the table's columns (the canonical form sorts them).
FIELDS = ("node", "seq", "at", "type", "reference", "user", "serial", "fingerprint",
          "source_ip", "app", "method", "host", "path", "status", "decision", "reason",
          "rule", "factors", "actor", "duration_ms", "detail", "prev_hash", "hash")
HASHED = tuple(f for f in FIELDS if f not in ("prev_hash", "hash"))
# The hashed names in the order the canonical form writes them (sorted).
CANONICAL_ORDER = tuple(sorted(HASHED))

ChainRow = dict[str, Any]

_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode


def _encoder_in_order() -> Callable[[ChainRow], str]:
    """The same text as ``_ENCODE`` for a flat dict whose keys are already in canonical
    order: the json module's own C encoder, made once (``JSONEncoder.encode`` makes it
    again for every call, half the cost of encoding a record), not sorting the keys,
    not checking for cycles (a record's values are never containers). The plain
    encoder where the C accelerator is missing."""
    make = getattr(json.encoder, "c_make_encoder", None)
    plain = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    if make is None:
        return plain.encode
    chunks = make(None, plain.default, json.encoder.encode_basestring, None, ":", ",",
                  False, False, True)
    return lambda row: "".join(chunks(row, 0))


_ENCODE_IN_ORDER = _encoder_in_order()
_sha256 = hashlib.sha256


def format_at(at: datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``: the one form ``at`` takes in hashes.

    Cut from the plain ``isoformat()`` (``…T12:00:00.123456+00:00``, or without the
    fraction when it is zero): three times cheaper than ``timespec="milliseconds"``,
    which truncates the same way."""
    utc = at if at.tzinfo is UTC else at.astimezone(UTC)
    text = utc.isoformat()
    return text[:23] + "Z" if utc.microsecond else text[:19] + ".000Z"


def parse_at(text: str) -> datetime:
    """The datetime of a ``format_at`` string (aware UTC)."""
    at = datetime.fromisoformat(text)  # takes the ``Z`` since Python 3.11
    return at if at.tzinfo is UTC else at.astimezone(UTC)


def canonical(row: ChainRow) -> bytes:
    """The bytes a record's hash covers (see the module docstring)."""
    return _ENCODE({name: row.get(name) for name in HASHED}).encode("utf-8")


def hash_of(prev_hash: str, row: ChainRow) -> str:
    return _sha256(prev_hash.encode("ascii") + canonical(row)).hexdigest()


def detail_text(detail: dict[str, Any] | None) -> str | None:
    """Type-specific fields as the canonical JSON string stored in ``detail``."""
    return None if not detail else _ENCODE(detail)


class Chain:
    """One node's chain head; ``link`` numbers and hashes the next record."""

    def __init__(self, node: str, seq: int = 0, head: str = GENESIS) -> None:
        self.node = node
        self.seq = seq
        self.head = head

    def link(self, fields: ChainRow) -> ChainRow:
        """``fields`` (every ``HASHED`` name but node and seq) as the next record of
        this chain; the dict is completed in place and returned. Built with its keys
        in ``CANONICAL_ORDER`` (``AuditRecord.fields`` does, node and seq as
        placeholders), it is encoded without sorting; any other order costs a sort."""
        fields["node"] = self.node
        fields["seq"] = self.seq + 1
        # ``fields`` holds exactly the hashed names here, so it is encoded as it is
        # (``canonical`` picks them out of a whole row; same bytes, one dict less).
        # Encoded before the head moves: a record that can't be encoded leaves no gap.
        encode = _ENCODE_IN_ORDER if tuple(fields) == CANONICAL_ORDER else _ENCODE
        body = encode(fields).encode("utf-8")
        self.seq += 1
        fields["prev_hash"] = self.head
        fields["hash"] = self.head = _sha256(self.head.encode("ascii") + body).hexdigest()
        return fields
