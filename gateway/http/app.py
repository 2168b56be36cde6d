"""The public aiohttp application: every app host on the TLS listener, one catch-all route.

No singletons: the ``Runtime`` is stored under a typed ``AppKey``.
"""

from __future__ import annotations

from aiohttp import web

from gateway.http.proxy import handle
from gateway.runtime import RUNTIME, Runtime

HSTS = "max-age=31536000"


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Strict-Transport-Security", HSTS)


def create_public_app(runtime: Runtime) -> web.Application:
    # client_max_size only limits request.read()/post(); proxied bodies stream and
    # are limited per route by max_body_size instead.
    app = web.Application(client_max_size=1024 * 1024)
    app[RUNTIME] = runtime
    app.router.add_route("*", "/{tail:.*}", handle)
    app.on_response_prepare.append(_security_headers)
    return app
