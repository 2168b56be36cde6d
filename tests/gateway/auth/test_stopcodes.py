"""Stop codes: format, tolerant input, argon2id hashes that verify only their code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.auth.lost import Attempts
from gateway.auth.stopcodes import (
    ALPHABET,
    code_matches,
    hash_stop_code,
    new_stop_code,
    normalise,
    well_formed,
)


def test_codes_are_printable_groups_without_look_alikes() -> None:
    codes = {new_stop_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4]
        assert set("".join(groups)) <= set(ALPHABET)
        assert not set("01ilo") & set(code)


@pytest.mark.parametrize(("typed", "ok"), [
    ("k7m2-pq9x-w4ab", True), ("K7M2 PQ9X W4AB", True), ("k7m2pq9xw4ab", True),
    (" k7m2-pq9x-w4ab ", True), ("k7m2-pq9x-w4a", False), ("k7m2-pq9x-w4a0", False),
    ("", False), ("k7m2-pq9x-w4abc", False)])
def test_input_is_accepted_the_way_people_type_it(typed: str, ok: bool) -> None:
    assert well_formed(typed) is ok


def test_the_hash_verifies_only_its_code_and_holds_no_clear_text() -> None:
    code = new_stop_code()
    stored = hash_stop_code(code)
    assert stored.startswith("$argon2id$")
    assert normalise(code) not in stored and code not in stored
    assert code_matches(stored, code.upper().replace("-", " "))
    assert not code_matches(stored, new_stop_code())
    assert not code_matches("not a hash", code)


def test_attempts_count_within_a_sliding_window() -> None:
    now = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    window = timedelta(minutes=15)
    tries = Attempts()
    assert [tries.take("1.2.3.4", 3, window, now) for _ in range(4)] == [True, True, True,
                                                                         False]
    assert tries.take("5.6.7.8", 3, window, now)  # another key has its own count
    assert tries.take("1.2.3.4", 3, window, now + window + timedelta(seconds=1))
