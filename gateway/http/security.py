"""The one Content-Security-Policy and security-header set of every page certgate renders.

Every HTML page the gateway writes itself (the public pages: sign-in, enrollment,
refusal, lost, hand-off, "My access"; and the admin console) inlines one static
stylesheet from ``templates/`` into a single ``<style>`` block and is answered with
``HEADERS``, whose CSP allows exactly those stylesheets by their SHA-256:
``default-src 'none'; style-src 'sha256-…' 'sha256-…'``, no ``'unsafe-inline'``,
no script at all, no images (the enrollment QR code is inline SVG, which fetches
nothing), forms only to this origin, no framing, no ``<base>``.

Why hashes and not a per-response nonce: the stylesheets are files shipped with the
package, so their hashes are computed once here at import and the headers are one
constant dict; a nonce would need a fresh random value threaded through every render,
and would allow *any* ``<style>`` carrying it, whereas a hash allows only this exact
text. Style attributes (``style="…"``) are never allowed (that would take
``'unsafe-hashes'``): use a class.

A new page: extend ``base.html`` and answer with ``gateway.http.pages.html_page``
(a console page: ``gateway.console.render.page``); put its rules into
``templates/pages.css`` (or ``console.css``), never into a ``<style>`` block or a
``{% block style %}`` of its own, whose text the CSP would refuse.
``tests/gateway/http/test_csp.py`` renders every template and checks it.

Pure apart from reading the package's stylesheets at import.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from importlib.resources import files


@dataclass(frozen=True)
class Stylesheet:
    """A stylesheet inlined into pages, and its CSP source expression."""

    name: str
    text: str
    source: str  # "'sha256-…'"


def stylesheet(name: str) -> Stylesheet:
    """``templates/<name>``, refused if it could end the ``<style>`` element it goes in."""
    text = files("gateway").joinpath("templates", name).read_text(encoding="utf-8")
    if "</" in text:
        raise RuntimeError(f"templates/{name} must not contain '</'")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return Stylesheet(name, text, f"'sha256-{digest}'")


PAGES_CSS = stylesheet("pages.css")
CONSOLE_CSS = stylesheet("console.css")

CSP = (f"default-src 'none'; style-src {PAGES_CSS.source} {CONSOLE_CSS.source}; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HSTS = "max-age=31536000"
HEADERS = {
    "Content-Security-Policy": CSP,
    "Strict-Transport-Security": HSTS,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
