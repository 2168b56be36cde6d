"""The console's routes: one table, the CSRF check on every POST, one refusal shape.

``answer`` is called by the request story for a request ``admit`` admitted to the
console app: the person is in the console group and signed in with a second factor
younger than ``console.mfa_max_age``. Every POST must carry the CSRF token of the
page it came from (an HMAC bound to this sign-in session, ``gateway.auth.csrf``);
a POST without a valid one changes nothing. Failures are pages with one sentence:
a use-case's refusal (``ManageError``) as 400, the database away as 503, never a
traceback.

Must not decide who may use the console (admit did) and must not forward anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.auth.csrf import csrf_token, csrf_valid
from gateway.auth.login import csrf_key, read_form
from gateway.console import render
from gateway.manage.errors import ManageError
from gateway.store.errors import ConflictError, NotFoundError, StoreError
from gateway.store.records import SessionRecord
from pki.keys import PkiError
from policies.model import Reason

if TYPE_CHECKING:
    from gateway.runtime import Runtime


@dataclass(frozen=True)
class Visit:
    """One console request: who, when, and the form token of this sign-in."""

    request: web.Request
    runtime: Runtime
    user: str
    session: SessionRecord
    now: datetime
    reference: str
    form: Mapping[str, Any]  # the posted form (empty for GET)

    @property
    def csrf(self) -> str:
        return csrf_token(self._key(), self._binding, self.now)

    def csrf_ok(self) -> bool:
        token = self.form.get("csrf")
        return csrf_valid(self._key(), token if isinstance(token, str) else None,
                          self._binding, self.now)

    @property
    def _binding(self) -> str:
        return f"console|{self.session.id_hash}"

    def _key(self) -> bytes:
        box = self.runtime.secret_box()
        assert box is not None  # the console needs the second factor, which needs the box
        return csrf_key(box)

    def page(self, template: str, status: int = 200, **context: Any) -> web.Response:
        return render.page(template, status, console_user=self.user, csrf=self.csrf,
                           reference=self.reference, **context)

    def field(self, name: str) -> str:
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else ""


Handler = Callable[[Visit], Awaitable[web.Response]]


@dataclass(frozen=True)
class ConsoleAnswer:
    response: web.Response
    reason: Reason
    allowed: bool


def _routes() -> tuple[dict[str, Handler], dict[str, Handler]]:
    from gateway.console import apps, audit, certs, mailing, overview, people

    gets: dict[str, Handler] = {"/": overview.show, "/certificates": certs.show,
                                "/certificates/confirm": certs.confirm,
                                "/users": people.show, "/users/confirm": people.confirm,
                                "/sessions": people.sessions, "/apps": apps.show,
                                "/audit": audit.show, "/audit/report": audit.report}
    posts: dict[str, Handler] = {f"/certificates/{action}": handler
                                 for action, handler in certs.ACTIONS.items()}
    posts.update(people.ACTIONS)
    posts.update(mailing.ACTIONS)
    return gets, posts


GET_ROUTES, POST_ROUTES = _routes()


async def answer(request: web.Request, runtime: Runtime, user: str,
                 session: SessionRecord | None, path: str, reference: str) -> ConsoleAnswer:
    """The console page at ``path`` for ``user`` (admitted, with a fresh session)."""
    now = runtime.clock()
    method = "GET" if request.method == "HEAD" else request.method
    table = GET_ROUTES if method == "GET" else POST_ROUTES if method == "POST" else {}
    handler = table.get(path)
    if session is None:  # admit gives the console a session; never without one
        return _no(render.message(403, "Sign in again", "Your sign-in could not be found.",
                                  user=user, reference=reference), Reason.MFA_REQUIRED)
    if handler is None:
        known = path in GET_ROUTES or path in POST_ROUTES
        status = 405 if known else 404
        return _no(render.message(status, "Not here" if status == 404 else "Not like this",
                                  "The console has no such page." if status == 404 else
                                  "This page does not accept that kind of request.",
                                  user=user, reference=reference, back="/"),
                   Reason.PAGE_NOT_FOUND if status == 404 else Reason.METHOD_NOT_ALLOWED)
    form: Mapping[str, Any] = {}
    if method == "POST":
        posted = await read_form(request)
        if posted is None:
            return _no(render.message(400, "Not a form", "The console accepts only its own "
                                      "forms.", user=user, reference=reference, back="/"),
                       Reason.FORM_INVALID)
        form = posted
    visit = Visit(request, runtime, user, session, now, reference, form)
    if method == "POST" and not visit.csrf_ok():
        return _no(render.message(403, "Form expired", "This form has expired or did not come "
                                  "from the console, so nothing was changed. Open the page "
                                  "again and retry.", user=user, reference=reference,
                                  back="/"), Reason.CSRF_INVALID)
    try:
        response = await handler(visit)
    except (ManageError, NotFoundError, ConflictError) as exc:
        return _no(render.message(400, "Not done", str(exc), user=user, reference=reference,
                                  back="/"),
                   Reason.FORM_INVALID)
    except PkiError as exc:
        return _no(render.message(503, "The CA is not available", f"{exc}. Nothing was "
                                  "changed.", user=user, reference=reference, back="/"),
                   Reason.INTERNAL_ERROR)
    except StoreError as exc:
        runtime.log.warning("ref %s: console answered 503: %s", reference, exc,
                            extra={"reference": reference})
        return _no(render.message(503, "Try again in a minute", "The console cannot reach "
                                  "its database just now; nothing was changed.", user=user,
                                  reference=reference, back="/"), Reason.SIGN_IN_UNAVAILABLE)
    except Exception:  # a fault of ours: logged with its reference, never shown
        runtime.log.exception("ref %s: console page %s failed", reference, path,
                              extra={"reference": reference})
        return _no(render.message(500, "Something went wrong", "The console could not "
                                  "answer this; the gateway's log has the details under the "
                                  "reference below.", user=user, reference=reference,
                                  back="/"), Reason.INTERNAL_ERROR)
    return ConsoleAnswer(response, Reason.ALLOWED, True)


def _no(response: web.Response, reason: Reason) -> ConsoleAnswer:
    return ConsoleAnswer(response, reason, False)
