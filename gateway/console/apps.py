"""The console's apps page, read-only: today's policy per app, who can reach each app
(``policies.reach``, the pure engine's standing of every enabled person), and "why
can't X reach Y" (``policies.engine.evaluate`` + ``policies.explain``, as
``certgate policy explain``, with the person's groups and newest second factor from
the store).

Reads only; must not change anything (policies live in the config file).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.http.paths import STRICT, AmbiguousPathError, judged_path, normalise_path
from gateway.http.routing import path_rules_for
from gateway.manage.errors import ManageError
from gateway.manage.factors import last_totp_at
from policies.engine import evaluate
from policies.explain import explain_lines
from policies.model import AccessRequest
from policies.reach import Reach, reach

if TYPE_CHECKING:
    from gateway.console.handler import Visit


async def show(visit: Visit) -> web.Response:
    config = visit.runtime.state.config
    policies = sorted(config.policy_set.apps.values(), key=lambda a: a.name)
    people = [u for u in await visit.runtime.store.list_users() if u.enabled]
    standing: dict[str, list[tuple[str, Reach]]] = {}
    for app in policies:
        standing[app.name] = [(u.name, r) for u in people
                              if (r := reach(app, u.name, frozenset(u.groups))).level != "none"]
    query = visit.request.query
    asked = {k: query.get(k, "").strip()[:256] for k in ("user", "app", "path", "method",
                                                          "source_ip")}
    lines = await _explain(visit, asked) if asked["user"] and asked["app"] else None
    return visit.page("console_apps.html", title="Apps", here="/apps", policies=policies,
                      standing=standing, asked=asked, lines=lines)


async def _explain(visit: Visit, asked: dict[str, str]) -> list[str]:
    """The ``policy explain`` lines for the question, or a refusal in one sentence."""
    config = visit.runtime.state.config
    app = next((a for a in config.policy_set.apps.values() if a.name == asked["app"]), None)
    if app is None:
        raise ManageError(f"there is no app named '{asked['app']}'")
    spec = next((a for a in config.apps if a.name == app.name), None)
    try:
        path = judged_path(normalise_path(asked["path"] or "/",
                                          path_rules_for(spec) if spec else STRICT))
    except AmbiguousPathError as exc:
        raise ManageError(f"the gateway refuses this path with 400: {exc}") from None
    try:
        ip = ipaddress.ip_address(asked["source_ip"] or "127.0.0.1")
    except ValueError:
        raise ManageError(f"'{asked['source_ip']}' is not an IP address") from None
    store, now = visit.runtime.store, visit.now
    person = await store.get_user(asked["user"])
    mfa_at = await last_totp_at(store, person.name, at=now, idle=config.auth.session_idle,
                                absolute=config.auth.session_absolute)
    request = AccessRequest(host=app.host, method=(asked["method"] or "GET").upper(),
                            path=path, user=person.name, groups=frozenset(person.groups),
                            source_ip=ip, now=now, mfa_at=mfa_at)
    lines = explain_lines(request, evaluate(config.policy_set, request), config.policy_set)
    return lines if person.enabled else [f"{person.name} is disabled: refused before any "
                                         "policy is asked.", *lines]
