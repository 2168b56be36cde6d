"""The console's audit page: ``certgate audit search`` in a form, and the review report.

The filters are those of the CLI, checked by the same ``gateway.manage.audit_search``
(a wrong value is refused with the CLI's sentence); reading the trail is itself
recorded (``audit.read``, actor ``console:<user>``), as the CLI records it. The
access-review report (``gateway.manage.report``, which verifies the whole trail) is
gathered in a worker and handed over as a self-contained ``.html`` download.

Reads the trail; the only thing it writes is the ``audit.read`` record.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.audit.keys import load_audit_public_key
from gateway.audit.query import DECISIONS
from gateway.audit.report import REPORT_CSS, render_report
from gateway.console import render
from gateway.console.overview import when
from gateway.console.work import actor, in_worker
from gateway.manage.audit import parse_since
from gateway.manage.audit_search import SearchResult, build_query, search_audit
from gateway.manage.errors import ManageError
from gateway.manage.report import gather_report
from gateway.manage.trail import AdminTrail
from gateway.store.store import Store
from pki.keys import PkiError

if TYPE_CHECKING:
    from gateway.console.handler import Visit

# The report differs from the console's pages: its own stylesheet, and ``sandbox``: a
# file handed over for download, which a browser that showed it in place would give an
# origin of its own, so nothing in it could act as the console.
REPORT_CSP = f"default-src 'none'; style-src {REPORT_CSS.source}; sandbox"
FILTERS = ("user", "app", "decision", "type", "cert", "ref", "since", "until")
MAX_SHOWN = 500


def _filters(visit: Visit) -> dict[str, str]:
    return {name: value.strip() for name in FILTERS
            if (value := visit.request.query.get(name, "")).strip()}


async def show(visit: Visit) -> web.Response:
    filters = _filters(visit)
    try:
        limit = int(visit.request.query.get("limit", "100"))
    except ValueError:
        limit = 100
    limit = max(1, min(limit, MAX_SHOWN))
    result: SearchResult | None = None
    problems: list[str] = []
    error = None
    if filters:
        try:
            query = build_query(now=visit.now, user=filters.get("user"), app=filters.get("app"),
                                decision=filters.get("decision"), type_=filters.get("type"),
                                cert=filters.get("cert"), ref=filters.get("ref"),
                                since=filters.get("since"), until=filters.get("until"),
                                limit=limit)
        except ManageError as exc:
            error = str(exc)
        else:
            result = await search_audit(visit.runtime.store, query)
            found = len(result.records)

            async def job(store: Store, trail: AdminTrail) -> None:
                await trail.record("audit.read", "search", detail={
                    "command": "search", "filters": filters, "records": found})

            _, problems = await in_worker(visit.runtime.state.config, visit.user, job)
    return visit.page("console_audit.html", title="Audit", here="/audit", filters=filters,
                      decisions=DECISIONS, result=result, limit=limit, when=when,
                      error=error or ("; ".join(problems) or None))


async def report(visit: Visit) -> web.Response:
    config = visit.runtime.state.config
    query = visit.request.query
    now = visit.now
    since = parse_since(query.get("since", "30d").strip() or "30d", now)
    until = (parse_since(query["until"].strip(), now, "--until")
             if query.get("until", "").strip() else now)
    path = config.audit.public_key
    try:
        key: Any = await asyncio.to_thread(load_audit_public_key, path)
    except (OSError, PkiError, ValueError):
        key = None

    async def job(store: Store, trail: AdminTrail) -> str:
        data = await gather_report(store, config, since=since, until=until, now=now,
                                   generated_by=actor(visit.user), public_key=key,
                                   public_key_path=path if key is not None else None,
                                   checkpoint_file=config.audit.checkpoints)
        await trail.record("audit.read", "report", detail={
            "command": "report", "since": since.isoformat(), "until": until.isoformat(),
            "verified": data.verdict.state})
        return render_report(data)

    html, problems = await in_worker(config, visit.user, job)
    if problems:
        return render.message(500, "Report not recorded", "; ".join(problems),
                              user=visit.user, reference=visit.reference, back="/audit")
    name = f"access-review-{since:%Y-%m-%d}-to-{until - timedelta(seconds=1):%Y-%m-%d}.html"
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers={
        **render.HEADERS, "Content-Security-Policy": REPORT_CSP,
        "Content-Disposition": f'attachment; filename="{name}"'})
