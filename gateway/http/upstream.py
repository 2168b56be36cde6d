"""Connection pools to upstreams: one aiohttp ClientSession per app.

Each app gets its own TLS settings (CA bundle, pinned certificate, server name,
TLS 1.2 floor, or verification off when the admin says so), keep-alive
connections and no cookie jar; bodies pass through byte for byte.
Must not decide access or touch request bodies.
"""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp

from gateway.http.routing import AppTarget, Router

_NOT_ADDED = ("User-Agent", "Accept", "Accept-Encoding")


def upstream_ssl(app: AppTarget) -> ssl.SSLContext | aiohttp.Fingerprint | bool:
    cfg = app.config
    if not cfg.upstream.startswith("https://") and not any(
            r.upstream.scheme == "https" for r in app.routes):
        return True
    if cfg.upstream_pin_sha256:
        # Pinning replaces chain verification: the exact certificate is the trust.
        return aiohttp.Fingerprint(bytes.fromhex(cfg.upstream_pin_sha256))
    if not cfg.upstream_verify:
        return False
    ctx = ssl.create_default_context(cafile=str(cfg.upstream_ca) if cfg.upstream_ca else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class UpstreamPool:
    """The sessions of all apps of one config; closed together."""

    def __init__(self, router: Router) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._request_kwargs: dict[str, dict[str, Any]] = {}
        for app in router.apps.values():
            connector = aiohttp.TCPConnector(ssl=upstream_ssl(app), limit=0,
                                             limit_per_host=256, keepalive_timeout=60,
                                             enable_cleanup_closed=True)
            self._sessions[app.name] = aiohttp.ClientSession(
                connector=connector, auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                # aiohttp would otherwise add Accept, Accept-Encoding and User-Agent a
                # client did not send; with auto_decompress off, an upstream would then
                # gzip a body for a client that never asked for it.
                skip_auto_headers=_NOT_ADDED,
                timeout=aiohttp.ClientTimeout(total=None))
            kwargs: dict[str, Any] = {}
            if app.config.upstream_server_name:
                kwargs["server_hostname"] = app.config.upstream_server_name
            self._request_kwargs[app.name] = kwargs

    def session(self, app: str) -> aiohttp.ClientSession:
        return self._sessions[app]

    def request_kwargs(self, app: str) -> dict[str, Any]:
        return self._request_kwargs[app]

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
