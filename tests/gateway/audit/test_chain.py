"""The canonical encoding and the chain hash: stable bytes a reviewer can recompute."""

from __future__ import annotations

import hashlib
import json
import json.encoder
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.audit import chain as chain_module
from gateway.audit.chain import (
    CANONICAL_ORDER,
    GENESIS,
    HASHED,
    Chain,
    canonical,
    format_at,
    hash_of,
    parse_at,
)
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


def test_a_records_fields_are_exactly_the_hashed_names_in_canonical_order() -> None:
    # Chain.link encodes the fields dict as it is: an extra or missing key would
    # change the bytes hashed at write time against those verify recomputes, and
    # keys out of order would take the slower sorting encoder.
    fields = record(1).fields()
    assert set(fields) == set(HASHED) and tuple(fields) == CANONICAL_ORDER
    assert fields["node"] is None and fields["seq"] is None


_AWKWARD = ["/ä", '/"quoted"\\back', "/tab\tnew\nline\x01", "/\u2028\u00e9\U0001f600",
            "/%00", "/" + "x" * 5000]


@pytest.mark.parametrize("path", _AWKWARD)
@pytest.mark.parametrize("in_order", [True, False])
def test_linking_without_sorting_hashes_the_same_bytes_verify_recomputes(
        path: str, in_order: bool) -> None:
    # The writer's fast path (keys already in canonical order, no sort) and any other
    # key order must give the exact bytes ``canonical`` (sorted) gives at verify time.
    made = record(3, path=path, user="zoë")._replace(
        detail={"b": 1, "a": [1.5, None, "é"]}, duration_ms=12.3456, status=None).fields()
    fields = made if in_order else dict(reversed(made.items()))
    row = Chain("gw1", 4, "ab" * 32).link(fields)
    assert row["hash"] == hash_of("ab" * 32, row)
    assert row["seq"] == 5 and row["prev_hash"] == "ab" * 32


@pytest.mark.parametrize("micro", [0, 1, 999, 1000, 123456, 999999])
def test_format_at_is_the_millisecond_isoformat(micro: int) -> None:
    at = datetime(2026, 11, 24, 12, 0, 5, micro, tzinfo=UTC)
    expected = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert format_at(at) == expected
    other_zone = at.astimezone(timezone(timedelta(hours=2)))
    assert format_at(other_zone) == expected


def test_a_value_json_cannot_take_is_refused_and_leaves_no_gap() -> None:
    chain = Chain("gw1")
    fields = record(1).fields()
    fields["app"] = object()
    with pytest.raises(TypeError):
        chain.link(fields)
    assert (chain.seq, chain.head) == (0, GENESIS)


def test_without_the_c_accelerator_the_in_order_text_is_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {**record(2, path="/é\n").fields(), "node": "gw1", "seq": 2}
    fast = chain_module._encoder_in_order()(fields)
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert chain_module._encoder_in_order()(fields) == fast == chain_module._ENCODE(fields)
