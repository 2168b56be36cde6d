"""The one request story: gather the facts, admit, answer or forward; audit and metrics.

``handle`` reads top to bottom. It takes the current ``State`` once, so a config
reload never mixes old and new halves, and reads the runtime's clock once, so the
identity is checked at request time (keep-alive connections outlive certificates).
The decision half (identity, path, route, policy) is ``admit``: pure, and tested
with a table. What stays here is the I/O around it: the gateway's own pages under
``/.certgate/`` (answered here, never proxied), forwarding the path the policy
judged, and one ``finally`` that writes the audit record and the metrics. An
unexpected exception becomes the refusal-style 500 page with the request's reference
(``_fault``: traceback in the log, never to the client); ``HTTPException`` s pass.

No database access and no blocking call in here; the sign-in, sign-out, hand-off,
enrollment and lost-certificate pages (``gateway.auth.login``, ``gateway.auth.handoff``,
``gateway.auth.enroll``, ``gateway.auth.lost``) and "My access"
(``gateway.console.me``) are the one place a request of the public listener reaches
the database, and only for those pages. A browser sent to sign in on one app host
while its certificate is signed in on another is sent to fetch that sign-in instead
(``handoff_location``, from memory).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.auth.handoff import handoff_location
from gateway.auth.login import login_url, logout_token
from gateway.auth.pages import SIGN_IN_PAGES, answer, answer_lost
from gateway.auth.sessions import cookie_value
from gateway.config.console import CONSOLE_APP
from gateway.console.download import answer_download
from gateway.console.handler import answer as answer_console
from gateway.http.admit import DOWNLOAD, LOST, Facts, Page, Refusal, admit
from gateway.http.exchange import Exchange, Verdict, factors_label
from gateway.http.forward import (
    ForwardError,
    UpstreamCall,
    forward_http,
    forward_websocket,
    is_websocket_upgrade,
)
from gateway.http.pages import (
    help_page,
    internal_error,
    json_page,
    jwks,
    new_reference,
    refusal,
    wants_json,
    whoami,
)
from gateway.http.tls import peer_certificate_pem_quoted, peer_fingerprint, sni_hostname
from gateway.runtime import RUNTIME, Runtime
from policies.model import Reason, describe

CERTIFICATE_ONLY = ("mtls",)
SIGN_IN_REASONS = frozenset({Reason.MFA_REQUIRED, Reason.MFA_TOO_OLD})


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
    if query:
        out.query = query
    try:
        if runtime.audit.failing and state.config.audit.on_failure == "deny":
            # The site's rules allow no access that is not recorded; this refusal
            # itself is kept (memory, spool) and reaches the log when it recovers.
            return _refuse(request, out, 503, Reason.AUDIT_UNAVAILABLE)
        # 1-4. Identity, path, route, policy: decided from memory, without I/O.
        facts = Facts(fingerprint, host_header, sni_hostname(transport), port,
                      request.method, raw_path, source_ip, request.headers.get("Cookie"))
        result = admit(facts, state, runtime.index, runtime.sessions, now)
        out.path, out.identity = result.path, result.identity
        if isinstance(result, Refusal):
            out.app, out.rule = result.app, result.rule
            if result.reason in SIGN_IN_REASONS:
                return _to_sign_in(request, out, result.reason, query, runtime, port, now)
            return _refuse(request, out, result.status, result.reason)
        if isinstance(result, Page):
            if result.path in (LOST, DOWNLOAD):  # no certificate needed for these two
                page_answer = await (answer_lost if result.path == LOST else answer_download)(
                    request, runtime, out.reference)
                out.status, out.reason = page_answer.response.status, page_answer.reason
                out.verdict = Verdict.ALLOW if page_answer.allowed else Verdict.DENY
                return page_answer.response
            if result.path in SIGN_IN_PAGES and result.identity is not None:
                page_answer = await answer(result.path, request, runtime, result.identity,
                                           out.reference)
                out.status, out.reason = page_answer.response.status, page_answer.reason
                out.factors = page_answer.factors
                out.verdict = Verdict.ALLOW if page_answer.allowed else Verdict.DENY
                return page_answer.response
            page = _page(request, result, runtime, now)
            out.status, out.verdict, out.reason = page.status, Verdict.ALLOW, result.reason
            return page

        # 5. Forward, with identity headers the client could not have set.
        identity, app, host, session = result.identity, result.app, result.host, result.session
        out.app, out.rule = app.name, result.rule
        factors = session.factors if session is not None else CERTIFICATE_ONLY
        if app.name == CONSOLE_APP:  # the admin console: answered here, never forwarded
            console = await answer_console(request, runtime, identity.user, session,
                                           result.path, out.reference)
            out.status, out.reason = console.response.status, console.reason
            out.verdict = Verdict.ALLOW if console.allowed else Verdict.DENY
            out.factors = factors_label(factors)
            return console.response
        if session is not None:
            out.factors = factors_label(factors)
        auth_time = session.mfa_at if session is not None else None
        headers = {
            "X-Certgate-User": identity.user,
            "X-Certgate-Groups": ",".join(sorted(identity.groups)),
            "X-Certgate-Factors": ",".join(factors),
            "X-Certgate-Assertion": state.signer.sign(
                user=identity.user, groups=sorted(identity.groups),
                serial_hex=identity.serial_hex, fingerprint=identity.fingerprint, app=app.name,
                audience=f"https://{host}", factors=factors, now=now, auth_time=auth_time),
        }
        if auth_time is not None:
            headers["X-Certgate-Auth-Time"] = str(int(auth_time.timestamp()))
        if app.config.forward_client_cert:
            headers["X-Certgate-Client-Cert"] = peer_certificate_pem_quoted(transport) or ""
        call = UpstreamCall(app, result.route, result.path + ("?" + query if query else ""),
                            headers, host, port, source_ip)
        out.status, out.verdict, out.reason = 200, Verdict.ALLOW, Reason.ALLOWED
        if is_websocket_upgrade(request):
            # Judged again with these facts while open (gateway.http.wsauth).
            response = await forward_websocket(request, call, state.pool, runtime.websockets,
                                               facts)
        else:
            response = await forward_http(request, call, state.pool, out)
        out.status = response.status
        return response
    except ForwardError as exc:
        runtime.log.warning("ref %s: %s", out.reference, exc.detail,
                            extra={"reference": out.reference})
        response = _refuse(request, out, exc.status, exc.reason, exc.limit)
        if exc.status >= 500:
            out.verdict = Verdict.ERROR
        return response
    except web.HTTPException as exc:  # raised on purpose (a redirect, a 4xx): aiohttp answers
        out.status = exc.status
        raise
    except Exception:
        return _fault(request, out, runtime)
    finally:
        runtime.record(out, time.perf_counter() - started)


def _fault(request: web.Request, out: Exchange, runtime: Runtime) -> web.Response:
    """A bug of ours: the traceback to the log under the request's reference, the
    person the refusal-style 500 page with that reference, the audit record (the one
    ``finally`` writes) "error / internal-error / 500". A response already on its way
    cannot be replaced: then the connection ends, as aiohttp ends it."""
    runtime.log.exception("ref %s: %s %s%s failed", out.reference, request.method,
                          out.host[:255], out.path[:200], extra={"reference": out.reference})
    out.status, out.verdict, out.reason = 500, Verdict.ERROR, Reason.INTERNAL_ERROR
    if request.writer.output_size > 0:
        raise ConnectionError(f"ref {out.reference}: response already sent")
    return internal_error(request, out.reference)


def _refuse(request: web.Request, out: Exchange, status: int, reason: Reason,
            limit: int | None = None) -> web.Response:
    out.status, out.verdict, out.reason = status, Verdict.DENY, reason
    return refusal(request, status=status, reason=reason, reference=out.reference, limit=limit)


def _to_sign_in(request: web.Request, out: Exchange, reason: Reason, query: str,
                runtime: Runtime, port: int, now: datetime) -> web.Response:
    """An app asks for the second factor: people go to the sign-in page and come back,
    or, signed in on another app host, fetch that sign-in (never for a step-up); API
    clients (JSON, or anything but GET) get 401 with where to sign in."""
    out.status, out.verdict, out.reason = 401, Verdict.DENY, reason
    path_qs = out.path + ("?" + query if query else "")
    target = login_url(path_qs)
    if request.method != "GET" or wants_json(request):
        return json_page(401, {"error": reason.value, "message": describe(reason),
                               "reference": out.reference, "status": 401, "login": target})
    out.status = 303
    if reason is Reason.MFA_REQUIRED and out.identity is not None:
        elsewhere = handoff_location(runtime, out.identity, out.host, port, path_qs, now)
        if elsewhere is not None:
            out.reason, target = Reason.HANDOFF_SENT, elsewhere
    return web.Response(status=303, headers={"Location": target, "Cache-Control": "no-store"})


def _page(request: web.Request, page: Page, runtime: Runtime, now: datetime) -> web.Response:
    """The gateway's own pages; nothing under /.certgate/ ever reaches an upstream."""
    if page.path == "/.certgate/jwks.json":
        return jwks(request, runtime.state.signer.jwks())
    if page.identity is not None and page.path == "/.certgate/whoami":
        value = cookie_value(request.headers.get("Cookie", ""))
        session = (runtime.sessions.lookup(value, page.identity.fingerprint, now)
                   if value else None)
        if session is None:
            return whoami(request, page.identity)
        return whoami(request, page.identity, logout_csrf=logout_token(runtime, session, now),
                      mfa_at=session.mfa_at)
    return help_page(request)
