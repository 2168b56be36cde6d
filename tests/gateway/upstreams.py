"""Sample upstream apps for the gateway tests, served by real aiohttp servers on loopback."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import WSMsgType, web

MiB = 2**20


@dataclass
class Seen:
    """What the upstream received, for assertions."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    upload_bytes: int = 0
    upload_sha256: str = ""

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]


def servlet_path(raw_path: str) -> str:
    """The path a servlet container (Tomcat, Jetty) routes for ``raw_path``.

    Like them: strip ';' parameters from every segment, then percent-decode, then
    resolve dot segments. ``/admin;x/secret`` and ``/public/..;/admin`` both route
    into ``/admin``.
    """
    segments = [s.split(";", 1)[0] for s in raw_path.split("?", 1)[0].split("/")]
    out: list[str] = []
    for segment in unquote("/".join(segments)).split("/")[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment not in (".", ""):
            out.append(segment)
    return "/" + "/".join(out)


def upstream_app(seen: Seen) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        seen.requests.append({"path": request.raw_path, "method": request.method,
                              "routed": servlet_path(request.raw_path),
                              "headers": dict(request.headers)})
        return web.json_response(seen.last)

    async def redirect(request: web.Request) -> web.Response:
        seen.requests.append({"path": request.raw_path, "headers": dict(request.headers)})
        host = request.transport.get_extra_info("sockname")  # type: ignore[union-attr]
        return web.Response(status=302, headers={
            "Location": f"http://127.0.0.1:{host[1]}/landing?x=1",
            "Refresh": f"0; url=http://127.0.0.1:{host[1]}/r",
            "Set-Cookie": "sid=1; Domain=127.0.0.1; Path=/; HttpOnly"})

    async def php_redirect(request: web.Request) -> web.Response:
        # Like a PHP app behind a TLS-terminating proxy: absolute URLs from the Host
        # header, always http://, X-Forwarded-Proto ignored.
        return web.Response(status=302, headers={
            "Location": f"http://{request.host}/landed",
            "Content-Location": f"http://{request.host}/doc",
            "Refresh": f"0; url=http://{request.host}/r"})

    async def big(request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("mib", "1")) * MiB
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = size
        await response.prepare(request)
        chunk = b"\xab" * MiB
        for _ in range(size // MiB):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def upload(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        seen.upload_bytes = 0
        async for chunk in request.content.iter_chunked(MiB):
            seen.upload_bytes += len(chunk)
            digest.update(chunk)
        seen.upload_sha256 = digest.hexdigest()
        return web.json_response({"bytes": seen.upload_bytes, "sha256": seen.upload_sha256})

    async def ws(request: web.Request) -> web.StreamResponse:
        sock = web.WebSocketResponse(protocols=("sip", "chat"))
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        if offered and not {p.strip() for p in offered.split(",")} & {"sip", "chat"}:
            return web.Response(status=400, text="unknown subprotocol")  # like Asterisk
        await sock.prepare(request)
        seen.requests.append({"path": request.raw_path, "headers": dict(request.headers)})
        async for msg in sock:
            if msg.type is WSMsgType.TEXT:
                if msg.data == "close-4001":
                    await sock.close(code=4001, message=b"bye from upstream")
                    break
                await sock.send_str(f"echo:{msg.data}")
        return sock

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)  # long enough to be in flight when the gateway stops
        return web.Response(text="finished")

    app = web.Application(client_max_size=4 * MiB)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/php-redirect", php_redirect)
    app.router.add_get("/big", big)
    app.router.add_post("/upload", upload)
    app.router.add_get("/ws", ws)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def start(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])
