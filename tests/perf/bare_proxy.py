"""The Python floor: the smallest honest aiohttp mTLS reverse proxy (not certgate).

Usage: bare_proxy.py PORT UPSTREAM_URL CERT KEY CLIENT_CA [WORKERS]
Streams bodies both ways, keeps upstream connections alive, verifies client certificates.
"""

import asyncio
import os
import ssl
import sys

import aiohttp
from aiohttp import web

HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "host"}


async def handle(request: web.Request) -> web.StreamResponse:
    session: aiohttp.ClientSession = request.app["session"]
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
    body = request.content if request.body_exists else None
    async with session.request(request.method, UPSTREAM + request.path_qs, headers=headers,
                               data=body, allow_redirects=False) as up:
        resp = web.StreamResponse(status=up.status, headers={
            k: v for k, v in up.headers.items() if k.lower() not in HOP})
        await resp.prepare(request)
        async for chunk in up.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
        return resp


async def main(port: int, cert: str, key: str, ca: str) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    ctx.load_cert_chain(cert, key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app["session"] = aiohttp.ClientSession(auto_decompress=False)
        yield
        await app["session"].close()

    app.cleanup_ctx.append(session_ctx)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx, reuse_port=True).start()
    print("bare proxy ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    port, UPSTREAM, cert, key, ca = int(sys.argv[1]), sys.argv[2], *sys.argv[3:6]
    for _ in range(int(sys.argv[6]) - 1 if len(sys.argv) > 6 else 0):
        if os.fork() == 0:
            break
    import uvloop
    uvloop.run(main(port, cert, key, ca))
