"""The second factor per allow rule: a rule's ``mfa``/``mfa_max_age`` override its app's
for the requests that rule admits, and settings that could never apply are refused."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from policies.engine import evaluate
from policies.loader import PolicyError, build_policy_set, load_policies
from policies.model import AccessRequest, Effect, PolicySet, Reason
from policies.schema import AppPolicySpec

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

APPS: list[dict[str, Any]] = [
    # The PBX: staff reach the phonebook with the certificate alone; admins reach
    # /admin only with a TOTP newer than 15 min. The app itself asks for nothing.
    {"name": "pbx", "host": "pbx.test",
     "allow": [{"groups": ["staff"], "paths": ["/phonebook"]},
               {"groups": ["pbx-admins"], "paths": ["/admin"], "mfa": "required",
                "mfa_max_age": "15m"}]},
    # An app that asks for a fresh TOTP (1 h), with a certificate-only status page
    # and a stricter rule for the books.
    {"name": "acct", "host": "acct.test", "mfa": "required", "mfa_max_age": "1h",
     "allow": [{"everyone": True, "paths": ["/status"], "mfa": "none"},
               {"groups": ["finance"], "paths": ["/books"], "mfa_max_age": "5m"},
               {"groups": ["finance"], "paths": ["/reports"], "mfa": "required"},
               {"groups": ["staff"]}]},
    # mfa: required on a rule with no age anywhere: any TOTP of the session will do.
    {"name": "hr", "host": "hr.test",
     "allow": [{"groups": ["hr"], "mfa": "required"}, {"groups": ["staff"]}]},
    # The app asks for MFA but its only rule waives it: the cookie is never read.
    {"name": "kiosk", "host": "kiosk.test", "mfa": "required",
     "allow": [{"everyone": True, "mfa": "none"}]},
]


@pytest.fixture(scope="module")
def policy_set() -> PolicySet:
    return build_policy_set([AppPolicySpec.model_validate(a) for a in APPS])


def req(host: str, path: str = "/", *groups: str, mfa_ago: timedelta | None = None
        ) -> AccessRequest:
    return AccessRequest(host=host, method="GET", path=path, user="alice",
                         groups=frozenset(groups or ("staff",)),
                         source_ip=ipaddress.ip_address("192.0.2.1"), now=NOW,
                         mfa_at=None if mfa_ago is None else NOW - mfa_ago)


ALLOW, NEED, DENY = Effect.ALLOW, Effect.NEED_MFA, Effect.DENY
OK, MISSING, OLD = Reason.ALLOWED, Reason.MFA_REQUIRED, Reason.MFA_TOO_OLD

CASES = [
    # id, request, effect, reason, rule
    ("pbx-phonebook-cert-only", req("pbx.test", "/phonebook"), ALLOW, OK, "pbx.allow[0]"),
    ("pbx-admin-no-session", req("pbx.test", "/admin", "pbx-admins"), NEED, MISSING,
     "pbx.allow[1]"),
    ("pbx-admin-fresh", req("pbx.test", "/admin", "pbx-admins", mfa_ago=14 * MIN), ALLOW, OK,
     "pbx.allow[1]"),
    ("pbx-admin-stale", req("pbx.test", "/admin", "pbx-admins", mfa_ago=16 * MIN), NEED, OLD,
     "pbx.allow[1]"),
    ("pbx-staff-not-admin", req("pbx.test", "/admin"), DENY, Reason.NO_MATCHING_ALLOW_RULE,
     None),
    ("acct-status-waived", req("acct.test", "/status"), ALLOW, OK, "acct.allow[0]"),
    ("acct-books-own-age", req("acct.test", "/books", "finance", mfa_ago=6 * MIN), NEED, OLD,
     "acct.allow[1]"),
    ("acct-books-fresh", req("acct.test", "/books", "finance", mfa_ago=4 * MIN), ALLOW, OK,
     "acct.allow[1]"),
    ("acct-reports-app-age", req("acct.test", "/reports", "finance", mfa_ago=50 * MIN), ALLOW,
     OK, "acct.allow[2]"),
    ("acct-reports-app-age-stale", req("acct.test", "/reports", "finance", mfa_ago=61 * MIN),
     NEED, OLD, "acct.allow[2]"),
    ("acct-staff-app-setting", req("acct.test", "/"), NEED, MISSING, "acct.allow[3]"),
    ("acct-staff-app-age", req("acct.test", "/", mfa_ago=59 * MIN), ALLOW, OK, "acct.allow[3]"),
    ("hr-rule-required", req("hr.test", "/", "hr"), NEED, MISSING, "hr.allow[0]"),
    ("hr-rule-any-age", req("hr.test", "/", "hr", mfa_ago=timedelta(days=1)), ALLOW, OK,
     "hr.allow[0]"),
    ("hr-staff-cert-only", req("hr.test", "/"), ALLOW, OK, "hr.allow[1]"),
    ("kiosk-waived", req("kiosk.test"), ALLOW, OK, "kiosk.allow[0]"),
]


@pytest.mark.parametrize(("request_", "effect", "reason", "rule"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_decides_the_second_factor(policy_set: PolicySet, request_: AccessRequest,
                                        effect: Effect, reason: Reason, rule: str | None) -> None:
    decision = evaluate(policy_set, request_)
    assert (decision.effect, decision.reason, decision.rule) == (effect, reason, rule)


@pytest.mark.parametrize(("host", "may_need"), [
    ("pbx.test", True), ("acct.test", True), ("hr.test", True), ("kiosk.test", False),
])
def test_may_need_mfa_is_precomputed(policy_set: PolicySet, host: str, may_need: bool) -> None:
    assert policy_set.apps[host].may_need_mfa is may_need


def test_rules_carry_the_resolved_setting(policy_set: PolicySet) -> None:
    acct = policy_set.apps["acct.test"]
    assert [(r.mfa_required, r.mfa_max_age) for r in acct.allow] == [
        (False, None), (True, 5 * MIN), (True, 60 * MIN), (True, 60 * MIN)]
    assert [(r.mfa_required, r.mfa_max_age) for r in policy_set.apps["pbx.test"].allow] == [
        (False, None), (True, 15 * MIN)]


BASE: dict[str, Any] = {"name": "pbx", "host": "pbx.test"}
ADMINS: dict[str, Any] = {"groups": ["pbx-admins"]}

REFUSED = [
    ("age-without-mfa-anywhere", {"allow": [{**ADMINS, "mfa_max_age": "15m"}]},
     "allow[0] sets mfa_max_age, but neither the rule nor the app has mfa: required"),
    ("age-on-a-waived-rule", {"mfa": "required", "allow": [{**ADMINS, "mfa": "none",
                                                            "mfa_max_age": "15m"}]},
     "mfa_max_age is set but this rule says mfa: none"),
    ("zero-age", {"allow": [{**ADMINS, "mfa": "required", "mfa_max_age": "0s"}]},
     "mfa_max_age must be greater than zero"),
    ("negative-age", {"allow": [{**ADMINS, "mfa": "required", "mfa_max_age": -5}]},
     "a duration cannot be negative"),
    ("word-age", {"allow": [{**ADMINS, "mfa": "required", "mfa_max_age": "soon"}]},
     "'soon' is not a duration"),
    ("bool-age", {"allow": [{**ADMINS, "mfa": "required", "mfa_max_age": True}]},
     "expected a duration"),
    ("bad-rule-mfa", {"allow": [{**ADMINS, "mfa": "sometimes"}]}, "'none' or 'required'"),
    ("mfa-on-deny", {"allow": [ADMINS], "deny": [{"paths": ["/x"], "mfa": "required"}]},
     "a deny rule cannot set mfa or mfa_max_age"),
]


@pytest.mark.parametrize(("changes", "message"), [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        AppPolicySpec.model_validate({**BASE, **changes})
    assert message in str(info.value)


def test_a_bad_rule_line_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "certgate.yaml"
    path.write_text("apps:\n"
                    "  - name: pbx\n"
                    "    host: pbx.test\n"
                    "    allow:\n"
                    "      - groups: [pbx-admins]\n"
                    "        mfa: required\n"
                    "        mfa_max_age: 15 minutes\n")
    with pytest.raises(PolicyError) as info:
        load_policies(path)
    (issue,) = info.value.issues
    assert str(issue).startswith(f"{path}:7: apps[0].allow[0].mfa_max_age: '15 minutes' is "
                                 "not a duration")
