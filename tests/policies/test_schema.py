"""Every bad policy value is refused with a message a person understands."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from policies.schema import AppPolicySpec, parse_days

BASE: dict[str, Any] = {"name": "wiki", "host": "wiki.example.test",
                        "allow": [{"groups": ["staff"]}]}


def with_(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


REFUSED = [
    ("bad-cidr", with_(allow=[{"groups": ["a"], "source_networks": ["10.0.0.300/8"]}]),
     "not a valid network"),
    ("host-bits", with_(allow=[{"groups": ["a"], "source_networks": ["192.0.2.5/24"]}]),
     "did you mean 192.0.2.0/24"),
    ("bad-method", with_(allow=[{"groups": ["a"], "methods": ["GE T"]}]), "not an HTTP method"),
    ("bad-tz", with_(allow=[{"groups": ["a"], "hours": {"from": "08:00", "to": "09:00",
                                                         "tz": "Mars/Base"}}]),
     "not a known time zone"),
    ("bad-days", with_(allow=[{"groups": ["a"], "hours": {"days": "mon-funday", "from": "08:00",
                                                           "to": "09:00"}}]),
     "not a day range"),
    ("backwards-days", with_(allow=[{"groups": ["a"], "hours": {"days": "fri-mon",
                                                                 "from": "08:00", "to": "09:00"}}]),
     "runs backwards"),
    ("empty-window", with_(allow=[{"groups": ["a"], "hours": {"from": "08:00", "to": "08:00"}}]),
     "would be empty"),
    ("bad-time", with_(allow=[{"groups": ["a"], "hours": {"from": "8 am", "to": "09:00"}}]),
     "not a time of day"),
    ("allow-without-people", with_(allow=[{"methods": ["GET"]}]), "must say who it admits"),
    # Stored names are lowercase: 'Admins' or 'Alice' could never match anyone.
    ("group-in-capitals", with_(allow=[{"groups": ["staff", "Admins"]}]),
     "could never match anyone: write 'admins'"),
    ("user-in-capitals", with_(deny=[{"users": ["Alice"]}]),
     "'Alice' is not a user name (lowercase"),
    ("group-with-space", with_(allow=[{"groups": ["it admins"]}]), "'it admins' is not a group"),
    ("empty-allow-rule", with_(allow=[{}]), "must say who it admits"),
    ("empty-deny-rule", with_(deny=[{}]), "at least one condition"),
    ("empty-list", with_(allow=[{"groups": []}]), "the list is empty"),
    ("relative-path", with_(deny=[{"paths": ["admin"]}]), "must start with '/'"),
    ("dot-path", with_(deny=[{"paths": ["/a/../admin"]}]), "plain normalised path"),
    ("age-without-mfa", with_(mfa_max_age="15m"), "mfa is not 'required'"),
    ("bad-age", with_(mfa="required", mfa_max_age="soon"), "not a duration"),
    ("bad-mfa", with_(mfa="maybe"), "'none' or 'required'"),
    ("unknown-key", with_(alow=[{"groups": ["a"]}]), "alow"),
    ("unknown-rule-key", with_(allow=[{"group": ["a"]}]), "group"),
    ("bad-name", with_(name="Wiki App"), "not an app name"),
    ("host-with-port", with_(host="wiki.example.test:8443"), "bare hostname"),
    ("host-with-scheme", with_(host="https://wiki"), "bare hostname"),
    ("bad-host", with_(host="wi_ki..test"), "not a valid hostname"),
]


@pytest.mark.parametrize(("data", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        AppPolicySpec.model_validate(data)
    assert message in str(info.value)


def test_accepts_a_full_app_and_normalises() -> None:
    spec = AppPolicySpec.model_validate(with_(
        host="PBX.Example.Test.", mfa="required", mfa_max_age="15m",
        allow=[{"groups": ["x"], "methods": ["get", "post"],
                "hours": {"days": "mon,wed-fri", "from": "08:00", "to": "19:00"}}]))
    assert spec.host == "pbx.example.test"
    assert spec.allow[0].methods == ("GET", "POST")
    assert spec.mfa_max_age == timedelta(minutes=15)


@pytest.mark.parametrize(("text", "days"), [
    ("mon-fri", {0, 1, 2, 3, 4}), ("sat,sun", {5, 6}), ("mon,wed-fri", {0, 2, 3, 4}),
    ("mon-sun", set(range(7))),
])
def test_days(text: str, days: set[int]) -> None:
    assert parse_days(text) == days


def test_rule_methods_must_be_known_or_declared() -> None:
    spec = {"name": "git", "host": "git.test", "allow": [{"everyone": True, "methods": ["GIT"]}]}
    with pytest.raises(ValidationError, match="allow\\[0\\] names method 'GIT'.*extra_methods"):
        AppPolicySpec.model_validate(spec)
    declared = AppPolicySpec.model_validate({**spec, "extra_methods": ["git"]})
    assert declared.extra_methods == ("GIT",)
    ok = AppPolicySpec.model_validate({**spec, "allow": [{"everyone": True,
                                                          "methods": ["propfind", "PATCH"]}]})
    assert ok.allow[0].methods == ("PROPFIND", "PATCH")
