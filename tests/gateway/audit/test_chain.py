"""The canonical encoding and the chain hash: stable bytes a reviewer can recompute."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.audit.chain import GENESIS, HASHED, Chain, canonical, format_at, hash_of, parse_at
from tests.gateway.audit.helpers import record


def test_the_canonical_form_is_sorted_compact_utf8_json_of_every_hashed_field() -> None:
    row = Chain("gw1").link(record(7, path="/ä").fields())
    text = canonical(row).decode("utf-8")
    assert text.startswith('{"actor":null,"app":"wiki","at":"2026-11-24T12:00:00.007Z",')
    assert '"path":"/ä"' in text and '"seq":1' in text and '"node":"gw1"' in text
    assert " " not in text and "hash" not in text  # neither hash nor prev_hash
    assert text.count(":") >= len(HASHED)


def test_hash_is_sha256_of_the_previous_hash_then_the_canonical_bytes() -> None:
    chain = Chain("gw1")
    first, second = chain.link(record(1).fields()), chain.link(record(2).fields())
    assert first["prev_hash"] == GENESIS and first["seq"] == 1
    assert first["hash"] == hashlib.sha256(GENESIS.encode() + canonical(first)).hexdigest()
    assert second["prev_hash"] == first["hash"] and second["seq"] == 2
    assert second["hash"] == hash_of(first["hash"], second)
    assert (chain.seq, chain.head) == (2, second["hash"])


def test_a_fixed_record_always_hashes_the_same() -> None:
    # A change here breaks every stored chain: the encoding is a published format.
    row = Chain("gw1").link(record(0).fields())
    assert row["hash"] == hash_of(GENESIS, row)
    assert canonical(row) == (
        b'{"actor":null,"app":"wiki","at":"2026-11-24T12:00:00.000Z","decision":"allow",'
        b'"detail":null,"duration_ms":0.5,"factors":null,"fingerprint":"' + b"ab" * 32
        + b'","host":"wiki.example.test","method":"GET","node":"gw1","path":"/",'
        b'"reason":"allowed","reference":"000000000000","rule":"wiki:allow[0]","seq":1,'
        b'"serial":"01AB","source_ip":"192.0.2.7","status":200,"type":"access",'
        b'"user":"alice"}')


def test_times_are_utc_milliseconds() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert format_at(at) == "2026-01-02T03:04:05.678Z"
    assert parse_at("2026-01-02T03:04:05.678Z") == at.replace(microsecond=678000)


def test_a_records_fields_are_exactly_the_hashed_names_but_node_and_seq() -> None:
    # Chain.link encodes the fields dict as it is: an extra or missing key would
    # change the bytes hashed at write time against those verify recomputes.
    assert set(record(1).fields()) | {"node", "seq"} == set(HASHED)


@pytest.mark.parametrize("micro", [0, 1, 999, 1000, 123456, 999999])
def test_format_at_is_the_millisecond_isoformat(micro: int) -> None:
    at = datetime(2026, 11, 24, 12, 0, 5, micro, tzinfo=UTC)
    expected = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert format_at(at) == expected
    other_zone = at.astimezone(timezone(timedelta(hours=2)))
    assert format_at(other_zone) == expected
