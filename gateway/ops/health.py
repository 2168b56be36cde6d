"""The admin listener's application: ``/healthz``, ``/readyz``, ``/metrics``, ``/jwks.json``.

Loopback by default; nothing here is ever served on the public listener.
No singletons: the ``Runtime`` is stored under a typed ``AppKey``.
"""

from __future__ import annotations

from aiohttp import web

from gateway.runtime import RUNTIME, Runtime


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    follower = runtime.follower
    audit = runtime.audit
    degraded: list[dict[str, object]] = []
    if audit.failing_since is not None:
        degraded.append({"component": "audit", "reason": audit.last_error,
                         "since": audit.failing_since.isoformat(),
                         "spooled_records": audit.spooled,
                         "refusing_requests": runtime.state.config.audit.on_failure == "deny"})
    if follower is not None and not follower.healthy:
        degraded.append({"component": "database",
                         "reason": "the change feed cannot reach the database; serving "
                                   "from memory"})
    for task in runtime.tasks:
        problem = task.problem()
        if problem is not None:
            degraded.append({"component": task.name, "reason": problem,
                             "since": task.failing_since.isoformat()
                             if task.failing_since else None,
                             "meaning": task.while_failing or None})
    if (forward := audit.syslog) is not None and (forward.queued or forward.dropped):
        body_syslog = {"queued_messages": forward.queued, "dropped_messages": forward.dropped}
        for entry in degraded:
            if entry["component"] == "audit syslog forward":
                entry.update(body_syslog)
    body = {"ready": runtime.ready, "status": "degraded" if degraded else "ok",
            "degraded": degraded, "certificates": len(runtime.index),
            "database_reachable": bool(follower and follower.healthy)}
    # Not ready until listening; a database outage or a failing audit log does not
    # make the node unready: it keeps serving (or refusing, with a reason) and says so.
    return web.json_response(body, status=200 if runtime.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    runtime.metrics.websockets.set(len(runtime.websockets))
    runtime.metrics.audit_failing.set(1 if runtime.audit.failing else 0)
    runtime.metrics.audit_spooled.set(runtime.audit.spooled)
    runtime.metrics.db_healthy.set(1 if runtime.follower and runtime.follower.healthy else 0)
    runtime.metrics.observe_tasks(runtime.tasks)
    if (forward := runtime.audit.syslog) is not None:
        runtime.metrics.observe_syslog(forward.sent, forward.dropped, forward.queued)
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
