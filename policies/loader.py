"""Compile validated policy specs into the engine's model.

``build_policy_set`` is pure: it turns ``AppPolicySpec`` objects (already validated
by pydantic) into precompiled ``AppPolicy`` objects and refuses what only shows up
across apps, such as two apps claiming the same host. ``load_policies`` is the
file-reading convenience for tools and tests.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

from policies.model import AppPolicy, PathMatcher, PolicySet, Rule, TimeWindow
from policies.schema import AppPolicySpec, HoursSpec, RuleSpec, parse_days
from policies.yamlsource import (
    Loc,
    SourceError,
    SourceIssue,
    YamlDocument,
    format_loc,
    issues_from_validation_error,
    load_yaml_document,
)


class PolicyError(SourceError):
    """Policies that cannot be compiled; ``issues`` name file, line and key."""


def compile_paths(patterns: Sequence[str], *, ignore_case: bool = False) -> PathMatcher:
    """Prefix patterns match on a segment boundary; ``*`` is a glob that may cross '/'.

    ``ignore_case`` is for apps whose server reads ``/ADMIN`` as ``/admin``.
    """
    parts: list[str] = []
    for pattern in patterns:
        if "*" in pattern:
            parts.append("".join(".*" if piece == "*" else re.escape(piece)
                                 for piece in re.split(r"(\*)", pattern)) + r"\Z")
        elif pattern.rstrip("/") == "":
            parts.append("/")
        else:
            parts.append(re.escape(pattern.rstrip("/")) + r"(?:/|\Z)")
    flags = re.IGNORECASE if ignore_case else 0
    return PathMatcher(tuple(patterns), re.compile("|".join(f"(?:{p})" for p in parts), flags))


def _window(spec: HoursSpec) -> TimeWindow:
    return TimeWindow(parse_days(spec.days), spec.start, spec.end, ZoneInfo(spec.tz))


def _rule(rule_id: str, spec: RuleSpec, *, ignore_case: bool,
          app: AppPolicySpec | None = None) -> Rule:
    """Compile one rule; an allow rule (``app`` given) also gets its second factor:
    the rule's own ``mfa``/``mfa_max_age`` where it sets them, else the app's."""
    mfa_required, mfa_max_age = False, None
    if app is not None:
        # A rule's mfa_max_age without its own mfa counts only under an app with
        # mfa: required (the schema refuses it anywhere else).
        mfa_required = (spec.mfa or app.mfa) == "required"
        if mfa_required:
            mfa_max_age = spec.mfa_max_age or app.mfa_max_age
    return Rule(
        id=rule_id,
        everyone=spec.everyone,
        users=frozenset(spec.users) if spec.users is not None else None,
        groups=frozenset(spec.groups) if spec.groups is not None else None,
        methods=frozenset(spec.methods) if spec.methods is not None else None,
        paths=compile_paths(spec.paths, ignore_case=ignore_case)
        if spec.paths is not None else None,
        networks=tuple(ipaddress.ip_network(n) for n in spec.source_networks)
        if spec.source_networks is not None else None,
        hours=_window(spec.hours) if spec.hours is not None else None,
        mfa_required=mfa_required,
        mfa_max_age=mfa_max_age,
    )


def build_app_policy(spec: AppPolicySpec) -> AppPolicy:
    fold = spec.path_case == "insensitive"
    allow = tuple(_rule(f"{spec.name}.allow[{i}]", r, ignore_case=fold, app=spec)
                  for i, r in enumerate(spec.allow))
    return AppPolicy(
        name=spec.name,
        host=spec.host,
        allow=allow,
        deny=tuple(_rule(f"{spec.name}.deny[{i}]", r, ignore_case=fold)
                   for i, r in enumerate(spec.deny)),
        mfa_required=spec.mfa == "required",
        mfa_max_age=spec.mfa_max_age,
        may_need_mfa=any(rule.mfa_required for rule in allow),
    )


def build_policy_set(
    specs: Sequence[AppPolicySpec],
    *,
    loc_prefix: Loc = ("apps",),
    doc: YamlDocument | None = None,
) -> PolicySet:
    """Compile ``specs``; refuse duplicate app names and duplicate hosts."""
    file = doc.file if doc else "<policies>"
    issues: list[SourceIssue] = []
    seen_names: dict[str, int] = {}
    seen_hosts: dict[str, int] = {}
    for i, spec in enumerate(specs):
        for key, value, seen in (("name", spec.name, seen_names), ("host", spec.host, seen_hosts)):
            loc = (*loc_prefix, i, key)
            if value in seen:
                first = (*loc_prefix, seen[value], key)
                issues.append(SourceIssue(
                    file, doc.line_of(loc) if doc else None, format_loc(loc),
                    f"{key} '{value}' is already used by {format_loc(first)}"
                    + (f" (line {doc.line_of(first)})" if doc else ""),
                ))
            else:
                seen[value] = i
    if issues:
        raise PolicyError(issues)
    return PolicySet({spec.host: build_app_policy(spec) for spec in specs})


class _PolicyOnly(AppPolicySpec):
    """An app entry read for its policy keys only (the rest belongs to the gateway)."""

    model_config = {**AppPolicySpec.model_config, "extra": "ignore"}


def load_policies(path: Path) -> PolicySet:
    """Read the ``apps:`` of a YAML file and compile their policies.

    Keys that are not policy keys (upstreams, timeouts) are ignored here: the
    gateway's config loader is what refuses unknown keys for a whole config file.
    """
    doc = load_yaml_document(path)
    apps = doc.data.get("apps") or []
    try:
        specs = TypeAdapter(list[_PolicyOnly]).validate_python(apps)
    except ValidationError as exc:
        raise PolicyError(issues_from_validation_error(exc, doc, prefix=("apps",))) from None
    return build_policy_set(specs, doc=doc)
