"""The access-review report: ``ReportData`` in, one self-contained HTML page out.

``render_report`` fills ``templates/audit_report.html`` (jinja2, autoescaping on:
user names, paths, actors and details in the records are text anyone with a
browser or a CLI could have chosen) with the figures ``gateway.manage.report``
gathered, the two charts of ``gateway.audit.charts`` as inline SVG, inline CSS,
no script and no external asset, so the file reads the same offline, printed, or
attached to an audit finding. The words a reviewer reads (banner, headings, what
each kind of record is) live here and in the template.

Pure: no I/O, no clock, no query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jinja2

from gateway.audit.charts import HBarChart, TimeChart, reason_chart, time_chart
from gateway.audit.verify import NodeResult
from gateway.http.security import stylesheet
from gateway.store.audit_report import (
    Address,
    AdminRow,
    CertRow,
    DayCount,
    NodeSpan,
    ReasonCount,
    SignIns,
    Usage,
)
from policies.model import Reason, describe
from policies.reach import Reach

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("gateway", "templates"), autoescape=True, auto_reload=False,
    trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)

# Inlined, so the file stands alone; the console serves it with a CSP pinning its hash.
REPORT_CSS = stylesheet("audit_report.css")

# The first word of a record type, as the admin-change table names it.
_SUBJECTS = {"cert": "Certificate", "crl": "Revocation list", "user": "User account",
             "group": "Groups", "totp": "Second factor", "factor": "Second factor",
             "recovery": "Recovery codes", "session": "Sign-in session",
             "unlock": "Sign-in lock", "lockout": "Sign-in lock", "policy": "Policy",
             "audit": "Audit log", "enrollment": "Second factor"}


@dataclass(frozen=True)
class AppLine:
    """An app and who can reach it under today's policy."""

    name: str
    host: str
    full: list[tuple[str, Reach]]
    limited: list[tuple[str, Reach]]


@dataclass(frozen=True)
class Verdict:
    """The chain verification, as the first screen states it."""

    nodes: list[NodeResult]
    signed: bool  # checkpoint signatures were checked with the public key
    public_key: str | None
    checkpoint_file: str

    @property
    def state(self) -> str:
        """``failed``, ``ok``, ``unsigned`` (chains fine, signatures unchecked) or ``empty``."""
        if any(not n.ok for n in self.nodes):
            return "failed"
        if not any(n.records for n in self.nodes):
            return "empty"
        return "ok" if self.signed else "unsigned"

    @property
    def records(self) -> int:
        return sum(n.records for n in self.nodes)


@dataclass(frozen=True)
class ReportData:
    since: datetime
    until: datetime
    generated_at: datetime
    generated_by: str
    this_node: str
    database: str
    verdict: Verdict
    nodes: list[NodeSpan]
    apps: list[AppLine]
    users: int  # accounts in the store
    disabled: list[str]
    without_certificate: list[str]  # enabled, but no active certificate today
    usage: list[Usage]
    days: list[DayCount]
    denials: list[ReasonCount]
    refused_addresses: list[Address]
    sign_ins: list[SignIns]
    admin_total: int
    admin: list[AdminRow]
    issued: list[CertRow]
    revoked: list[CertRow]
    suspended: list[CertRow]
    expiring: list[CertRow]
    expiring_days: int
    notes: list[str] = field(default_factory=list)


def when(moment: datetime | None) -> str:
    """``2026-11-24 14:05 UTC``."""
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def reason_text(reason: str) -> str:
    """What the person was told, for a reason the gateway names; blank otherwise."""
    try:
        return describe(Reason(reason))
    except (ValueError, KeyError):
        return ""


def subject_of(type_: str) -> str:
    return _SUBJECTS.get(type_.split(".", 1)[0], "")


def clip(text: str | None, limit: int = 100) -> str:
    """``text`` cut at ``limit`` characters (a path can be kilobytes long)."""
    if not text:
        return ""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def detail_text(detail: str | None, limit: int = 240) -> str:
    """A record's ``detail`` JSON as ``key: value`` pairs, cut at ``limit`` characters."""
    if not detail:
        return ""
    try:
        data = json.loads(detail)
    except ValueError:
        text = detail
    else:
        text = ", ".join(f"{k}: {v}" for k, v in data.items() if v not in (None, "")) \
            if isinstance(data, dict) else str(data)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def render_report(data: ReportData) -> str:
    """The report as one HTML document."""
    denial_chart: HBarChart = reason_chart([(d.reason, d.refused) for d in data.denials])
    last_day = (data.until - timedelta(microseconds=1)).date()  # ``until`` is not included
    days: TimeChart = time_chart(data.since.date(), last_day,
                                 [(d.day, d.allowed, d.denied) for d in data.days])
    allowed = sum(d.allowed for d in data.days)
    denied = sum(d.denied for d in data.days)
    totals = {
        "allowed": allowed, "denied": denied,
        "people": len({u.user for u in data.usage}),
        "signed_in": sum(s.succeeded for s in data.sign_ins),
        "failed": sum(s.failed for s in data.sign_ins),
        "lockouts": sum(s.lockouts for s in data.sign_ins),
        "recovery": sum(s.recovery for s in data.sign_ins),
    }
    template = _ENV.get_template("audit_report.html")
    return template.render(css=REPORT_CSS.text, d=data, v=data.verdict, totals=totals,
                           denial_chart=denial_chart,
                           days=days, when=when, reason_text=reason_text,
                           subject_of=subject_of, detail_text=detail_text,
                           clip=clip)
