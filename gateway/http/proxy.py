"""The one request story: gather the facts, admit, answer or forward; audit and metrics.

``handle`` reads top to bottom. It takes the current ``State`` once, so a config
reload never mixes old and new halves, and reads the runtime's clock once, so the
identity is checked at request time (keep-alive connections outlive certificates).
The decision half (identity, path, route, policy) is ``admit``: pure, and tested
with a table. What stays here is the I/O around it: the gateway's own pages under
``/.certgate/`` (answered here, never proxied), forwarding the path the policy
judged, and one ``finally`` that writes the audit record and the metrics.

No database access and no blocking call in here.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway.http.admit import Facts, Page, Refusal, admit
from gateway.http.exchange import Exchange, Verdict
from gateway.http.forward import (
    ForwardError,
    UpstreamCall,
    forward_http,
    forward_websocket,
    is_websocket_upgrade,
)
from gateway.http.pages import help_page, jwks, new_reference, refusal, whoami
from gateway.http.tls import peer_certificate_pem_quoted, peer_fingerprint, sni_hostname
from gateway.runtime import RUNTIME, State
from policies.model import Reason


def _local_port(transport: Any) -> int:
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    return int(sockname[1]) if sockname else 0


async def handle(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    state = runtime.state
    started = time.perf_counter()
    now = runtime.clock()
    transport = request.transport
    fingerprint = peer_fingerprint(transport)
    raw_path, _, query = request.raw_path.partition("?")
    host_header = request.headers.get("Host", "")
    source_ip = request.remote or ""
    port = _local_port(transport)
    out = Exchange(new_reference(), now, request.method, host_header, source_ip,
                   raw_path[:2048], fingerprint)
    try:
        if runtime.audit.failing and state.config.audit.on_failure == "deny":
            # The site's rules allow no access that is not recorded; this refusal
            # itself is kept (memory, spool) and reaches the log when it recovers.
            return _refuse(request, out, 503, Reason.AUDIT_UNAVAILABLE)
        # 1-4. Identity, path, route, policy: decided from memory, without I/O.
        result = admit(Facts(fingerprint, host_header, sni_hostname(transport), port,
                             request.method, raw_path, source_ip), state, runtime.index, now)
        out.path, out.identity = result.path, result.identity
        if isinstance(result, Refusal):
            out.app, out.rule = result.app, result.rule
            return _refuse(request, out, result.status, result.reason)
        if isinstance(result, Page):
            page = _page(request, result, state)
            out.status, out.verdict, out.reason = page.status, Verdict.ALLOW, result.reason
            return page

        # 5. Forward, with identity headers the client could not have set.
        identity, app, host = result.identity, result.app, result.host
        out.app, out.rule = app.name, result.rule
        headers = {
            "X-Certgate-User": identity.user,
            "X-Certgate-Groups": ",".join(sorted(identity.groups)),
            "X-Certgate-Assertion": state.signer.sign(
                user=identity.user, groups=sorted(identity.groups),
                serial_hex=identity.serial_hex, fingerprint=identity.fingerprint, app=app.name,
                audience=f"https://{host}", factors=("mtls",), now=now),
        }
        if app.config.forward_client_cert:
            headers["X-Certgate-Client-Cert"] = peer_certificate_pem_quoted(transport) or ""
        call = UpstreamCall(app, result.route, result.path + ("?" + query if query else ""),
                            headers, host, port, source_ip, identity.fingerprint)
        out.status, out.verdict, out.reason = 200, Verdict.ALLOW, Reason.ALLOWED
        if is_websocket_upgrade(request):
            response = await forward_websocket(request, call, state.pool, runtime.websockets)
        else:
            response = await forward_http(request, call, state.pool)
        out.status = response.status
        return response
    except ForwardError as exc:
        runtime.log.warning("ref %s: %s", out.reference, exc.detail)
        response = _refuse(request, out, exc.status, exc.reason, exc.limit)
        if exc.status >= 500:
            out.verdict = Verdict.ERROR
        return response
    finally:
        runtime.record(out, time.perf_counter() - started)


def _refuse(request: web.Request, out: Exchange, status: int, reason: Reason,
            limit: int | None = None) -> web.Response:
    out.status, out.verdict, out.reason = status, Verdict.DENY, reason
    return refusal(request, status=status, reason=reason, reference=out.reference, limit=limit)


def _page(request: web.Request, page: Page, state: State) -> web.Response:
    """The gateway's own pages; nothing under /.certgate/ ever reaches an upstream."""
    if page.path == "/.certgate/jwks.json":
        return jwks(request, state.signer.jwks())
    if page.identity is not None and page.path == "/.certgate/whoami":
        return whoami(request, page.identity)
    return help_page(request)
