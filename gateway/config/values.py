"""Value types of the config file: durations, sizes, paths, listen addresses.

Each parses what an admin writes (``30s``, ``100MiB``, ``"[::1]:8443"``) and refuses
anything else with a sentence naming what was expected. Paths are resolved against
the directory holding the config file. No I/O.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from gateway.audit.syslog import parse_syslog_url
from policies.durations import duration_from_value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("the duration must be greater than zero")
    return value


Duration = Annotated[timedelta, BeforeValidator(duration_from_value), AfterValidator(_positive)]


def _at_least_a_day(value: timedelta) -> timedelta:
    if value < timedelta(days=1):
        raise ValueError("must be at least 1d: retention deletes records for good, and a "
                         "shorter one is almost certainly a typo (400d, not 400s)")
    return value


# ``audit.retention``: how long audit records are kept.
Retention = Annotated[Duration, AfterValidator(_at_least_a_day)]


def _syslog_address(value: str) -> str:
    parse_syslog_url(value)  # ValueError: a sentence naming the accepted forms
    return value


# ``audit.syslog``: udp://host:port, tcp://host:port or unix:///path.
SyslogAddress = Annotated[str, AfterValidator(_syslog_address)]

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(value: Any) -> int:
    """Parse ``"100MiB"``, ``"2GiB"``, ``"10MB"`` or a plain byte count."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 100MiB or 2GiB")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _SIZE_RE.match(value)):
        size = int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()]
    else:
        raise ValueError("expected a size such as 100MiB, 2GiB or a number of bytes")
    if size <= 0:
        raise ValueError("the size must be greater than zero")
    return size


Size = Annotated[int, BeforeValidator(parse_size)]


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    value = value.expanduser()
    if not value.is_absolute() and base is not None:
        value = Path(base) / value
    return value


ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]


class HostPort(BaseModel):
    """A listening address; parsed from ``"host:port"`` or ``"[v6]:port"``."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int = Field(ge=0, le=65535)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return cls.parse_text(value)
        return value

    @staticmethod
    def parse_text(text: str) -> dict[str, Any]:
        m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d{1,5})|([^:\[\]\s]+):(\d{1,5})", text.strip())
        if m is None:
            raise ValueError(f"'{text}' is not an address of the form host:port or [v6]:port")
        host = m.group(1) or m.group(3)
        port = int(m.group(2) or m.group(4))
        if m.group(1):
            ipaddress.IPv6Address(host)
        if port > 65535:
            raise ValueError(f"port {port} is out of range (0-65535)")
        return {"host": host, "port": port}

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
