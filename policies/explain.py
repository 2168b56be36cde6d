"""Human and JSON renderings of a decision, for ``certgate policy explain``.

Pure formatting; no I/O.
"""

from __future__ import annotations

from typing import Any

from policies.model import AccessRequest, Decision, describe


def explain_lines(request: AccessRequest, decision: Decision) -> list[str]:
    groups = ", ".join(sorted(request.groups)) or "(none)"
    return [
        f"request:  {request.method} https://{request.host}{request.path}",
        f"user:     {request.user} (groups: {groups}) from {request.source_ip}",
        f"at:       {request.now.isoformat()}",
        f"app:      {decision.app or '(no app for this host)'}",
        f"decision: {decision.effect.value}",
        f"reason:   {decision.reason.value}: {describe(decision.reason)}",
        f"rule:     {decision.rule or '(no rule matched)'}",
    ]


def decision_to_json(request: AccessRequest, decision: Decision) -> dict[str, Any]:
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
    }
