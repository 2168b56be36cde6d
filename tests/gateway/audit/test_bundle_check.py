"""``BundleChecker`` fed hostile lines: every one is a named problem or break and the
bundle fails, never an exception."""

from __future__ import annotations

import pytest

from gateway.audit.bundle import FORMAT, VERSION, line, record_line
from gateway.audit.bundle_check import BundleChecker
from gateway.audit.chain import Chain
from tests.gateway.audit.helpers import record

HEADER = line({"kind": "header", "format": FORMAT, "version": VERSION,
               "nodes": [{"node": "gw1", "first_seq": 1, "last_seq": 2}]})


def records() -> list[dict[str, object]]:
    chain = Chain("gw1")
    return [chain.link(record(n).fields()) for n in range(2)]


@pytest.mark.parametrize("bad", [
    b"[" * 100_000 + b"\n",
    b'{"kind":"record","node":"gw1","seq":"x"}\n',
    b'{"kind":"record","node":"gw1","seq":2}\n',
    record_line({**records()[1], "prev_hash": "\u00e9" * 64}),
    record_line({**records()[1], "hash": None}),
    b'{"kind":"checkpoint","node":"gw1","seq":1}\n',
    b'{"kind":"header","format":"certgate-audit-bundle","version":1,"nodes":"x"}\n',
    b"\xff\xfe\n",
    b"{}\n",
    b'{"kind":"end","records":"many"}\n',
], ids=["deep", "seq-text", "fields-missing", "non-hex-prev", "null-hash", "bare-checkpoint",
        "second-header", "not-utf8", "empty-object", "odd-end"])
def test_hostile_lines_fail_the_bundle_without_an_exception(bad: bytes) -> None:
    checker = BundleChecker(lambda cp: True)
    checker.line(HEADER)
    checker.line(record_line(records()[0]))
    checker.line(bad)
    result = checker.finish()
    assert not result.ok
    assert result.problems or any(n.breaks for n in result.nodes)


def test_a_bad_header_version_is_named() -> None:
    checker = BundleChecker(lambda cp: True)
    checker.line(line({"kind": "header", "format": FORMAT, "version": 99, "nodes": []}))
    assert checker.finish().problems[0].startswith("bundle format version 99 is not 1")
