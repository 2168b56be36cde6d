"""Recovery codes: ten, readable, stored hashed, each matching only itself."""

from __future__ import annotations

from gateway.auth.recovery import hash_recovery_code, matching_code, new_recovery_codes


def test_codes_are_distinct_readable_and_match_once() -> None:
    codes = new_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(len(c) == 11 and c[5] == "-" for c in codes)
    assert not any(ch in c for c in codes for ch in "01oli")  # no look-alikes
    hashes: list[str | None] = [hash_recovery_code(c) for c in codes[:3]]
    assert all(codes[0] not in h for h in hashes if h)
    assert matching_code(codes[1], hashes) == 1
    assert matching_code(codes[1].upper().replace("-", " "), hashes) == 1
    hashes[1] = None  # used
    assert matching_code(codes[1], hashes) is None
    assert matching_code(codes[5], hashes) is None
    assert matching_code("", hashes) is None
    assert matching_code("123456", hashes) is None  # a TOTP code is not a recovery code
