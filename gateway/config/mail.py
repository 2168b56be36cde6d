"""The ``mail:`` section: the SMTP relay certgate sends its few e-mails through.

Two kinds of mail go out (``gateway.ops.mail``): the admin's notice that a person
stopped a certificate with its stop code (to ``lost.email_to``), and a one-time
download link the admin e-mails from the console's hand-over page. The relay's
password is never in the YAML: ``password_file`` names a 0600 file whose first line
is the password (read when a mail is sent; the server refuses to start when others
may read it). ``security: none`` sends in the clear and is accepted only to a
loopback relay (a local Postfix that relays onwards itself). No I/O.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from gateway.config.values import ConfigPath, Duration

# One plain address: local@domain, no display name, no spaces, no CR/LF (every
# value here ends up in a mail header).
_ADDRESS_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9]"
                         r"(?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9]"
                         r"(?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?")


def is_address(value: str) -> bool:
    """True for one plain e-mail address (``alice@example.com``), at most 254 characters."""
    return len(value) <= 254 and _ADDRESS_RE.fullmatch(value) is not None


def _address(value: str) -> str:
    if not is_address(value):
        raise ValueError(f"'{value[:80]}' is not one plain e-mail address like "
                         "admin@example.com (no name, no spaces)")
    return value


Address = Annotated[str, AfterValidator(_address)]


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class MailConfig(BaseModel):
    """The relay, how to talk to it, and who the mail comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    # starttls: plain connection upgraded to TLS before anything is said (port 587);
    # tls: TLS from the first byte (port 465); none: clear text, loopback only.
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = Field(default=None, min_length=1, max_length=254)
    password_file: ConfigPath | None = None
    sender: Address
    # The relay's CA certificate(s), PEM, for a relay whose certificate is not publicly
    # trusted (an internal mail server): then only this CA is trusted for it.
    ca_file: ConfigPath | None = None
    timeout: Duration = timedelta(seconds=20)

    @model_validator(mode="after")
    def _safe(self) -> MailConfig:
        if not _HOST_RE.fullmatch(self.host):
            raise ValueError(f"host '{self.host[:80]}' is not a host name or IP address")
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError(f"security: none sends mail and the relay password in the clear, "
                             f"so it is accepted only to a relay on this machine (localhost, "
                             f"127.0.0.1, ::1), not to '{self.host}'; use starttls or tls")
        if self.security == "none" and self.ca_file is not None:
            raise ValueError("ca_file is for checking the relay's certificate, and security: "
                             "none uses no TLS: use starttls or tls, or drop ca_file")
        if (self.username is None) != (self.password_file is None):
            raise ValueError("username and password_file go together: set both to sign in "
                             "to the relay, or neither")
        if self.username is not None and ("\r" in self.username or "\n" in self.username):
            raise ValueError("username must be one line")
        return self
