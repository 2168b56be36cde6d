"""The ``lost:`` section: the "I lost my USB stick" page (``/.certgate/lost``).

``webhook_url`` (optional) receives a small JSON POST each time a person stops a
certificate with its stop code (a chat channel, a ticket system); ``email_to`` (a
list of addresses, needs the ``mail:`` section) gets a plain-text e-mail. The attempt
limits are per node and in memory (see ``gateway.auth.lost``). No I/O.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.config.mail import Address
from gateway.config.values import Duration


class LostConfig(BaseModel):
    """Where to tell the admin, and how many tries a source address or a user name gets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_url: str | None = None
    webhook_timeout: Duration = timedelta(seconds=10)
    email_to: tuple[Address, ...] = Field(default=(), max_length=20)
    # Tries per window, counted before the code is checked.
    max_per_address: int = Field(default=10, ge=1, le=1000)
    max_per_user: int = Field(default=5, ge=1, le=1000)
    window: Duration = timedelta(minutes=15)

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{value}' is not an http:// or https:// URL")
        return value
