"""Who can reach an app: full, limited (with each condition in words) or none, and the
second factor, read from the rules as the engine applies them."""

from __future__ import annotations

from typing import Any

import pytest

from policies.loader import build_policy_set
from policies.reach import reach
from policies.schema import AppPolicySpec


def app(**spec: Any) -> Any:
    policy_set = build_policy_set([AppPolicySpec.model_validate(
        {"name": "wiki", "host": "wiki.test", **spec})])
    return policy_set.apps["wiki.test"]


@pytest.mark.parametrize(("spec", "user", "groups", "level", "factor", "conditions"), [
    ({"allow": [{"groups": ["staff"]}]}, "alice", {"staff"}, "full", "never", ()),
    ({"allow": [{"groups": ["staff"]}]}, "bob", {"sales"}, "none", "never",
     ("no allow rule names this person",)),
    ({"allow": [{"users": ["bob"]}]}, "bob", set(), "full", "never", ()),
    ({"allow": [{"groups": ["staff"]}], "deny": [{"users": ["alice"]}]}, "alice", {"staff"},
     "none", "never", ("denied by rule wiki.deny[0]",)),
    ({"allow": [{"groups": ["staff"]}], "deny": [{"paths": ["/admin"]}]}, "alice", {"staff"},
     "limited", "never", ("not paths /admin",)),
    ({"allow": [{"groups": ["staff"], "methods": ["GET"], "source_networks": ["192.0.2.0/24"]}]},
     "alice", {"staff"}, "limited", "never", ("only requests GET and from 192.0.2.0/24",)),
    ({"allow": [{"groups": ["staff"], "paths": ["/public"]}, {"users": ["alice"],
                                                               "methods": ["GET"]}]},
     "alice", {"staff"}, "limited", "never", ("only paths /public; or requests GET",)),
    ({"allow": [{"groups": ["staff"], "paths": ["/public"]}, {"groups": ["staff"]}]},
     "alice", {"staff"}, "full", "never", ()),  # one unconditional rule is enough
    ({"allow": [{"groups": ["staff"], "hours": {"days": "mon-fri", "from": "08:00",
                                                "to": "18:00", "tz": "Europe/Berlin"}}]},
     "alice", {"staff"}, "limited", "never", ("only Mon-Fri 08:00-18:00 Europe/Berlin",)),
    ({"allow": [{"groups": ["staff"]}], "mfa": "required"}, "alice", {"staff"}, "full",
     "always", ()),
    ({"allow": [{"groups": ["staff"], "paths": ["/admin"], "mfa": "required"},
                {"groups": ["staff"]}]}, "alice", {"staff"}, "full", "sometimes", ()),
])
def test_reach(spec: dict[str, Any], user: str, groups: set[str], level: str, factor: str,
               conditions: tuple[str, ...]) -> None:
    standing = reach(app(**spec), user, frozenset(groups))
    assert (standing.level, standing.second_factor, standing.conditions) == (
        level, factor, conditions)
