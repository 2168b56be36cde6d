"""Path normalisation: one form for the policy and the upstream; ambiguity refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.paths import AmbiguousPathError, _normalise, normalise_path


@pytest.mark.parametrize(("raw", "expected"), [
    ("/", "/"), ("/a/b", "/a/b"), ("/a/../b", "/b"), ("/a/./b", "/a/b"), ("//a///b", "/a/b"),
    ("/a/b/", "/a/b/"), ("/a/b/..", "/a/"), ("/a/b/.", "/a/b/"), ("/a/%2e%2e/b", "/b"),
    ("/a/%2E/b", "/a/b"), ("/%7Euser", "/~user"), ("/%41%42", "/AB"), ("/a%2ab", "/a%2Ab"),
    ("/caf%c3%a9", "/caf%C3%A9"), ("/a;b=c/d", "/a;b=c/d"), ("/admin/..//x", "/x"),
])
def test_normal_forms(raw: str, expected: str) -> None:
    assert normalise_path(raw) == expected


@pytest.mark.parametrize(("raw", "why"), [
    ("/a%2fb", "encoded slash"), ("/a%2Fb", "encoded slash"), ("/a%5cb", "encoded slash"),
    ("/a\\b", "backslash"), ("/a%00", "control character"), ("/a%0a", "control character"),
    ("/..", "climbs above the root"), ("/%2e%2e", "climbs above the root"),
    ("/a/../../b", "climbs above the root"), ("/a%zz", "malformed percent-escape"),
    ("/a%2", "malformed percent-escape"), ("a/b", "must start with '/'"),
    ("/a b", "must be percent-encoded"), ("/\x00", "must be percent-encoded"),
    ("/é", "must be percent-encoded"),
])
def test_ambiguous_paths_are_refused(raw: str, why: str) -> None:
    with pytest.raises(AmbiguousPathError, match=why):
        normalise_path(raw)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="/.%2eEfF5cCab0~", max_size=30))
def test_normal_form_is_a_fixed_point_without_tricks(raw: str) -> None:
    try:
        path = normalise_path("/" + raw)
    except AmbiguousPathError:
        return
    assert normalise_path(path) == path
    assert "//" not in path and "/../" not in path + "/" and "/./" not in path + "/"
    assert "\\" not in path and "%2F" not in path.upper()


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="/.%2eEfF5cCab0~-_:@", max_size=30))
def test_fast_path_agrees_with_the_full_walk(raw: str) -> None:
    # normalise_path answers already-normal paths with one regex match; whatever it
    # returns must be what the full segment walk would have returned.
    def outcome(fn: object) -> str:
        try:
            return fn("/" + raw)  # type: ignore[operator, no-any-return]
        except AmbiguousPathError:
            return "refused"

    assert outcome(normalise_path) == outcome(_normalise)
