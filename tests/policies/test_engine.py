"""The pure engine, one table row per case."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.engine import evaluate
from policies.loader import build_policy_set
from policies.model import AccessRequest, Effect, PolicySet, Reason
from policies.schema import AppPolicySpec

APPS: list[dict[str, Any]] = [
    {"name": "wiki", "host": "wiki.example.test", "allow": [{"groups": ["staff"]}]},
    {
        "name": "pbx-admin", "host": "pbx.example.test",
        "allow": [{"groups": ["pbx-admins"], "methods": ["GET", "POST"],
                   "source_networks": ["192.0.2.0/24", "2001:db8::/32"],
                   "hours": {"days": "mon-fri", "from": "08:00", "to": "19:00",
                             "tz": "Europe/Rome"}}],
        "deny": [{"paths": ["/admin/config/backup*"]}],
        "mfa": "required", "mfa_max_age": "15m",
    },
    {"name": "api", "host": "api.example.test",
     "allow": [{"users": ["robot"], "paths": ["/api", "/v2/*/status"]},
               {"groups": ["ops"], "users": ["carol"]}]},
    {"name": "night", "host": "night.example.test",
     "allow": [{"everyone": True, "hours": {"from": "22:00", "to": "06:00", "days": "fri",
                                            "tz": "UTC"}}]},
    {"name": "open", "host": "open.example.test", "allow": [{"everyone": True}],
     "deny": [{"users": ["mallory"]}, {"methods": ["DELETE"], "groups": ["interns"]}]},
]

# Tuesday 2026-11-24, 10:00 in Rome (09:00 UTC).
WORKDAY = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy_set() -> PolicySet:
    return build_policy_set([AppPolicySpec.model_validate(a) for a in APPS])


def req(host: str, *, user: str = "alice", groups: tuple[str, ...] = ("staff",),
        method: str = "GET", path: str = "/", ip: str = "192.0.2.10",
        now: datetime = WORKDAY, mfa_ago: timedelta | None = None) -> AccessRequest:
    return AccessRequest(host=host, method=method, path=path, user=user,
                         groups=frozenset(groups), source_ip=ipaddress.ip_address(ip), now=now,
                         mfa_at=None if mfa_ago is None else now - mfa_ago)


PBX = dict(groups=("pbx-admins",), mfa_ago=timedelta(minutes=1))

CASES = [
    # id, request, effect, reason, rule
    ("staff-in-wiki", req("wiki.example.test"), Effect.ALLOW, Reason.ALLOWED, "wiki.allow[0]"),
    ("not-staff", req("wiki.example.test", groups=("sales",)), Effect.DENY,
     Reason.NO_MATCHING_ALLOW_RULE, None),
    ("no-groups", req("wiki.example.test", groups=()), Effect.DENY,
     Reason.NO_MATCHING_ALLOW_RULE, None),
    ("unknown-host", req("nope.example.test"), Effect.DENY, Reason.ROUTE_NOT_FOUND, None),
    ("pbx-ok", req("pbx.example.test", **PBX), Effect.ALLOW, Reason.ALLOWED, "pbx-admin.allow[0]"),
    ("pbx-v6-ok", req("pbx.example.test", ip="2001:db8::5", **PBX), Effect.ALLOW, Reason.ALLOWED,
     "pbx-admin.allow[0]"),
    ("pbx-wrong-method", req("pbx.example.test", method="DELETE", **PBX), Effect.DENY,
     Reason.NO_MATCHING_ALLOW_RULE, None),
    ("pbx-outside-net", req("pbx.example.test", ip="198.51.100.7", **PBX), Effect.DENY,
     Reason.NO_MATCHING_ALLOW_RULE, None),
    ("pbx-saturday", req("pbx.example.test", now=WORKDAY + timedelta(days=4), **PBX),
     Effect.DENY, Reason.NO_MATCHING_ALLOW_RULE, None),
    ("pbx-evening-rome", req("pbx.example.test", now=WORKDAY.replace(hour=18, minute=30), **PBX),
     Effect.DENY, Reason.NO_MATCHING_ALLOW_RULE, None),  # 19:30 in Rome
    ("pbx-just-before-close", req("pbx.example.test", now=WORKDAY.replace(hour=17, minute=59),
                                  **PBX), Effect.ALLOW, Reason.ALLOWED, "pbx-admin.allow[0]"),
    # 06:30 UTC is 08:30 CEST in July (open) but 07:30 CET in January (closed).
    ("pbx-summer-time", req("pbx.example.test", now=datetime(2026, 7, 7, 6, 30, tzinfo=UTC),
                            **PBX), Effect.ALLOW, Reason.ALLOWED, "pbx-admin.allow[0]"),
    ("pbx-winter-early", req("pbx.example.test", now=datetime(2026, 1, 13, 6, 30, tzinfo=UTC),
                             **PBX), Effect.DENY, Reason.NO_MATCHING_ALLOW_RULE, None),
    ("pbx-denied-path", req("pbx.example.test", path="/admin/config/backup/run", **PBX),
     Effect.DENY, Reason.DENIED_BY_RULE, "pbx-admin.deny[0]"),
    ("pbx-denied-glob-exact", req("pbx.example.test", path="/admin/config/backup", **PBX),
     Effect.DENY, Reason.DENIED_BY_RULE, "pbx-admin.deny[0]"),
    ("deny-wins-for-outsiders", req("pbx.example.test", path="/admin/config/backup.tar",
                                    groups=("sales",)), Effect.DENY, Reason.DENIED_BY_RULE,
     "pbx-admin.deny[0]"),
    ("pbx-no-mfa", req("pbx.example.test", groups=("pbx-admins",)), Effect.NEED_MFA,
     Reason.MFA_REQUIRED, "pbx-admin.allow[0]"),
    ("pbx-old-mfa", req("pbx.example.test", groups=("pbx-admins",),
                        mfa_ago=timedelta(minutes=16)), Effect.NEED_MFA, Reason.MFA_TOO_OLD,
     "pbx-admin.allow[0]"),
    ("api-prefix", req("api.example.test", user="robot", groups=(), path="/api/x"),
     Effect.ALLOW, Reason.ALLOWED, "api.allow[0]"),
    ("api-prefix-exact", req("api.example.test", user="robot", groups=(), path="/api"),
     Effect.ALLOW, Reason.ALLOWED, "api.allow[0]"),
    ("api-prefix-boundary", req("api.example.test", user="robot", groups=(), path="/apix"),
     Effect.DENY, Reason.NO_MATCHING_ALLOW_RULE, None),
    ("api-glob-crosses", req("api.example.test", user="robot", groups=(),
                             path="/v2/a/b/status"), Effect.ALLOW, Reason.ALLOWED, "api.allow[0]"),
    ("api-glob-end", req("api.example.test", user="robot", groups=(), path="/v2/a/statusx"),
     Effect.DENY, Reason.NO_MATCHING_ALLOW_RULE, None),
    ("api-other-user", req("api.example.test", user="alice", path="/api"), Effect.DENY,
     Reason.NO_MATCHING_ALLOW_RULE, None),
    ("users-or-groups-user", req("api.example.test", user="carol", groups=()), Effect.ALLOW,
     Reason.ALLOWED, "api.allow[1]"),
    ("users-or-groups-group", req("api.example.test", user="dave", groups=("ops",)),
     Effect.ALLOW, Reason.ALLOWED, "api.allow[1]"),
    ("overnight-friday-late", req("night.example.test", now=datetime(2026, 11, 27, 23, 0,
                                                                    tzinfo=UTC)),
     Effect.ALLOW, Reason.ALLOWED, "night.allow[0]"),
    ("overnight-saturday-early", req("night.example.test", now=datetime(2026, 11, 28, 5, 59,
                                                                       tzinfo=UTC)),
     Effect.ALLOW, Reason.ALLOWED, "night.allow[0]"),
    ("overnight-saturday-late", req("night.example.test", now=datetime(2026, 11, 28, 23, 0,
                                                                      tzinfo=UTC)),
     Effect.DENY, Reason.NO_MATCHING_ALLOW_RULE, None),
    ("overnight-friday-day", req("night.example.test", now=datetime(2026, 11, 27, 12, 0,
                                                                   tzinfo=UTC)),
     Effect.DENY, Reason.NO_MATCHING_ALLOW_RULE, None),
    ("everyone", req("open.example.test", groups=()), Effect.ALLOW, Reason.ALLOWED,
     "open.allow[0]"),
    ("deny-user", req("open.example.test", user="mallory"), Effect.DENY, Reason.DENIED_BY_RULE,
     "open.deny[0]"),
    ("deny-method-group", req("open.example.test", method="DELETE", groups=("interns",)),
     Effect.DENY, Reason.DENIED_BY_RULE, "open.deny[1]"),
    ("deny-method-other-group", req("open.example.test", method="DELETE", groups=("staff",)),
     Effect.ALLOW, Reason.ALLOWED, "open.allow[0]"),
]


@pytest.mark.parametrize(("request_", "effect", "reason", "rule"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decisions(policy_set: PolicySet, request_: AccessRequest, effect: Effect,
                   reason: Reason, rule: str | None) -> None:
    decision = evaluate(policy_set, request_)
    assert (decision.effect, decision.reason, decision.rule) == (effect, reason, rule)
    assert decision.allowed is (effect is Effect.ALLOW)


@settings(max_examples=300, deadline=None)
@given(path=st.text(min_size=0, max_size=40), method=st.text(min_size=1, max_size=8),
       groups=st.frozensets(st.sampled_from(["sales", "interns", "x"])),
       host=st.sampled_from(["wiki.example.test", "pbx.example.test", "api.example.test",
                             "zzz.example.test"]))
def test_never_raises_and_denies_by_default(policy_set: PolicySet, path: str, method: str,
                                            groups: frozenset[str], host: str) -> None:
    # People in none of the allowed groups and not named anywhere never get in.
    request_ = AccessRequest(host=host, method=method, path=path, user="stranger", groups=groups,
                             source_ip=ipaddress.ip_address("192.0.2.1"), now=WORKDAY)
    assert evaluate(policy_set, request_).effect is Effect.DENY
