"""Two sample upstream apps for ``certgate demo``: an intranet page and a WebSocket echo.

They show what an upstream receives from the gateway (identity headers, the JWT
assertion). Demo only: they trust the gateway's headers because they listen on
loopback behind it; a real app would verify the assertion against the JWKS.
"""

from __future__ import annotations

import html

from aiohttp import WSMsgType, web

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Intranet (demo)</title>
<style>body{{font:16px system-ui;margin:3rem auto;max-width:42rem}}
code{{word-break:break-all}}</style>
</head><body><h1>Hello, {user}!</h1>
<p>This page is a sample internal app. certgate let you in because your browser presented a
certificate from the demo CA and you are in the <b>staff</b> group.</p>
<p>What the app received from the gateway:</p><ul>{headers}</ul>
<p>Try the <a href="https://{echo_host}/">WebSocket echo app</a> and
<a href="/.certgate/whoami">/.certgate/whoami</a>.</p></body></html>"""

ECHO_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Echo (demo)</title></head>
<body style="font:16px system-ui;margin:3rem auto;max-width:42rem"><h1>WebSocket echo</h1>
<input id=m value="hello"><button onclick="ws.send(m.value)">send</button><pre id=log></pre>
<script>const ws=new WebSocket("wss://"+location.host+"/ws");
ws.onmessage=e=>log.textContent+=e.data+"\\n";</script></body></html>"""


def intranet_app(echo_host: str) -> web.Application:
    async def index(request: web.Request) -> web.Response:
        shown = "".join(
            f"<li><code>{html.escape(k)}: {html.escape(v[:120])}"
            f"{'…' if len(v) > 120 else ''}</code></li>"
            for k, v in request.headers.items()
            if k.lower().startswith(("x-certgate", "x-forwarded")))
        user = html.escape(request.headers.get("X-Certgate-User", "stranger"))
        port = request.headers.get("X-Forwarded-Port", "443")
        echo = echo_host if port == "443" else f"{echo_host}:{html.escape(port)}"
        return web.Response(text=PAGE.format(user=user, headers=shown, echo_host=echo),
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", index)
    return app


def echo_app() -> web.Application:
    async def ws(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(text=ECHO_PAGE, content_type="text/html")
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            if msg.type is WSMsgType.TEXT:
                await sock.send_str(f"{request.headers.get('X-Certgate-User')}: {msg.data}")
        return sock

    app = web.Application()
    app.router.add_get("/{tail:.*}", ws)
    return app
