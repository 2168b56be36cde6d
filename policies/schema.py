"""The policy part of the config file, as strict pydantic specs.

``RuleSpec`` and ``AppPolicySpec`` validate what an admin writes (unknown keys,
bad networks, bad time zones, empty rules and second-factor settings that cannot
apply are refused with a reason); the
gateway's config extends ``AppPolicySpec`` with how to reach each app.
``policies.loader`` compiles validated specs into the engine's model.

No I/O here.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from policies.durations import duration_from_value
from policies.model import KNOWN_METHODS

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# User and group names as the store keeps them (``certgate user add`` refuses others):
# a policy or the console naming 'Admins' could never match anybody, so it is refused.
PRINCIPAL_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def principal_name(kind: str, value: str) -> str:
    """``value`` as a user or group name (``kind``), or a ``ValueError`` saying why not."""
    if PRINCIPAL_RE.match(value):
        return value
    hint = (f"; names are stored in lowercase, so it could never match anyone: write "
            f"'{value.lower()}'" if PRINCIPAL_RE.match(value.lower()) else "")
    raise ValueError(f"'{value}' is not a {kind} name (lowercase letters, digits, '.', '_' "
                     f"and '-', starting with a letter or digit, at most 64){hint}")


def parse_days(text: str) -> frozenset[int]:
    """``"mon-fri"``, ``"sat,sun"``, ``"mon,wed-fri"`` -> weekday numbers (Monday = 0)."""
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        if "-" in part:
            start, _, end = part.partition("-")
            if start not in DAYS or end not in DAYS:
                raise ValueError(f"'{part}' is not a day range such as mon-fri")
            a, b = DAYS.index(start), DAYS.index(end)
            if a > b:
                raise ValueError(f"'{part}' runs backwards; write it as two ranges")
            days.update(range(a, b + 1))
        elif part in DAYS:
            days.add(DAYS.index(part))
        else:
            raise ValueError(f"'{part}' is not a day; use mon, tue, wed, thu, fri, sat, sun")
    return frozenset(days)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HoursSpec(_Spec):
    """A weekly time window in a named time zone; ``from`` > ``to`` spans midnight."""

    days: str = "mon-sun"
    start: time = Field(alias="from")
    end: time = Field(alias="to")
    tz: str = "UTC"

    @field_validator("days")
    @classmethod
    def _days(cls, value: str) -> str:
        parse_days(value)
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        if isinstance(value, int):
            # YAML 1.1 reads an unquoted 08:00 as the sexagesimal integer 480.
            return time(value // 60, value % 60) if 0 <= value < 24 * 60 else value
        if isinstance(value, str) and not re.fullmatch(r"\d{1,2}:\d{2}", value):
            raise ValueError(f"'{value}' is not a time of day such as 08:00")
        return value

    @field_validator("tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not a known time zone (e.g. Europe/Rome)") from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> HoursSpec:
        if self.start == self.end:
            raise ValueError("'from' and 'to' are equal; the window would be empty")
        return self


_METHOD_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _method(method: str) -> str:
    if not _METHOD_RE.match(method):
        raise ValueError(f"'{method}' is not an HTTP method")
    return method.upper()


def _path_pattern(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"path '{path}' must start with '/'")
    if "\\" in path or "\x00" in path or "/../" in f"{path}/" or "/./" in f"{path}/":
        raise ValueError(f"path '{path}' must be a plain normalised path")
    return path


def _network(text: str) -> str:
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            net = ipaddress.ip_network(text, strict=False)
            raise ValueError(f"'{text}' has host bits set; did you mean {net}?") from None
        raise ValueError(f"'{text}' is not a valid network (e.g. 192.0.2.0/24)") from None
    return text


# Validated item by item, so an error points at the exact list entry and line.
Method = Annotated[str, AfterValidator(_method)]
PathPattern = Annotated[str, AfterValidator(_path_pattern)]
Network = Annotated[str, AfterValidator(_network)]
OptionalDuration = Annotated[timedelta, BeforeValidator(duration_from_value)] | None
MfaSetting = Literal["none", "required"]


class RuleSpec(_Spec):
    """One allow or deny rule: every condition given must match.

    An allow rule may override its app's second factor for the requests it admits:
    ``mfa: none`` (the certificate alone), ``mfa: required``, and ``mfa_max_age``
    (how recent the TOTP must be; unset, the app's applies). ``None`` = the app's.
    """

    everyone: bool = False
    users: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    methods: tuple[Method, ...] | None = None
    paths: tuple[PathPattern, ...] | None = None
    source_networks: tuple[Network, ...] | None = None
    hours: HoursSpec | None = None
    mfa: MfaSetting | None = None
    mfa_max_age: OptionalDuration = None

    @field_validator("users", "groups", "methods", "paths", "source_networks")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("the list is empty; leave the key out instead")
        return value

    @field_validator("users", "groups")
    @classmethod
    def _names(cls, value: tuple[str, ...] | None, info: ValidationInfo
               ) -> tuple[str, ...] | None:
        kind = "user" if info.field_name == "users" else "group"
        for name in value or ():
            principal_name(kind, name)
        return value

    @field_validator("mfa_max_age")
    @classmethod
    def _positive_age(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("mfa_max_age must be greater than zero")
        return value

    @model_validator(mode="after")
    def _age_needs_mfa(self) -> RuleSpec:
        if self.mfa == "none" and self.mfa_max_age is not None:
            raise ValueError("mfa_max_age is set but this rule says mfa: none; "
                             "drop one of the two")
        return self

    @property
    def sets_mfa(self) -> bool:
        return self.mfa is not None or self.mfa_max_age is not None

    @property
    def names_people(self) -> bool:
        return self.everyone or self.users is not None or self.groups is not None

    @property
    def has_conditions(self) -> bool:
        return self.names_people or any(
            v is not None for v in (self.methods, self.paths, self.source_networks, self.hours)
        )


_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")



def bare_hostname(value: Any) -> Any:
    """A config ``host`` value normalised (trimmed, lower case, no trailing dot), or a
    ``ValueError`` saying why it is not a bare hostname; non-strings pass through for
    pydantic's own type error."""
    if not isinstance(value, str):
        return value
    host = value.strip().lower().rstrip(".")
    if ":" in host or "/" in host:
        raise ValueError(f"'{value}' must be a bare hostname (no scheme, port or path)")
    if not _HOST_RE.match(host):
        raise ValueError(f"'{value}' is not a valid hostname")
    return host


def is_hostname(name: str) -> bool:
    """True for a syntactically valid DNS hostname (case-insensitive)."""
    return bool(_HOST_RE.match(name.lower().rstrip(".")))


class AppPolicySpec(_Spec):
    """Who may use one application, and whether it needs a second factor."""

    name: str
    host: str
    allow: tuple[RuleSpec, ...] = ()
    deny: tuple[RuleSpec, ...] = ()
    mfa: MfaSetting = "none"
    mfa_max_age: OptionalDuration = None
    # How the app's server reads paths, so the policy judges what it will route:
    # "allow" accepts ';' parameters (judged without them); "insensitive" matches
    # path rules regardless of case (IIS and other Windows servers).
    path_parameters: Literal["refuse", "allow"] = "refuse"
    path_case: Literal["sensitive", "insensitive"] = "sensitive"
    # Methods beyond the standard set (KNOWN_METHODS) this app really uses; every
    # other method is refused with 405 before the policy is asked.
    extra_methods: tuple[Method, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(f"'{value}' is not an app name (lowercase letters, digits, '-')")
        return value

    @field_validator("host", mode="before")
    @classmethod
    def _host(cls, value: Any) -> Any:
        return bare_hostname(value)

    @field_validator("allow")
    @classmethod
    def _allow_names_people(cls, value: tuple[RuleSpec, ...]) -> tuple[RuleSpec, ...]:
        for rule in value:
            if not rule.names_people:
                raise ValueError(
                    "an allow rule must say who it admits: users, groups or everyone: true"
                )
        return value

    @field_validator("deny")
    @classmethod
    def _deny_has_conditions(cls, value: tuple[RuleSpec, ...]) -> tuple[RuleSpec, ...]:
        for rule in value:
            if not rule.has_conditions:
                raise ValueError("a deny rule must name at least one condition")
            if rule.sets_mfa:
                raise ValueError("a deny rule cannot set mfa or mfa_max_age; they belong "
                                 "on the app or on an allow rule")
        return value

    @model_validator(mode="after")
    def _methods_known(self) -> AppPolicySpec:
        accepted = KNOWN_METHODS | set(self.extra_methods)
        for kind, rules in (("allow", self.allow), ("deny", self.deny)):
            for i, rule in enumerate(rules):
                for method in rule.methods or ():
                    if method not in accepted:
                        raise ValueError(
                            f"{kind}[{i}] names method '{method}', which is not a standard "
                            "HTTP or WebDAV method; list it in extra_methods if this app "
                            "really uses it")
        return self

    @model_validator(mode="after")
    def _mfa_age(self) -> AppPolicySpec:
        if self.mfa_max_age is not None:
            if self.mfa != "required":
                raise ValueError("mfa_max_age is set but mfa is not 'required'")
            if self.mfa_max_age <= timedelta(0):
                raise ValueError("mfa_max_age must be greater than zero")
        for i, rule in enumerate(self.allow):
            if rule.mfa is None and rule.mfa_max_age is not None and self.mfa != "required":
                raise ValueError(
                    f"allow[{i}] sets mfa_max_age, but neither the rule nor the app has "
                    "mfa: required; add mfa: required to the rule or to the app")
        return self
