"""Host and route tables: which app a request is for, and which upstream route serves it.

Built once per config (and rebuilt on reload); per request it is one dict lookup
for the host and a short scan of the app's path-prefix routes, longest first.
Must not decide access: that is the policy engine's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from gateway.config import AppConfig
from gateway.http.paths import PathRules
from policies.model import KNOWN_METHODS


@dataclass(frozen=True, slots=True)
class RouteTarget:
    app: str
    prefix: str
    upstream: URL
    websockets: bool
    max_body_size: int
    ws_idle_timeout: float
    ws_ping_interval: float | None
    # Connect and read timeouts, built once here rather than on every request.
    timeout: aiohttp.ClientTimeout
    origin: str  # "http://10.0.0.5:8080", no slash

    def matches(self, path: str) -> bool:
        p = self.prefix
        return p == "/" or path == p or path.startswith(p + "/")


@dataclass(frozen=True, slots=True)
class AppTarget:
    config: AppConfig
    ports: frozenset[int]
    routes: tuple[RouteTarget, ...]  # longest prefix first, the app default last
    path_rules: PathRules
    methods: frozenset[str]  # the standard set plus the app's extra_methods
    # Per-(host, port) response header rewriters, filled by gateway.http.forward on use.
    rewriters: dict[tuple[str, int], Any] = field(default_factory=dict, compare=False,
                                                  repr=False)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def host(self) -> str:
        return self.config.host

    def route_for(self, path: str) -> RouteTarget:
        for route in self.routes:
            if route.matches(path):
                return route
        return self.routes[-1]

    @property
    def upstream_origins(self) -> set[str]:
        out = set()
        for route in self.routes:
            u = route.upstream
            out.add(str(u.origin()))
            if u.is_default_port():
                # "http://10.0.0.5:80" and "http://10.0.0.5" name the same origin
                out.add(f"{u.scheme}://{u.host}:{u.port}")
        return out


def _route(app: AppConfig, prefix: str, **override: object) -> RouteTarget:
    def pick(name: str) -> object:
        value = override.get(name)
        return getattr(app, name) if value is None else value

    upstream = URL(str(pick("upstream")))
    ping = pick("ws_ping_interval")
    return RouteTarget(
        app=app.name, prefix=prefix, upstream=upstream, websockets=bool(pick("websockets")),
        max_body_size=int(pick("max_body_size")),  # type: ignore[call-overload]
        ws_idle_timeout=pick("ws_idle_timeout").total_seconds(),  # type: ignore[attr-defined]
        ws_ping_interval=ping.total_seconds() if ping is not None else None,  # type: ignore[attr-defined]
        timeout=aiohttp.ClientTimeout(
            total=None,
            sock_connect=pick("connect_timeout").total_seconds(),  # type: ignore[attr-defined]
            sock_read=pick("read_timeout").total_seconds()),  # type: ignore[attr-defined]
        origin=str(upstream.origin()),
    )


def build_app_target(app: AppConfig) -> AppTarget:
    routes = [
        _route(app, r.path, **{k: v for k, v in r.model_dump().items() if k != "path"})
        for r in sorted(app.routes, key=lambda r: len(r.path), reverse=True)
    ]
    routes.append(_route(app, "/"))
    return AppTarget(app, frozenset(app.ports), tuple(routes), path_rules_for(app),
                     KNOWN_METHODS | frozenset(app.extra_methods))


def path_rules_for(app: AppConfig) -> PathRules:
    """How the app's server reads paths, from its ``path_parameters``/``path_case`` keys."""
    return PathRules(parameters=app.path_parameters == "allow",
                     windows=app.path_case == "insensitive")


class Router:
    """host -> app, restricted to the ports each app is published on."""

    def __init__(self, apps: Sequence[AppConfig]) -> None:
        self.apps: dict[str, AppTarget] = {a.host: build_app_target(a) for a in apps}
        self.extra_ports = frozenset(p for a in self.apps.values() for p in a.ports)

    def app_for(self, host: str, port: int) -> AppTarget | None:
        """The app for ``host`` if it is published on the local ``port``.

        Every app answers on the main listener; an extra port (FreePBX's 8003,
        3CX's 5001) reaches only the apps that list it.
        """
        app = self.apps.get(host)
        if app is None or (port in self.extra_ports and port not in app.ports):
            return None
        return app
