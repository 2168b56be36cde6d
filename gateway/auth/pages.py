"""The sign-in pages as one table, and the answer they share when the database is away.

``/.certgate/login``, ``logout``, ``handoff``, ``enroll``, ``reset`` and "My access", ``me``
(from ``gateway.console``) (and ``lost``, answered with or without a certificate by
``answer_lost``) are the only requests of
the public listener that need the database (a password check, a counted attempt,
a session written for every node). When it can't be reached they must not fail
open, nor show a traceback: ``answer`` turns the store's "unreachable" into a 503
page that says what works meanwhile (applications the person is already signed
in to keep working from memory) and what to do. Everything else the pages decide
themselves.

Must not decide who may sign in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.auth.enroll import enroll
from gateway.auth.handoff import handoff
from gateway.auth.login import Answer, login, logout
from gateway.auth.lost import lost
from gateway.auth.reset import reset
from gateway.console.me import my_access_page
from gateway.http.admit import ENROLL, HANDOFF, LOGIN, LOGOUT, LOST, ME, RESET
from gateway.http.pages import html_page, refusal
from gateway.identity.index import Identity
from gateway.store.errors import StoreError
from policies.model import Reason

if TYPE_CHECKING:
    from gateway.runtime import Runtime

SIGN_IN_PAGES = {LOGIN: login, LOGOUT: logout, HANDOFF: handoff, ENROLL: enroll,
                 RESET: reset, ME: my_access_page}


async def answer(path: str, request: web.Request, runtime: Runtime, identity: Identity,
                 reference: str) -> Answer:
    """The page at ``path`` (one of ``SIGN_IN_PAGES``), or 503 without the database."""
    try:
        return await SIGN_IN_PAGES[path](request, runtime, identity, reference)
    except StoreError as exc:
        return _unavailable(path, request, runtime, reference, exc)


async def answer_lost(request: web.Request, runtime: Runtime, reference: str) -> Answer:
    """``/.certgate/lost``, which needs no certificate; 503 without the database."""
    try:
        return await lost(request, runtime, reference)
    except StoreError as exc:
        return _unavailable(LOST, request, runtime, reference, exc)


def _unavailable(path: str, request: web.Request, runtime: Runtime, reference: str,
                 exc: StoreError) -> Answer:
    runtime.log.warning("ref %s: %s answered 503: %s", reference, path, exc,
                        extra={"reference": reference})
    reason = Reason.SIGN_IN_UNAVAILABLE
    if path == LOST:
        helpdesk = runtime.state.config.auth.helpdesk
        return Answer(html_page(
            "refusal.html", 503, title="Try again in a few minutes",
            message="Your certificate could not be stopped just now: the gateway cannot "
            "reach its database.", advice=f"Try again in a few minutes. If it lasts, call "
            f"{helpdesk} and ask them to stop your certificate.", reference=reference,
            help_link=False), reason, False)
    return Answer(refusal(request, status=503, reason=reason, reference=reference),
                  reason, False)
