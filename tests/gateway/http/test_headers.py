"""Header hygiene in both directions."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.http.headers import (
    OriginRewriter,
    client_response_headers,
    is_spoofable,
    upstream_request_headers,
)


def proxy(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


@pytest.mark.parametrize(("name", "spoofable"), [
    ("X-Certgate-User", True), ("x-certgate-anything", True), ("X-Forwarded-For", True),
    ("Forwarded", True), ("X-Real-IP", True), ("X-Client-Cert", True), ("X-SSL-Client-DN", True),
    ("Ssl-Client-Verify", True), ("Remote-User", True), ("Host", True),
    ("X-Original-URL", True), ("X-Rewrite-URL", True), ("True-Client-IP", True),
    ("X-Client-IP", True), ("Client-IP", True), ("CF-Connecting-IP", True),
    ("X-ARR-ClientCert", True), ("X-ARR-SSL", True), ("X-Forwarded", True),
    ("X-Forwarded-Server", True), ("X-Original-Forwarded-For", True),
    ("X-HTTP-Method-Override", True), ("X-Method-Override", True), ("X-HTTP-Method", True),
    ("X-Cluster-Client-IP", True), ("Fastly-Client-IP", True), ("X-Host", True),
    ("Cookie", False), ("Referer", False), ("Origin", False), ("Authorization", False),
    ("X-Requested-With", False), ("X-CSRF-Token", False),
])
def test_spoofable_headers(name: str, spoofable: bool) -> None:
    assert is_spoofable(name) is spoofable


def test_upstream_headers_strip_and_set() -> None:
    incoming = proxy(("Host", "wiki.test"), ("X-Forwarded-For", "6.6.6.6"),
                     ("X-Certgate-User", "ceo"), ("Connection", "keep-alive, X-Secret"),
                     ("X-Secret", "1"), ("Keep-Alive", "300"), ("Cookie", "a=1"),
                     ("Origin", "https://wiki.test"), ("TE", "trailers"))
    out = upstream_request_headers(incoming, client_ip="192.0.2.9", public_host="wiki.test",
                                   public_port=443, host_header="wiki.test",
                                   identity={"X-Certgate-User": "alice"})
    assert dict(out) == {"Cookie": "a=1", "Origin": "https://wiki.test", "Host": "wiki.test",
                         "X-Forwarded-For": "192.0.2.9", "X-Forwarded-Proto": "https",
                         "X-Forwarded-Host": "wiki.test", "X-Forwarded-Port": "443",
                         "X-Certgate-User": "alice"}


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("Location", "http://10.0.0.5/x", "https://pbx.test/x"),
    ("Location", "http://10.0.0.5:80/x?y=1", "https://pbx.test/x?y=1"),
    ("Location", "https://10.0.0.5:8443", "https://pbx.test"),
    ("Location", "/relative", "/relative"),
    ("Location", "http://10.0.0.50/x", "http://10.0.0.50/x"),  # another host: untouched
    ("Refresh", "0; url=http://10.0.0.5/admin", "0; url=https://pbx.test/admin"),
    ("Set-Cookie", "s=1; Domain=10.0.0.5; Path=/", "s=1; Domain=pbx.test; Path=/"),
    ("Set-Cookie", "s=1; Domain=other.test", "s=1; Domain=other.test"),
])
def test_response_rewrites(name: str, value: str, expected: str) -> None:
    rewriter = OriginRewriter(["http://10.0.0.5", "http://10.0.0.5:80", "https://10.0.0.5:8443"],
                              ["10.0.0.5"], "https://pbx.test", "pbx.test")
    out = client_response_headers(proxy((name, value), ("Connection", "close"),
                                        ("Transfer-Encoding", "chunked")), rewriter=rewriter)
    assert dict(out) == {name: expected}


@pytest.mark.parametrize(("name", "value", "expected"), [
    # PHP apps build absolute URLs from the Host they got and ignore X-Forwarded-Proto.
    ("Location", "http://wiki.test:8443/x", "https://wiki.test:8443/x"),
    ("Location", "http://WIKI.test:8443", "https://wiki.test:8443"),
    ("Location", "http://wiki.test/x", "https://wiki.test:8443/x"),
    ("Content-Location", "http://wiki.test:8443/doc?id=1", "https://wiki.test:8443/doc?id=1"),
    ("Refresh", "3; url=http://wiki.test:8443/y", "3; url=https://wiki.test:8443/y"),
    ("Location", "http://wiki.test:9000/x", "http://wiki.test:9000/x"),  # another port
    ("Location", "http://wiki.test.evil/x", "http://wiki.test.evil/x"),  # another host
    ("Location", "https://wiki.test:8443/x", "https://wiki.test:8443/x"),
])
def test_plain_http_public_origin_becomes_https(name: str, value: str, expected: str) -> None:
    rewriter = OriginRewriter(["http://10.0.0.10:8080"], ["10.0.0.10"],
                              "https://wiki.test:8443", "wiki.test")
    out = client_response_headers(proxy((name, value)), rewriter=rewriter)
    assert dict(out) == {name: expected}


@pytest.mark.parametrize(("cookie", "forwarded"), [
    ("__Host-certgate-session=abc", None),
    ("a=1; __Host-certgate-session=abc; b=2", "a=1; b=2"),
    ("__Host-certgate-session=abc;sid=9", "sid=9"),
    ("sid=9", "sid=9"),
    ("x__Host-certgate-session=1", "x__Host-certgate-session=1"),
])
def test_the_gateways_session_cookie_never_reaches_the_upstream(cookie: str,
                                                               forwarded: str | None) -> None:
    out = upstream_request_headers(proxy(("Cookie", cookie)), client_ip="192.0.2.9",
                                   public_host="wiki.test", public_port=443,
                                   host_header="wiki.test", identity={})
    assert out.get("Cookie") == forwarded
