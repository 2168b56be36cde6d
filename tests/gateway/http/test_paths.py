"""Path normalisation: one form for the policy and the upstream; ambiguity refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.http.paths import (
    STRICT,
    AmbiguousPathError,
    PathRules,
    _normalise,
    judged_path,
    normalise_path,
)
from tests.gateway.upstreams import servlet_path

MATRIX = PathRules(parameters=True)
WINDOWS = PathRules(windows=True)


@pytest.mark.parametrize(("raw", "expected"), [
    ("/", "/"), ("/a/b", "/a/b"), ("/a/../b", "/b"), ("/a/./b", "/a/b"), ("//a///b", "/a/b"),
    ("/a/b/", "/a/b/"), ("/a/b/..", "/a/"), ("/a/b/.", "/a/b/"), ("/a/%2e%2e/b", "/b"),
    ("/a/%2E/b", "/a/b"), ("/%7Euser", "/~user"), ("/%41%42", "/AB"), ("/a%2ab", "/a%2Ab"),
    ("/caf%c3%a9", "/caf%C3%A9"), ("/admin/..//x", "/x"), ("/100%25", "/100%25"),
    ("/%25zz", "/%25zz"),
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
    ("/admin;x/secret", "';' parameters"), ("/a;b=c/d", "';' parameters"),
    ("/admin%3bx", "';' parameters"), ("/public/..;/private", "';' parameters"),
    ("/%c0%ae%c0%ae/admin", "not valid UTF-8"), ("/%ed%a0%80", "not valid UTF-8"),
    ("/%ff", "not valid UTF-8"), ("/caf%c3", "not valid UTF-8"),
    ("/%252e%252e/admin", "double percent-encoding"), ("/a%252fb", "double percent-encoding"),
])
def test_ambiguous_paths_are_refused(raw: str, why: str) -> None:
    with pytest.raises(AmbiguousPathError, match=why):
        normalise_path(raw)


@pytest.mark.parametrize(("raw", "forwarded", "judged"), [
    ("/a;b=c/d", "/a;b=c/d", "/a/d"),
    ("/admin;jsessionid=ABC/secret", "/admin;jsessionid=ABC/secret", "/admin/secret"),
    ("/public/..;/private", "/private", "/private"),  # Tomcat reads '..;' as '..'
    ("/public/.;x/y", "/public/y", "/public/y"),
    ("/;x/admin", "/admin", "/admin"),
    ("/a/b;v=1/", "/a/b;v=1/", "/a/b/"),
    ("/a%3bb", "/a%3Bb", "/a%3Bb"),  # an encoded ';' is data, not a parameter
])
def test_parameters_when_the_app_accepts_them(raw: str, forwarded: str, judged: str) -> None:
    assert normalise_path(raw, MATRIX) == forwarded
    assert judged_path(forwarded) == judged


@pytest.mark.parametrize(("raw", "rules"), [
    ("/admin./x", WINDOWS), ("/admin%20/x", WINDOWS), ("/a/b.", WINDOWS),
    ("/admin.;x/y", PathRules(parameters=True, windows=True)),
])
def test_windows_aliases_are_refused(raw: str, rules: PathRules) -> None:
    with pytest.raises(AmbiguousPathError, match="dot or a space"):
        normalise_path(raw, rules)
    normalise_path(raw.replace(";x", ""), STRICT)  # only refused for Windows servers


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
@given(st.text(alphabet="/.%2eEfF5cCab0~-_:@;", max_size=30),
       st.sampled_from([STRICT, MATRIX]))
def test_fast_path_agrees_with_the_full_walk(raw: str, rules: PathRules) -> None:
    # normalise_path answers already-normal paths with one regex match; whatever it
    # returns must be what the full segment walk would have returned.
    def outcome(fn: object) -> str:
        try:
            return fn("/" + raw, rules)  # type: ignore[operator, no-any-return]
        except AmbiguousPathError:
            return "refused"

    assert outcome(normalise_path) == outcome(_normalise)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="/.%2eEb;=x", max_size=30))
def test_judged_path_is_what_a_servlet_container_routes(raw: str) -> None:
    # With parameters accepted, the policy judges the path a container would route.
    try:
        forwarded = normalise_path("/" + raw, MATRIX)
    except AmbiguousPathError:
        return
    judged = judged_path(forwarded)
    assert ";" not in judged
    assert servlet_path(forwarded) == servlet_path(judged)
