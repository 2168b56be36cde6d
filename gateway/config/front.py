"""The ``proxy_protocol:`` section: listeners behind a TCP load balancer that sends PROXY v2.

Behind a balancer in TCP mode every connection comes from the balancer's address;
the PROXY protocol v2 header it sends first names the real client. Only the
addresses in ``allowed_sources`` may send one (anyone else could claim any
address), and on the listeners named here they must. No I/O.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.config.values import Duration

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyProtocolConfig(BaseModel):
    """``allowed_sources``: the balancers; ``listeners``: which listeners sit behind them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_sources: tuple[Network, ...] = Field(min_length=1)
    listeners: tuple[Literal["public", "pki"], ...] = Field(default=("public",), min_length=1)
    header_timeout: Duration = timedelta(seconds=5)

    @field_validator("allowed_sources", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if not isinstance(value, list | tuple):
            raise ValueError("expected a list of addresses or networks, such as "
                             "[10.0.0.5, 10.0.1.0/24]")
        out = []
        for item in value:
            try:
                network = ipaddress.ip_network(str(item), strict=True)
            except ValueError as exc:
                raise ValueError(f"'{item}' is not an address or network ({exc})") from None
            if network.prefixlen == 0:
                raise ValueError(f"'{item}' lets every address claim to speak for any "
                                 "client; list the load balancers' addresses")
            out.append(network)
        return tuple(out)

    @field_validator("listeners")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a listener is listed twice")
        return value

    def allows(self, address: str) -> bool:
        """Whether ``address`` (a peer's IP, IPv4-mapped IPv6 included) is a balancer."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.allowed_sources)
