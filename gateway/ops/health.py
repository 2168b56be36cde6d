"""The admin listener's application: ``/healthz``, ``/readyz``, ``/metrics``, ``/jwks.json``.

Loopback by default; nothing here is ever served on the public listener.
``/readyz`` is 503 until the listeners are open (and again while draining); it is
200 with ``status: degraded`` and a list of reasons, each with since when, while
the node can serve from memory: database unreachable, change feed behind, audit
log failing (records spooled), CRL not renewed when due, a background task
failing, stuck or dead.
No singletons: the ``Runtime`` is stored under a typed ``AppKey``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from gateway.ops.gauges import crl_next_update, sample
from gateway.runtime import RUNTIME, Runtime

# The change feed reads every quarter second (every 2 s as catch-up behind LISTEN):
# no read for this long means this node may be acting on stale revocations.
CHANGE_FEED_BEHIND = 10.0
# The re-signer renews the CRL at half its validity; a CRL within this share of its
# validity from nextUpdate was not renewed when due.
CRL_MARGIN = 0.25


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def degradations(runtime: Runtime, now: datetime | None = None) -> list[dict[str, object]]:
    """What keeps this node from being fully well, each with its reason and since when."""
    now = runtime.clock() if now is None else now
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
                                   "from memory",
                         "since": _iso(follower.health.failing_since)})
    elif follower is not None and (lag := follower.lag()) > CHANGE_FEED_BEHIND:
        degraded.append({"component": "change feed",
                         "reason": f"changes made elsewhere were last read {lag:.0f} s ago",
                         "since": (now - timedelta(seconds=lag)).isoformat()})
    next_update = crl_next_update(runtime.crl_der)
    if next_update is not None:
        margin = runtime.state.config.pki.crl_validity * CRL_MARGIN
        if now >= next_update - margin:
            expired = now >= next_update
            degraded.append({
                "component": "crl",
                "reason": ("the CRL expired at " if expired else "the CRL expires at ")
                + f"{next_update.isoformat()} and has not been re-signed; relying parties "
                  "that check it will refuse every certificate. Run `certgate crl` (the "
                  "re-signer needs the CA passphrase)",
                "since": (next_update - margin).isoformat()})
    for task in runtime.tasks:
        problem = task.problem()
        if problem is not None:
            degraded.append({"component": task.name, "reason": problem,
                             "since": _iso(task.failing_since),
                             "meaning": task.while_failing or None})
    return degraded


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    follower = runtime.follower
    degraded = degradations(runtime)
    listeners = "listening" if runtime.ready else "starting or draining"
    body = {"ready": runtime.ready, "status": "degraded" if degraded else "ok",
            "degraded": degraded,
            # This listener answers only once config and state are loaded; the public
            # listener opens last, so ``ready`` waits for it.
            "parts": {"config": {"state": "loaded", "file": str(runtime.state.config.file),
                                 "apps": len(runtime.state.config.apps)},
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
