"""Header hygiene between client and upstream.

Toward the upstream: hop-by-hop headers and those named in ``Connection`` are
dropped, and so is every header a client could use to pose as someone (our own
``X-Certgate-*``, forwarding headers, client-certificate headers other proxies
use); then the gateway's own forwarding and identity headers are added.
Toward the client: hop-by-hop headers are dropped and ``Location``/``Refresh``/
``Set-Cookie`` naming the internal upstream are rewritten to the public origin.

Pure functions over multidicts; one pass each, no copies beyond the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.auth.sessions import COOKIE

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "proxy-authenticate", "proxy-authorization",
})
# Headers that only the gateway may set, or that upstream frameworks trust for the
# client's address, certificate, path or method: anything a client sends under these
# is dropped. X-Original-URL / X-Rewrite-URL make IIS and Symfony serve another path
# than the one judged; the method overrides make frameworks run another method than
# the one judged; the *-IP headers are what CDNs and load balancers set.
_SPOOFABLE_EXACT = frozenset({
    "forwarded", "x-real-ip", "host", "true-client-ip", "x-client-ip", "client-ip",
    "cf-connecting-ip", "fastly-client-ip", "x-cluster-client-ip", "x-rewrite-url", "x-host",
    "x-http-method-override", "x-http-method", "x-method-override",
})
_SPOOFABLE_PREFIXES = ("x-certgate-", "x-forwarded", "x-client-cert", "x-ssl-", "client-cert",
                       "ssl-client", "x-remote-user", "remote-user", "x-original-", "x-arr-")


_NO_TOKENS: frozenset[str] = frozenset()


def _connection_tokens(headers: Mapping[str, str] | CIMultiDictProxy[str]) -> frozenset[str]:
    if "Connection" not in headers:
        return _NO_TOKENS
    tokens: set[str] = set()
    for value in headers.getall("Connection", []) if isinstance(
            headers, CIMultiDictProxy | CIMultiDict) else [headers.get("Connection", "")]:
        tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return frozenset(tokens)


def _hop_by_hop(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """The standard hop-by-hop names plus those this message names in ``Connection``."""
    tokens = _connection_tokens(headers)
    return HOP_BY_HOP | tokens if tokens else HOP_BY_HOP


def is_spoofable(name: str) -> bool:
    lower = name.lower()
    return lower in _SPOOFABLE_EXACT or lower.startswith(_SPOOFABLE_PREFIXES)


def upstream_request_headers(
    incoming: CIMultiDictProxy[str], *, client_ip: str, public_host: str, public_port: int,
    host_header: str, identity: Mapping[str, str], keep_upgrade: bool = False,
) -> CIMultiDict[str]:
    """Headers for the upstream request; identity headers are added last."""
    drop = _hop_by_hop(incoming)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        lower = name.lower()
        if (lower in drop and not (keep_upgrade and lower in ("upgrade", "connection"))) \
                or is_spoofable(lower):
            continue
        if lower == "cookie" and COOKIE in value:
            # The gateway's session cookie is for the gateway; no upstream gets it.
            value = "; ".join(p for p in (c.strip() for c in value.split(";"))
                              if p and p.partition("=")[0] != COOKIE)
            if not value:
                continue
        out.add(name, value)
    out["Host"] = host_header
    # Only the real peer: a client-supplied X-Forwarded-For was dropped above.
    out["X-Forwarded-For"] = client_ip
    out["X-Forwarded-Proto"] = "https"
    out["X-Forwarded-Host"] = public_host
    out["X-Forwarded-Port"] = str(public_port)
    for name, value in identity.items():
        out[name] = value
    return out


class OriginRewriter:
    """Rewrites URLs naming an internal upstream origin to the public origin.

    Also ``http://<public host>[:<public port>]``: apps behind a TLS-terminating
    proxy (many PHP apps) build absolute URLs from the Host they received and
    ignore X-Forwarded-Proto, which would send the browser to plain HTTP on the
    gateway's TLS port.
    """

    def __init__(self, internal_origins: Iterable[str], internal_hosts: Iterable[str],
                 public_origin: str, public_host: str) -> None:
        plain = {"http://" + public_origin.removeprefix("https://"), f"http://{public_host}"}
        origins = sorted(set(internal_origins) | plain, key=len, reverse=True)
        self._origin_re = re.compile(
            "^(?:" + "|".join(re.escape(o) for o in origins) + r")(?=/|\?|#|$)",
            re.IGNORECASE) if origins else None
        self._public_origin = public_origin
        self._hosts = {h.lower() for h in internal_hosts}
        self._public_host = public_host

    def url(self, value: str) -> str:
        if self._origin_re is None:
            return value
        return self._origin_re.sub(self._public_origin, value.strip(), count=1)

    def refresh(self, value: str) -> str:
        # "5; url=http://10.0.0.5/x" -> "5; url=https://public/x"
        m = re.match(r"^(\s*\d+\s*;\s*url\s*=\s*)(.*)$", value, re.IGNORECASE)
        return m.group(1) + self.url(m.group(2)) if m else value

    def set_cookie(self, value: str) -> str:
        def domain(m: re.Match[str]) -> str:
            host = m.group(2).lstrip(".").lower()
            return f"{m.group(1)}{self._public_host}" if host in self._hosts else m.group(0)

        return re.sub(r"(;\s*domain\s*=\s*)([^;]+)", domain, value, flags=re.IGNORECASE)


def client_response_headers(upstream: CIMultiDictProxy[str], *, rewriter: OriginRewriter
                            ) -> CIMultiDict[str]:
    drop = _hop_by_hop(upstream)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.items():
        lower = name.lower()
        if lower in drop or lower == "content-length":
            continue
        if lower in ("location", "content-location"):
            value = rewriter.url(value)
        elif lower == "refresh":
            value = rewriter.refresh(value)
        elif lower == "set-cookie":
            value = rewriter.set_cookie(value)
        out.add(name, value)
    return out
