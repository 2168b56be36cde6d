"""E-mailing a new certificate's one-time download link from the hand-over page.

The hand-over page (``gateway.console.certs``) offers "E-mail the link to
alice@example.com" when ``mail:`` is configured and the person has an e-mail
address. The button POSTs (with the console's CSRF token) the link's token, which
is on that page anyway; the recipient is the address stored for the link's holder,
never one taken from the form. The mail holds the link and short install steps, and
says the password comes by phone: the ``.p12`` password and the stop code are never
in a mail. The send is recorded as ``download.mailed`` (actor ``console:<user>``,
the holder, the serial, the address, the result), never with the token.

The page waits a few seconds for the relay's answer so the admin sees whether the
mail went; a slower relay finishes in the background (``gateway.ops.mail``).

Must not put the link token in a record or a log, or mail anything but the link.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.config import Config
from gateway.console.certs import DOWNLOAD_PATH, MAIL_LINK_PATH, mail_address, token_hash
from gateway.console.overview import when
from gateway.console.work import in_worker
from gateway.manage.errors import ManageError
from gateway.manage.trail import AdminTrail
from gateway.ops.mail import Letter
from gateway.store.store import Store

if TYPE_CHECKING:
    from gateway.console.handler import Handler, Visit

WAIT_FOR_RELAY = 5.0  # seconds the page waits for the relay's answer
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")


def link_letter(config: Config, holder: str, to: str, link: str, expires: datetime) -> Letter:
    """The mail to the person: the link and short steps; no password, no stop code."""
    helpdesk = config.auth.helpdesk
    body = (f"Hello {holder},\n\n"
            "Your administrator has made you a certificate: a file that lets your browser "
            "open the company's applications.\n\n"
            f"1. Open this link. It works once, until {when(expires)}:\n"
            f"   {link}\n"
            "2. Click \"Download my certificate\" and save the file.\n"
            "3. Install the file in your browser: the page of the link shows the steps for "
            "Firefox, Chrome, Edge and Safari. The file is protected by a password: your "
            "administrator will tell you the password by phone. It is never sent by "
            "e-mail.\n"
            "4. Restart the browser. When it asks which certificate to use, choose the one "
            "with your name.\n\n"
            f"If you did not expect this e-mail, do not open the link and tell {helpdesk}.\n")
    return Letter("download", (to,), "Your certificate for the company's applications", body)


async def mail_link(visit: Visit) -> web.Response:
    """POST: e-mail the download link of the token on the hand-over page to its holder."""
    config, now = visit.runtime.state.config, visit.now
    token = visit.field("t")
    if config.mail is None:
        raise ManageError("e-mail is not set up on this gateway (no mail: section in the "
                          "config), so nothing was sent; pass the link on by hand")
    link = await visit.runtime.store.get_download(token_hash(token)) \
        if _TOKEN.fullmatch(token) else None
    if link is None:
        raise ManageError("that download link is not known, so nothing was sent")
    if link.used_at is not None or link.expires_at <= now:
        raise ManageError("that download link was already used or has expired, so nothing "
                          "was sent; issue a new certificate for the person")
    to = await mail_address(visit, link.holder)
    if to is None:
        raise ManageError(f"{link.holder} has no e-mail address, so nothing was sent; pass "
                          "the link on by hand")
    url = f"https://{visit.request.host}{DOWNLOAD_PATH}?t={token}"
    task = visit.runtime.postbox.send(
        config.mail, link_letter(config, link.holder, to, url, link.expires_at), now,
        f"with the download link of certificate {link.serial} to {link.holder}")
    done, _ = await asyncio.wait({task}, timeout=WAIT_FOR_RELAY)
    problem = task.result() if done else None
    result = "failed" if problem else "sent" if done else "sending"

    async def job(store: Store, trail: AdminTrail) -> None:
        await trail.record("download.mailed", result, user=link.holder, serial=link.serial,
                           detail={"to": to, "expires_at": link.expires_at.isoformat(),
                                   **({"problem": problem} if problem else {})})

    _, problems = await in_worker(config, visit.user, job)
    if problem:
        title, text = "E-mail not sent", (f"The e-mail to {to} could not be sent: {problem}. "
                                          "Pass the link on by hand (it is still on the "
                                          "hand-over page), and close this tab.")
    elif done:
        title, text = "E-mail sent", (f"The download link went to {to}. Tell {link.holder} "
                                      "the password by phone. You can close this tab.")
    else:
        title, text = "E-mail on its way", (f"The mail relay is slow to answer; the e-mail to "
                                            f"{to} is still being sent, and the gateway log "
                                            "says if it fails.")
    return visit.page("console_message.html", 502 if problem else 200, title=title,
                      text=text, back=None, here="/certificates",
                      error="; ".join(problems) or None, narrow=True)


ACTIONS: dict[str, Handler] = {MAIL_LINK_PATH: mail_link}
