"""Doctor check of every upstream: a TCP connect, and a TLS handshake for https
upstreams verified as the gateway verifies them (``upstream_ca``, the pin,
``upstream_verify``), each with a short timeout, all at once.

Opens connections and closes them; sends no request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.config import AppConfig, Config
from gateway.ops.doctor.findings import Finding, failed, passed


@dataclass(frozen=True)
class Target:
    url: str
    apps: tuple[str, ...]
    config: AppConfig  # the first app's TLS settings for this URL


def targets(config: Config) -> list[Target]:
    """Each distinct upstream URL (apps and routes), with the apps that use it."""
    seen: dict[str, tuple[list[str], AppConfig]] = {}
    for app in config.apps:
        for url in [app.upstream, *(r.upstream for r in app.routes if r.upstream)]:
            names, _ = seen.setdefault(url, ([], app))
            if app.name not in names:
                names.append(app.name)
    return [Target(url, tuple(names), app) for url, (names, app) in seen.items()]


def _context(app: AppConfig) -> ssl.SSLContext:
    if app.upstream_pin_sha256 or not app.upstream_verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=str(app.upstream_ca) if app.upstream_ca else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def check_upstream(target: Target, within: float) -> Finding:
    parts = urlsplit(target.url)
    https = parts.scheme == "https"
    host = (parts.hostname or "").strip("[]")
    port = parts.port or (443 if https else 80)
    app = target.config
    check = f"upstream:{','.join(target.apps)}"
    fix = f"start the app's server at {target.url}, or correct upstream of " \
          f"{', '.join(target.apps)}; until then its users get 502"
    started = time.monotonic()
    try:
        async with asyncio.timeout(within):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return failed(check, f"{target.url}: no TCP answer within {within:.0f} s", fix)
    except OSError as exc:
        return failed(check, f"{target.url}: cannot connect ({exc.strerror or exc})", fix)
    try:
        if not https:
            return passed(check, f"{target.url} accepts connections "
                                 f"({(time.monotonic() - started) * 1000:.0f} ms)")
        try:
            async with asyncio.timeout(within):
                await writer.start_tls(_context(app),
                                       server_hostname=app.upstream_server_name or host)
        except (ssl.SSLError, OSError, TimeoutError) as exc:
            why = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) \
                or str(exc) or type(exc).__name__
            return failed(check, f"{target.url}: the TLS handshake failed ({why})",
                          "set upstream_ca to the CA that signed the app's certificate, "
                          "upstream_server_name to a name it carries, or upstream_pin_sha256")
        if app.upstream_pin_sha256:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            if hashlib.sha256(der).hexdigest() != app.upstream_pin_sha256:
                return failed(check, f"{target.url}: its certificate is not the pinned one",
                              "update upstream_pin_sha256 to the app's new certificate's "
                              "SHA-256, after checking that the change is expected")
        return passed(check, f"{target.url} completes a TLS handshake "
                             f"({(time.monotonic() - started) * 1000:.0f} ms)")
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def check_upstreams(config: Config, within: float) -> list[Finding]:
    return list(await asyncio.gather(*(check_upstream(t, within) for t in targets(config))))
