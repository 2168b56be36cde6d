"""Explanations name the decision, reason and rule."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest

from policies.engine import evaluate
from policies.explain import decision_to_json, explain_lines, span
from policies.loader import build_policy_set
from policies.model import AccessRequest
from policies.schema import AppPolicySpec


def test_explain_names_rule_and_reason() -> None:
    policy_set = build_policy_set([AppPolicySpec.model_validate(
        {"name": "wiki", "host": "wiki.test", "allow": [{"groups": ["staff"]}],
         "deny": [{"paths": ["/secret"]}]})])
    request = AccessRequest(host="wiki.test", method="GET", path="/secret/x", user="alice",
                            groups=frozenset({"staff"}), source_ip=ipaddress.ip_address("::1"),
                            now=datetime(2026, 1, 1, tzinfo=UTC))
    decision = evaluate(policy_set, request)
    text = "\n".join(explain_lines(request, decision))
    assert "decision: deny" in text and "rule:     wiki.deny[0]" in text
    assert "reason:   denied-by-rule" in text
    data = decision_to_json(request, decision)
    assert (data["decision"], data["reason"], data["rule"], data["app"]) == (
        "deny", "denied-by-rule", "wiki.deny[0]", "wiki")


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(seconds=0), "0 s"), (timedelta(seconds=59), "59 s"),
    (timedelta(seconds=90), "1 min"), (timedelta(minutes=22, seconds=40), "22 min"),
    (timedelta(hours=2), "2 h"), (timedelta(hours=3, minutes=5), "3 h 5 min"),
    (timedelta(days=1), "1 d"), (timedelta(days=2, minutes=1), "2 d 1 min"),
    (timedelta(seconds=-5), "0 s"),
])
def test_span(delta: timedelta, text: str) -> None:
    assert span(delta) == text
