"""The one request story: identity, route, path, policy, forward; audit and metrics.

``handle`` reads top to bottom. It takes the current ``State`` once, so a config
reload never mixes old and new halves; the identity is checked on every request
(keep-alive connections outlive certificates); the path the policy judges is the
path the upstream receives; everything under ``/.certgate/`` is answered here and
never proxied; and one ``finally`` writes the audit record and the metrics.

No database access and no blocking call in here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, ip_address

from aiohttp import web

from gateway.http.forward import ForwardError, forward_http, forward_websocket, is_websocket_upgrade
from gateway.http.pages import help_page, jwks, new_reference, refusal, whoami
from gateway.http.paths import STRICT, AmbiguousPathError, judged_path, normalise_path
from gateway.http.tls import peer_certificate_pem_quoted, peer_fingerprint, sni_hostname
from gateway.identity.index import Identity
from gateway.runtime import RUNTIME
from policies.engine import evaluate
from policies.model import AccessRequest, Effect, Reason

BUILTIN = "/.certgate"
# What a request without (a known) certificate may still see.
PUBLIC_BUILTINS = frozenset({"/.certgate/help", "/.certgate/jwks.json"})


@dataclass
class _Outcome:
    """What the audit record and metrics need, filled in as the story goes."""

    status: int = 500
    decision: str = "error"
    reason: str = "internal-error"
    rule: str | None = None
    app: str | None = None
    path: str = ""


def _host(request: web.Request) -> str:
    host = (request.headers.get("Host") or "").strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if ":" in host else host


@lru_cache(maxsize=4096)
def _source_ip(remote: str | None) -> IPv4Address | IPv6Address:
    # Parsing an address costs more than the policy decision; clients repeat.
    return ip_address(remote or "0.0.0.0")  # noqa: S104 - "no address", never bound


def _local_port(request: web.Request) -> int:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sockname[1]) if sockname else 0


async def handle(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    state = runtime.state
    reference = new_reference()
    started = time.perf_counter()
    now = datetime.now(UTC)
    out = _Outcome(path=request.raw_path.split("?", 1)[0][:2048])
    identity: Identity | None = None
    fingerprint: str | None = None

    def refuse(status: int, reason: Reason, limit: int | None = None) -> web.Response:
        out.status, out.decision, out.reason = status, "deny", reason.value
        return refusal(request, status=status, reason=reason, reference=reference, limit=limit)

    try:
        # 1. Identity, from the certificate of this connection, checked now.
        fingerprint = peer_fingerprint(request.transport)
        resolved = runtime.index.resolve(fingerprint, now)
        if not isinstance(resolved, Reason):
            identity = resolved

        # 2. Path: one normal form, judged and forwarded alike, read the way the
        #    app's server reads paths (the Host picks the app; SNI is checked below).
        host = _host(request)
        public_port = _local_port(request)
        app = state.router.app_for(host, public_port)
        raw_path, _, query = request.raw_path.partition("?")
        try:
            path = normalise_path(raw_path, app.path_rules if app is not None else STRICT)
        except AmbiguousPathError:
            return refuse(400, Reason.AMBIGUOUS_PATH)
        out.path = path
        if isinstance(resolved, Reason):
            if path in PUBLIC_BUILTINS:
                out.status, out.decision, out.reason = 200, "allow", "public-page"
                return _public_builtin(request, path)
            return refuse(401 if resolved is Reason.NO_CERTIFICATE else 403, resolved)
        assert identity is not None

        # 3. Route: the Host must be the name the TLS connection was opened for.
        sni = sni_hostname(request.transport)
        if sni is not None and sni != host:
            return refuse(421, Reason.SNI_HOST_MISMATCH)
        if path == BUILTIN or path.startswith(BUILTIN + "/"):
            builtin = _builtin(request, path, identity, reference)
            out.status, out.decision, out.reason = builtin.status, "allow", "builtin"
            return builtin
        if app is None:
            return refuse(404, Reason.ROUTE_NOT_FOUND)
        out.app = app.name

        # 4. Policy: pure, in memory, on the path without ';' parameters.
        decision = evaluate(state.policy_set, AccessRequest(
            host=host, method=request.method, path=judged_path(path), user=identity.user,
            groups=identity.groups, source_ip=_source_ip(request.remote), now=now, mfa_at=None))
        out.rule = decision.rule
        if decision.effect is Effect.NEED_MFA:
            # The second-factor login is not built yet: fail closed, never skip it.
            return refuse(403, Reason.MFA_UNAVAILABLE)
        if decision.effect is Effect.DENY:
            return refuse(403, decision.reason)

        # 5. Forward, with identity headers the client could not have set.
        route = app.route_for(path)
        headers = {
            "X-Certgate-User": identity.user,
            "X-Certgate-Groups": ",".join(sorted(identity.groups)),
            "X-Certgate-Assertion": state.signer.sign(
                user=identity.user, groups=sorted(identity.groups),
                serial_hex=identity.serial_hex, fingerprint=identity.fingerprint, app=app.name,
                audience=f"https://{host}", factors=("mtls",), now=now),
        }
        if app.config.forward_client_cert:
            headers["X-Certgate-Client-Cert"] = peer_certificate_pem_quoted(
                request.transport) or ""
        path_qs = path + ("?" + query if query else "")
        out.status, out.decision, out.reason = 200, "allow", Reason.ALLOWED.value
        if is_websocket_upgrade(request):
            response = await forward_websocket(
                request, app=app, route=route, path_qs=path_qs, identity_headers=headers,
                pool=state.pool, public_host=host, public_port=public_port,
                client_ip=request.remote or "", registry=runtime.websockets,
                fingerprint=identity.fingerprint)
        else:
            response = await forward_http(
                request, app=app, route=route, path_qs=path_qs, identity_headers=headers,
                pool=state.pool, public_host=host, public_port=public_port,
                client_ip=request.remote or "")
        out.status = response.status
        return response
    except ForwardError as exc:
        runtime.log.warning("ref %s: %s", reference, exc.detail)
        response = refuse(exc.status, exc.reason, exc.limit)
        out.decision = "error" if exc.status >= 500 else "deny"
        return response
    finally:
        elapsed = time.perf_counter() - started
        runtime.record(reference=reference, at=now, outcome_status=out.status,
                       decision=out.decision, reason=out.reason, rule=out.rule, app=out.app,
                       identity=identity, fingerprint=fingerprint, method=request.method,
                       host=request.headers.get("Host", ""), path=out.path,
                       source_ip=request.remote or "", seconds=elapsed)


def _public_builtin(request: web.Request, path: str) -> web.Response:
    if path == "/.certgate/jwks.json":
        return jwks(request, request.app[RUNTIME].state.signer.jwks())
    return help_page(request)


def _builtin(request: web.Request, path: str, identity: Identity,
             reference: str) -> web.Response:
    """The gateway's own pages; nothing under /.certgate/ ever reaches an upstream."""
    if path == "/.certgate/whoami":
        return whoami(request, identity)
    if path in PUBLIC_BUILTINS:
        return _public_builtin(request, path)
    if path == "/.certgate/login":
        return refusal(request, status=403, reason=Reason.MFA_UNAVAILABLE, reference=reference)
    return refusal(request, status=404, reason=Reason.ROUTE_NOT_FOUND, reference=reference)
