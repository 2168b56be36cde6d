"""The decision engine: ``evaluate(policy_set, request) -> Decision``.

Pure and small, because it runs on every request: a host lookup in a dict, then
the app's deny rules, then its allow rules, each a handful of set and regex checks
precompiled at load time. Deny by default: no app or no matching allow rule means
deny, with a named reason and the id of the rule that decided. The allow rule that
matched says whether the second factor is needed and how fresh (its own setting or
its app's, resolved at load time).

No I/O, no clock reads (the caller passes ``now``), no await, no logging.
"""

from __future__ import annotations

from policies.model import (
    AccessRequest,
    AppPolicy,
    Decision,
    Effect,
    PolicySet,
    Reason,
    Rule,
)

_ROUTE_NOT_FOUND = Decision(Effect.DENY, Reason.ROUTE_NOT_FOUND)


def _names_person(rule: Rule, request: AccessRequest) -> bool:
    # users and groups together mean "these users or members of these groups".
    if rule.users is None and rule.groups is None:
        return True
    return (rule.users is not None and request.user in rule.users) or (
        rule.groups is not None and not rule.groups.isdisjoint(request.groups)
    )


def rule_matches(rule: Rule, request: AccessRequest) -> bool:
    """True when every condition the rule names holds for ``request``."""
    if not _names_person(rule, request):
        return False
    if rule.methods is not None and request.method not in rule.methods:
        return False
    if rule.paths is not None and not rule.paths.matches(request.path):
        return False
    if rule.networks is not None and not any(
        request.source_ip in net for net in rule.networks
    ):
        return False
    return rule.hours is None or rule.hours.contains(request.now)


def _first_match(rules: tuple[Rule, ...], request: AccessRequest) -> Rule | None:
    for rule in rules:
        if rule_matches(rule, request):
            return rule
    return None


def _mfa(app: AppPolicy, rule: Rule, request: AccessRequest) -> Decision:
    # The rule carries its app's setting unless it overrides it (resolved at load time).
    if request.mfa_at is None:
        return Decision(Effect.NEED_MFA, Reason.MFA_REQUIRED, app.name, rule.id)
    if rule.mfa_max_age is not None and request.now - request.mfa_at > rule.mfa_max_age:
        return Decision(Effect.NEED_MFA, Reason.MFA_TOO_OLD, app.name, rule.id)
    return Decision(Effect.ALLOW, Reason.ALLOWED, app.name, rule.id)


def evaluate(policy_set: PolicySet, request: AccessRequest) -> Decision:
    """Decide one request. Deny wins over allow; nothing matching means deny."""
    app = policy_set.apps.get(request.host)
    if app is None:
        return _ROUTE_NOT_FOUND
    denied = _first_match(app.deny, request)
    if denied is not None:
        return Decision(Effect.DENY, Reason.DENIED_BY_RULE, app.name, denied.id)
    allowed = _first_match(app.allow, request)
    if allowed is None:
        return Decision(Effect.DENY, Reason.NO_MATCHING_ALLOW_RULE, app.name)
    if allowed.mfa_required:
        return _mfa(app, allowed, request)
    return Decision(Effect.ALLOW, Reason.ALLOWED, app.name, allowed.id)
