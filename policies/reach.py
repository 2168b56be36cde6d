"""Who can reach which app: a person's standing with one app's policy, in plain words.

``reach(app, user, groups)`` reads the app's rules the way the engine applies them
(deny rules first, then allow rules) but for *every* request at once: ``none``
when no allow rule names the person or a deny rule naming them has no other
condition, ``full`` when an unconditional allow rule names them and no deny rule
limits them, ``limited`` otherwise, with each condition spelt out ("only GET",
"only from 192.0.2.0/24", "not /admin"). ``second_factor`` says whether the rules
that admit the person ask for password + TOTP: ``always``, ``sometimes`` or ``never``.

Pure: plain data in, a ``Reach`` out; no I/O, no clock (a time window is named,
not evaluated).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from policies.model import AppPolicy, Rule, TimeWindow

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class Reach:
    """``level``: ``full``, ``limited`` or ``none``; ``conditions``: what limits it."""

    level: str
    second_factor: str
    conditions: tuple[str, ...]
    rules: tuple[str, ...]  # the allow and deny rules that name the person


def names(rule: Rule, user: str, groups: frozenset[str]) -> bool:
    """The rule applies to this person (it names them, a group of theirs, or everyone)."""
    if rule.users is None and rule.groups is None:
        return True
    return (rule.users is not None and user in rule.users) or (
        rule.groups is not None and not rule.groups.isdisjoint(groups))


def _days(days: frozenset[int]) -> str:
    ordered = sorted(days)
    if len(ordered) == 7:
        return "every day"
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{_DAYS[ordered[0]]}-{_DAYS[ordered[-1]]}"
    return ", ".join(_DAYS[d] for d in ordered)


def _clock(t: time) -> str:
    return t.strftime("%H:%M")


def window_text(window: TimeWindow) -> str:
    """``Mon-Fri 08:00-18:00 Europe/Berlin``."""
    return f"{_days(window.days)} {_clock(window.start)}-{_clock(window.end)} {window.tz.key}"


def _limits(rule: Rule) -> list[str]:
    """What, besides the person, the rule asks of a request."""
    out = []
    if rule.methods is not None:
        out.append("requests " + ", ".join(sorted(rule.methods)))
    if rule.paths is not None:
        out.append("paths " + ", ".join(rule.paths.patterns))
    if rule.networks is not None:
        out.append("from " + ", ".join(str(n) for n in rule.networks))
    if rule.hours is not None:
        out.append(window_text(rule.hours))
    return out


def reach(app: AppPolicy, user: str, groups: frozenset[str]) -> Reach:
    """This person's standing with ``app`` under its rules (see the module docstring)."""
    allows = [r for r in app.allow if names(r, user, groups)]
    denies = [r for r in app.deny if names(r, user, groups)]
    rules = tuple(r.id for r in (*allows, *denies))
    blocked = next((r for r in denies if not _limits(r)), None)
    if not allows or blocked is not None:
        why = (f"denied by rule {blocked.id}" if blocked is not None
               else "no allow rule names this person")
        return Reach("none", "never", (why,), rules)
    mfa = [r.mfa_required for r in allows]
    factor = "always" if all(mfa) else "sometimes" if any(mfa) else "never"
    conditions: list[str] = []
    if not any(not _limits(r) for r in allows):  # every allow rule has a condition
        conditions.append("only " + "; or ".join(" and ".join(_limits(r)) for r in allows))
    for rule in denies:
        conditions.append("not " + " and ".join(_limits(rule)))
    return Reach("limited" if conditions else "full", factor, tuple(conditions), rules)
