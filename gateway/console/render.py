"""The console's pages: templates, the stylesheet and the security headers.

The stylesheet (``templates/console.css``) is inlined into every page and allowed by
its SHA-256 in the one Content-Security-Policy of ``gateway.http.security`` (shared
with the public pages), so the console needs no ``'unsafe-inline'`` and no second
request; no script runs at all. Every page says ``frame-ancestors 'none'`` and
carries HSTS. Templates autoescape: a user-controlled
value is always text. Pure apart from reading the package's templates at import.
"""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

from gateway.http import security

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("gateway", "templates"), autoescape=True, auto_reload=False,
    trim_blocks=True, lstrip_blocks=True)

CSS = security.CONSOLE_CSS.text
HEADERS = security.HEADERS  # the one set of every certgate page
NAV = (("/", "Overview"), ("/certificates", "Certificates"), ("/users", "Users"),
       ("/sessions", "Sessions"), ("/apps", "Apps"), ("/audit", "Audit"))
_DEFAULTS: dict[str, Any] = {"console_user": None, "nav": NAV, "here": None, "error": None,
                             "notice": None, "reference": None, "narrow": False}


def page(template: str, status: int = 200, **context: Any) -> web.Response:
    """``template`` rendered with the console's layout and headers."""
    body = _ENV.get_template(template).render(**{**_DEFAULTS, "css": CSS, **context})
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8",
                        headers=HEADERS)


def message(status: int, title: str, text: str, *, user: str | None, reference: str,
            back: str | None = None) -> web.Response:
    """A short page that says what happened (a refusal, a failure) and where to go."""
    return page("console_message.html", status, title=title, text=text, back=back,
                console_user=user, reference=reference, narrow=True)
