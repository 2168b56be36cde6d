"""Connection pools to upstreams: one aiohttp ClientSession per app.

Each app gets its own TLS settings (CA bundle, pinned certificate, server name,
TLS 1.2 floor, or verification off when the admin says so), keep-alive
connections and no cookie jar; bodies pass through byte for byte. A reload
retires the old pools: ``RetiredPools`` keeps them open for requests in flight and
closes each after a grace period, or all at once when the gateway stops.
Must not decide access or touch request bodies.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp

from gateway.http.routing import AppTarget, Router

# Headers aiohttp's client would add when the client did not send them. Listing one
# here only stops the adding: a header the client sent is forwarded as it came.
# Content-Type: a streamed body (and any POST/PUT/PATCH) would otherwise reach the
# upstream labelled application/octet-stream, which some apps then parse as such.
_NOT_ADDED = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


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
        # Every TLS setting first (reading a CA bundle can fail), sessions after: a
        # failure must not leave sessions behind that nobody will ever close.
        tls = {app.name: upstream_ssl(app) for app in router.apps.values()}
        for app in router.apps.values():
            connector = aiohttp.TCPConnector(ssl=tls[app.name], limit=0,
                                             limit_per_host=256, keepalive_timeout=60,
                                             enable_cleanup_closed=True)
            self._sessions[app.name] = aiohttp.ClientSession(
                connector=connector, auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                # aiohttp would otherwise add Accept, Accept-Encoding, User-Agent and
                # Content-Type a client did not send; with auto_decompress off, an
                # upstream would then gzip a body for a client that never asked for it.
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

    @property
    def closed(self) -> bool:
        return all(session.closed for session in self._sessions.values())

    async def close(self) -> None:
        """Close every session; closing twice is harmless."""
        for session in self._sessions.values():
            await session.close()


class RetiredPools:
    """Pools a reload replaced: open while requests in flight may still use them.

    Each closes ``grace`` seconds after it was retired, or in ``close`` (at stop),
    whichever comes first, so that none is left for the garbage collector to find
    open ("Unclosed client session").
    """

    def __init__(self, grace: float = 300.0) -> None:
        self._grace = grace
        self._pending: dict[UpstreamPool, asyncio.Task[None]] = {}

    def retire(self, pool: UpstreamPool) -> None:
        self._pending[pool] = asyncio.create_task(self._close_after_grace(pool),
                                                  name="retired-upstream-pool")

    async def _close_after_grace(self, pool: UpstreamPool) -> None:
        await asyncio.sleep(self._grace)
        await pool.close()
        del self._pending[pool]

    async def close(self) -> None:
        """Close every retired pool still open, now."""
        pending, self._pending = self._pending, {}
        for task in pending.values():
            task.cancel()
        if pending:
            await asyncio.wait(pending.values())
        for pool in pending:
            await pool.close()

    def __len__(self) -> int:
        return len(self._pending)
