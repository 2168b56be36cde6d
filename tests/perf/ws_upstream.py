"""WebSocket echo and upload sink upstream for the benchmark (nginx serves the rest).

Usage: ws_upstream.py PORT
"""

import sys

import uvloop
from aiohttp import WSMsgType, web


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def sink(request: web.Request) -> web.Response:
    async for _ in request.content.iter_any():
        pass
    return web.Response(text="ok\n")


if __name__ == "__main__":
    app = web.Application()
    app.router.add_post("/upload", sink)
    app.router.add_get("/{tail:.*}", echo)
    uvloop.install()
    print("ws upstream ready", flush=True)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
