"""``/.certgate/download``: a new person fetches their ``.p12`` once, without a certificate.

The admin issues the certificate in the console and passes on the link (the token
``?t=…``, 256 random bits, of which the database keeps only the SHA-256) and, by
another way, the file's password. The link names nothing: no user, no serial.

GET shows, in plain words and per browser, what to do, with a Download button; it
does not spend the link (a chat app that previews links must not burn it). The
button POSTs the token back and gets the file, once: the link is then spent on every
node (``store.take_download``, a conditional write) and the stored file is cleared.
A used, expired or unknown link gets a page that says which, and what to do.

The POST needs no CSRF token: the only secret that makes it work is the link's own
token, which a forged request would have to know already. The token is never logged
or recorded (the audit record of the request keeps ``?[redacted]``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.auth.login import Answer, read_form
from gateway.console import render
from gateway.console.certs import token_hash
from gateway.console.overview import when
from gateway.store.errors import StoreError
from policies.model import Reason

if TYPE_CHECKING:
    from gateway.runtime import Runtime

_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")


def _refused(status: int, title: str, text: str, reference: str) -> Answer:
    return Answer(render.page("download.html", status, title=title, problem=text,
                              reference=reference, narrow=True, holder=None),
                  Reason.DOWNLOAD_REFUSED, False)


async def download(request: web.Request, runtime: Runtime, reference: str) -> Answer:
    """GET: the instructions and the button. POST: the file, once."""
    now = runtime.clock()
    token = request.query.get("t", "")
    if request.method == "POST":
        form = await read_form(request)
        value = form.get("t") if form is not None else None
        token = value if isinstance(value, str) else ""
    elif request.method not in ("GET", "HEAD"):
        return _refused(405, "Not like this", "Open the link in a browser.", reference)
    helpdesk = runtime.state.config.auth.helpdesk
    if not _TOKEN.fullmatch(token):
        return _refused(404, "This link is not complete",
                        "The address is cut short or mistyped. Copy the whole link your "
                        f"administrator sent you, or ask {helpdesk} for a new one.", reference)
    link = await runtime.store.get_download(token_hash(token))
    if link is None:
        return _refused(404, "This link is not valid",
                        "This download link is not known. Copy the whole link your "
                        f"administrator sent you, or ask {helpdesk} for a new one.", reference)
    if link.used_at is not None:
        return _refused(410, "This link was already used",
                        f"The certificate of this link was downloaded on {when(link.used_at)}; "
                        "a link works only once. If that was not you, tell "
                        f"{helpdesk} at once: they will stop that certificate and give you a "
                        "new one.", reference)
    if link.expires_at <= now:
        return _refused(410, "This link has expired",
                        f"The link was valid until {when(link.expires_at)}. Ask {helpdesk} "
                        "for a new one.", reference)
    if request.method != "POST":
        return Answer(render.page("download.html", 200, title="Your certificate",
                                  holder=link.holder, token=token, problem=None,
                                  expires=when(link.expires_at), reference=reference,
                                  narrow=True), Reason.DOWNLOAD_PAGE, True)
    p12 = await runtime.store.take_download(token_hash(token), now=now)
    if p12 is None:  # taken meanwhile (another tab, another node) or just expired
        return _refused(410, "This link was already used",
                        "A link works only once. If you did not download it, tell "
                        f"{helpdesk} at once.", reference)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", link.holder)[:60] or "certificate"
    response = web.Response(body=p12, content_type="application/x-pkcs12", headers={
        **render.HEADERS, "Content-Disposition": f'attachment; filename="{name}.p12"'})
    return Answer(response, Reason.DOWNLOADED, True)


async def answer_download(request: web.Request, runtime: Runtime, reference: str) -> Answer:
    """``download``, or a 503 page that says so when the database can't be reached."""
    try:
        return await download(request, runtime, reference)
    except StoreError as exc:
        runtime.log.warning("ref %s: /.certgate/download answered 503: %s", reference, exc,
                            extra={"reference": reference})
        return _refused(503, "Try again in a few minutes",
                        "The gateway cannot reach its database just now; your link still "
                        "works later.", reference)
