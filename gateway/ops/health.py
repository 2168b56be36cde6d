"""The admin listener's application: ``/healthz``, ``/readyz``, ``/metrics``, ``/jwks.json``.

Loopback by default; nothing here is ever served on the public listener.
``/readyz`` is 503 until the listeners are open (and again while draining); it is
200 with ``status: degraded`` and the reasons (``gateway.ops.readiness``) while
the node can serve from memory.
No singletons: the ``Runtime`` is stored under a typed ``AppKey``.
"""

from __future__ import annotations

from aiohttp import web

from gateway.ops.gauges import sample
from gateway.ops.readiness import degradations
from gateway.runtime import RUNTIME, Runtime


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    follower = runtime.follower
    degraded = degradations(runtime)
    listeners = "listening" if runtime.ready else "starting or draining"
    body = {"ready": runtime.ready, "status": "degraded" if degraded else "ok",
            "degraded": degraded,
            # This listener answers only once config and state are loaded; the public
            # listener opens last, so ``ready`` waits for it.
            "parts": {"config": {"state": "loaded", "apps": len(runtime.state.config.apps)},
                      "state": {"state": "loaded", "certificates": len(runtime.index),
                                "sessions": len(runtime.sessions),
                                "last_event_id": follower.last_event_id if follower else None},
                      "listeners": {"state": listeners}},
            "certificates": len(runtime.index),
            "database_reachable": bool(follower and follower.healthy)}
    # Not ready until listening; a database outage or a failing audit log does not
    # make the node unready: it keeps serving (or refusing, with a reason) and says so.
    return web.json_response(body, status=200 if runtime.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    sample(runtime, runtime.expiries)
    return web.Response(body=runtime.metrics.render(),
                        content_type="text/plain", charset="utf-8")


async def admin_jwks(request: web.Request) -> web.Response:
    return web.json_response(request.app[RUNTIME].state.signer.jwks())


def create_admin_app(runtime: Runtime) -> web.Application:
    app = web.Application()
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/jwks.json", admin_jwks)
    return app
