"""Host and route tables: host -> app, extra ports, longest route prefix, per-route
overrides, and the path rules each app's server implies."""

from __future__ import annotations

from typing import Any

import pytest
from yarl import URL

from gateway.config import AppConfig
from gateway.http.paths import PathRules
from gateway.http.routing import Router, build_app_target

MAIN_PORT = 8443


def app(name: str, **extra: Any) -> AppConfig:
    return AppConfig.model_validate({"name": name, "host": f"{name}.test",
                                     "upstream": "http://10.0.0.1:8080",
                                     "allow": [{"groups": ["staff"]}], **extra})


ROUTER = Router([
    app("wiki", routes=[{"path": "/api"}, {"path": "/api/v2"}, {"path": "/files"}]),
    app("pbx", ports=[8003, 5001]),
    app("crm", ports=[5001]),
])


@pytest.mark.parametrize(("host", "port", "expected"), [
    ("wiki.test", MAIN_PORT, "wiki"),
    ("pbx.test", MAIN_PORT, "pbx"),          # every app answers on the main listener
    ("pbx.test", 8003, "pbx"),
    ("crm.test", 5001, "crm"),               # a port two apps share reaches both
    ("pbx.test", 5001, "pbx"),
    ("wiki.test", 8003, None),               # an extra port reaches only the apps listing it
    ("crm.test", 8003, None),
    ("nope.test", MAIN_PORT, None),          # unknown host: no app, never a default one
])
def test_app_for_host_and_port(host: str, port: int, expected: str | None) -> None:
    found = ROUTER.app_for(host, port)
    assert (found.name if found else None) == expected


def test_extra_ports_are_the_union_of_the_apps_ports() -> None:
    assert ROUTER.extra_ports == frozenset({8003, 5001})


@pytest.mark.parametrize(("path", "prefix"), [
    ("/api/v2/users", "/api/v2"),   # longest prefix wins over /api
    ("/api/v2", "/api/v2"),
    ("/api/v1/users", "/api"),
    ("/api", "/api"),
    ("/api2", "/"),                 # a prefix matches whole segments only
    ("/api/v20", "/api"),
    ("/files/a.pdf", "/files"),
    ("/", "/"),
    ("/other", "/"),
])
def test_route_for_picks_the_longest_matching_prefix(path: str, prefix: str) -> None:
    wiki = ROUTER.apps["wiki.test"]
    assert wiki.route_for(path).prefix == prefix


def test_routes_are_ordered_longest_first_with_the_app_default_last() -> None:
    wiki = ROUTER.apps["wiki.test"]
    assert [r.prefix for r in wiki.routes] == ["/api/v2", "/files", "/api", "/"]


def test_route_overrides_and_inheritance() -> None:
    target = build_app_target(app(
        "wiki", websockets=True, max_body_size="512MiB", read_timeout="30s",
        ws_ping_interval="20s",
        routes=[{"path": "/upload", "max_body_size": "1MiB", "upstream": "https://files:8443",
                 "websockets": False, "read_timeout": "5m", "connect_timeout": "2s"}]))
    upload, default = target.routes
    assert (upload.prefix, default.prefix) == ("/upload", "/")
    assert upload.upstream == URL("https://files:8443")
    assert upload.origin == "https://files:8443"
    assert upload.max_body_size == 2**20
    assert upload.websockets is False
    assert upload.timeout.sock_read == 300 and upload.timeout.sock_connect == 2
    assert upload.timeout.total is None  # a long download is not cut at a total time
    # What the route does not set, it inherits from the app.
    assert upload.ws_ping_interval == 20 and upload.ws_idle_timeout == 3600
    assert default.upstream == URL("http://10.0.0.1:8080")
    assert default.max_body_size == 512 * 2**20
    assert default.websockets is True
    assert default.timeout.sock_read == 30 and default.timeout.sock_connect == 10
    assert default.ws_ping_interval == 20
    assert target.upstream_origins == {"https://files:8443", "http://10.0.0.1:8080"}


def test_default_port_upstream_has_both_origin_spellings() -> None:
    target = build_app_target(app("wiki", upstream="http://intranet"))
    assert target.upstream_origins == {"http://intranet", "http://intranet:80"}
    assert target.routes[-1].ws_ping_interval is None


@pytest.mark.parametrize(("keys", "rules"), [
    ({}, PathRules(parameters=False, windows=False)),
    ({"path_parameters": "allow"}, PathRules(parameters=True, windows=False)),
    ({"path_case": "insensitive"}, PathRules(parameters=False, windows=True)),
    ({"path_parameters": "allow", "path_case": "insensitive"},
     PathRules(parameters=True, windows=True)),
])
def test_path_rules_follow_the_apps_server(keys: dict[str, str], rules: PathRules) -> None:
    assert build_app_target(app("wiki", **keys)).path_rules == rules
