"""The console's users and sessions pages: add, disable/enable, groups, e-mail, reset
the authenticator, set a password reset, unlock; list and end sessions.

Each change calls the same ``gateway.manage`` use-case as ``certgate user …`` /
``certgate session kill`` and writes the same audit record (``user.add``,
``user.disable``, ``user.groups``, ``user.email``, ``totp.pending``,
``password.reset``, ``unlock``, ``session.kill``), with the console user as actor.
Changes that take access away (disable, reset the authenticator, a password reset)
go through a confirmation page, as do the groups and the e-mail address.
The console never sets a password: a new person, and one whose password is reset,
gets a one-time set-up code (shown once, on a ``no-store`` page) and chooses it at
sign-in (``gateway.auth.reset``); a new person's and a reset authenticator is left to
them ("pending"), so no shell on the gateway is needed. The set-up code is hashed in a
worker thread; everything else here is a quick database write on the gateway's store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.console.overview import when
from gateway.console.work import actor
from gateway.manage import factors, resets, users
from gateway.manage.errors import ManageError
from gateway.manage.trail import AdminTrail

if TYPE_CHECKING:
    from gateway.console.handler import Handler, Visit

CONFIRMED = {"disable": "Disable", "enable": "Enable", "reset-totp": "Reset the authenticator of",
             "password-reset": "Set a password reset for", "unlock": "Unlock",
             "groups": "Change the groups of", "email": "Change the e-mail of"}


async def _recorded(visit: Visit, type_: str, reason: str, **kwargs: object) -> list[str]:
    """The change's audit record; one that can't be written is said on the page (the
    change stands, as with the CLI)."""
    trail = AdminTrail(visit.runtime.store, visit.runtime.state.config, actor(visit.user),
                       keep_going=True)
    await trail.record(type_, reason, **kwargs)  # type: ignore[arg-type]
    await trail.close()
    return trail.problems


def _groups(text: str) -> list[str]:
    return [g for g in (part.strip() for part in text.replace(",", " ").split()) if g]


async def show(visit: Visit) -> web.Response:
    store = visit.runtime.store
    person = visit.request.query.get("user", "").strip()[:128]
    people = [u for u in await store.list_users() if not person or person in u.name]
    locked = {f.subject for f in await store.locked_subjects(visit.now)}
    states = await store.totp_states()  # one query each, however many people
    found = await store.open_password_resets(visit.now)
    totp = {u.name: states.get(u.name) for u in people}
    open_resets = {u.name: found.get(u.name) for u in people}
    return visit.page("console_users.html", title="Users", here="/users", people=people,
                      locked=locked, totp=totp, resets=open_resets, person=person, when=when)


async def confirm(visit: Visit) -> web.Response:
    action = visit.request.query.get("action", "")
    if action not in CONFIRMED:
        raise ManageError(f"'{action[:40]}' is not something the console does to a user")
    found = await visit.runtime.store.get_user(visit.request.query.get("user", "")[:128])
    return visit.page("console_user_confirm.html", title=f"{CONFIRMED[action]} {found.name}",
                      here="/users", action=action, person=found, narrow=True)


async def add(visit: Visit) -> web.Response:
    name, email = visit.field("user"), visit.field("email") or None
    groups = _groups(visit.field("groups"))
    users.check_new_user(name, email, groups)
    store, config = visit.runtime.store, visit.runtime.state.config
    added = await users.add_user(store, name, email=email, groups=groups)
    problems = await _recorded(visit, "user.add", "added", user=added.name, detail={
        "email": added.email, "groups": list(added.groups), "password": False})
    # They choose the password and set up the authenticator themselves at first sign-in.
    await factors.mark_totp_pending(store, config, added.name)
    problems += await _recorded(visit, "totp.pending", "pending", user=added.name)
    return await _reset(visit, added.name, problems, added=True)


async def password_reset(visit: Visit) -> web.Response:
    return await _reset(visit, visit.field("user"), [])


async def _reset(visit: Visit, name: str, problems: list[str], *,
                 added: bool = False) -> web.Response:
    """Open a password reset and show its code, once."""
    store = visit.runtime.store
    reset = await resets.start_password_reset(store, name, visit.now,
                                              created_by=actor(visit.user))
    problems += await _recorded(visit, "password.reset", "set", user=reset.user, detail={
        "expires_at": reset.expires_at.isoformat(), "sessions_ended": reset.sessions_ended})
    totp = await store.get_totp(reset.user)
    return visit.page("console_reset.html", title=f"Password reset for {reset.user}",
                      here="/users", narrow=True, reset=reset, added=added, when=when,
                      pending=totp is not None and totp.state == "pending",
                      error="; ".join(problems) or None)


async def _enabled(visit: Visit, enabled: bool) -> web.Response:
    changed = await users.set_user_enabled(visit.runtime.store, visit.field("user"), enabled)
    problems = await _recorded(visit, "user.enable" if enabled else "user.disable",
                    "enabled" if enabled else "disabled", user=changed.name)
    after = ("." if enabled else ": their certificates stop working on every node within "
             "a second.")
    return _done(visit, f"{changed.name} is {'enabled' if enabled else 'disabled'}{after}",
                 problems=problems)


async def disable(visit: Visit) -> web.Response:
    return await _enabled(visit, False)


async def enable(visit: Visit) -> web.Response:
    return await _enabled(visit, True)


async def groups(visit: Visit) -> web.Response:
    name, store = visit.field("user"), visit.runtime.store
    wanted = users.check_groups(_groups(visit.field("groups")))
    before = (await store.get_user(name)).groups
    updated = await users.set_groups(store, name, wanted)
    problems = await _recorded(visit, "user.groups", "groups set", user=updated.name,
                    detail={"before": list(before), "after": list(updated.groups)})
    return _done(visit, f"{updated.name} is in: {', '.join(updated.groups) or '(no groups)'}.",
                 problems=problems)


async def email(visit: Visit) -> web.Response:
    name, store = visit.field("user"), visit.runtime.store
    wanted = users.check_email(visit.field("email") or None)
    before = (await store.get_user(name)).email
    updated = await users.set_email(store, name, wanted)
    problems = await _recorded(visit, "user.email", "email set" if wanted else "email cleared",
                               user=updated.name,
                               detail={"before": before, "after": updated.email})
    return _done(visit, f"The e-mail address of {updated.name} is {updated.email}." if wanted
                 else f"{updated.name} has no e-mail address now.", problems=problems)


async def reset_totp(visit: Visit) -> web.Response:
    name = visit.field("user")
    await factors.mark_totp_pending(visit.runtime.store, visit.runtime.state.config, name)
    problems = await _recorded(visit, "totp.pending", "pending", user=name)
    return _done(visit, f"The authenticator of {name} is forgotten and their sessions ended. "
                        f"{name} sets up a new one on their phone at their next sign-in "
                        "(certificate and password, then a code to scan): tell them to "
                        "have their phone ready.", problems=problems)


async def unlock(visit: Visit) -> web.Response:
    name = visit.field("user")
    cleared = await factors.unlock_user(visit.runtime.store, name)
    problems = (await _recorded(visit, "unlock", "unlocked", user=name,
                                detail={"counters": cleared}) if cleared else [])
    return _done(visit, f"{name} is unlocked." if cleared else
                 f"{name} was not locked; nothing to do.", problems=problems)


async def sessions(visit: Visit) -> web.Response:
    person = visit.request.query.get("user", "").strip()[:128]
    found = await visit.runtime.store.list_sessions(person or None)
    found.sort(key=lambda s: s.last_seen, reverse=True)
    return visit.page("console_sessions.html", title="Sessions", here="/sessions",
                      sessions=found, person=person, when=when)


async def kill(visit: Visit) -> web.Response:
    store = visit.runtime.store
    session_id, person = visit.field("session") or None, visit.field("user") or None
    owners = {person} if person else {s.user for s in await store.list_sessions()
                                      if s.id_hash.startswith(session_id or "-")}
    ended = await factors.end_sessions(store, session_id=session_id, user=person)
    problems = await _recorded(
        visit, "session.kill", "ended", user=owners.pop() if len(owners) == 1 else None,
        detail={"sessions": len(ended), "by": "user" if person else "id"}) if ended else []
    return _done(visit, f"Ended {len(ended)} session(s) on every node.", "/sessions", problems)


def _done(visit: Visit, text: str, back: str = "/users",
          problems: list[str] | None = None) -> web.Response:
    return visit.page("console_message.html", title="Done", text=text, back=back,
                      here=back, narrow=True, error="; ".join(problems or []) or None)


ACTIONS: dict[str, Handler] = {"/users/add": add, "/users/disable": disable,
                               "/users/enable": enable, "/users/groups": groups,
                               "/users/email": email,
                               "/users/reset-totp": reset_totp, "/users/unlock": unlock,
                               "/users/password-reset": password_reset,
                               "/sessions/kill": kill}
