"""Human and JSON renderings of a decision, for ``certgate policy explain``.

Given the policy set, both also say what the deciding allow rule asks of the second
factor and what the person has (``request.mfa_at``, their last TOTP): "needs a TOTP
newer than 15 min; last one 22 min ago".

Pure formatting; no I/O, no clock reads (the age is taken at ``request.now``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from policies.model import AccessRequest, Decision, PolicySet, Rule, describe


def deciding_allow_rule(policy_set: PolicySet, request: AccessRequest,
                        decision: Decision) -> Rule | None:
    """The allow rule that admitted (or would admit) the request, if one did."""
    app = policy_set.apps.get(request.host)
    if app is None or decision.rule is None:
        return None
    return next((rule for rule in app.allow if rule.id == decision.rule), None)


def span(delta: timedelta) -> str:
    """``timedelta(minutes=22)`` -> ``"22 min"``; ``90 s`` -> ``"1 min"``; days, hours, minutes."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "",
             f"{rest // 60} min" if rest // 60 else ""]
    return " ".join(p for p in parts if p)


def last_totp_age(request: AccessRequest) -> timedelta | None:
    return None if request.mfa_at is None else request.now - request.mfa_at


def second_factor_text(rule: Rule, request: AccessRequest) -> str:
    """What ``rule`` asks of the second factor, and what the person has."""
    if not rule.mfa_required:
        return "not needed: the certificate alone is enough for this rule"
    age, limit = last_totp_age(request), rule.mfa_max_age
    if age is None:
        newer = f" newer than {span(limit)}" if limit is not None else ""
        return f"needs a sign-in with password and a TOTP code{newer}; no session yet"
    if limit is None:
        return f"needs a sign-in with password and a TOTP code; signed in {span(age)} ago"
    return f"needs a TOTP newer than {span(limit)}; last one {span(age)} ago"


def explain_lines(request: AccessRequest, decision: Decision,
                  policy_set: PolicySet | None = None) -> list[str]:
    groups = ", ".join(sorted(request.groups)) or "(none)"
    lines = [
        f"request:  {request.method} https://{request.host}{request.path}",
        f"user:     {request.user} (groups: {groups}) from {request.source_ip}",
        f"at:       {request.now.isoformat()}",
        f"app:      {decision.app or '(no app for this host)'}",
        f"decision: {decision.effect.value}",
        f"reason:   {decision.reason.value}: {describe(decision.reason)}",
        f"rule:     {decision.rule or '(no rule matched)'}",
    ]
    rule = deciding_allow_rule(policy_set, request, decision) if policy_set is not None else None
    if rule is not None:
        lines.append(f"mfa:      {second_factor_text(rule, request)}")
    return lines


def decision_to_json(request: AccessRequest, decision: Decision,
                     policy_set: PolicySet | None = None) -> dict[str, Any]:
    rule = deciding_allow_rule(policy_set, request, decision) if policy_set is not None else None
    age = last_totp_age(request)
    max_age = rule.mfa_max_age if rule is not None else None
    return {
        "request": {
            "host": request.host,
            "method": request.method,
            "path": request.path,
            "user": request.user,
            "groups": sorted(request.groups),
            "source_ip": str(request.source_ip),
            "at": request.now.isoformat(),
        },
        "app": decision.app,
        "decision": decision.effect.value,
        "reason": decision.reason.value,
        "message": describe(decision.reason),
        "rule": decision.rule,
        # What the deciding allow rule asks of the second factor (false when no
        # allow rule decided) and the age of the person's last TOTP (null: none).
        "mfa_required": rule is not None and rule.mfa_required,
        "mfa_max_age_seconds": max_age.total_seconds() if max_age is not None else None,
        "last_totp_age_seconds": age.total_seconds() if age is not None else None,
        "mfa": second_factor_text(rule, request) if rule is not None else None,
    }
