"""Prometheus metrics, labelled by app, decision, status class, reason and kind only.

Never label by user, certificate, serial or path: those are unbounded and belong
in the audit log. One registry per runtime, so tests never collide.

With ``serve --workers N`` each forked worker writes its values to its own files in
a per-start directory (prometheus-client's multiprocess mode, switched on by
``gateway.ops.multiproc`` before the fork) and ``render`` adds them up: counters
and histograms are summed, each gauge is merged the way its meaning says
(``MODES``). Counters of node-wide events that every worker sees (a reload, a
revocation from the change feed) are counted by the primary worker only, so the
sum is the node's count.

Owns the metric definitions and the per-request ``observe`` (O(1), children
cached). Must not read the runtime: ``gateway.ops.gauges`` samples it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.ops.supervise import TaskHealth

BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)
# Reasons that make a request a login attempt, and the ``result`` label they get.
LOGIN_RESULTS = {"login-succeeded": "succeeded", "login-failed": "failed",
                 "locked-out": "locked_out"}
# Reasons that say the upstream failed, and the ``kind`` label they get.
UPSTREAM_ERRORS = {"upstream-unavailable": "unavailable", "upstream-timeout": "timeout"}
EXPIRY_KINDS = ("client_certificate", "server_certificate", "issuing_ca", "root_ca", "crl")


def multiprocess_dir() -> str | None:
    """The directory of this start's per-worker files, when running several workers."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    def __init__(self, *, primary: bool = True) -> None:
        self.primary = primary  # counts node-wide events (see the module docstring)
        r = self.registry = CollectorRegistry()
        self.requests = Counter("certgate_requests_total", "Requests by outcome",
                                ["app", "decision", "status"], registry=r)
        self.duration = Histogram("certgate_request_duration_seconds",
                                  "Time from the request to the end of its response "
                                  "(a WebSocket: to the end of the session)",
                                  ["app"], registry=r, buckets=BUCKETS)
        self.upstream_duration = Histogram(
            "certgate_upstream_duration_seconds",
            "Time from sending a request upstream until its response head arrived, or "
            "the failure (WebSockets not included)",
            ["app"], registry=r, buckets=BUCKETS)
        self.denials = Counter("certgate_denials_total", "Refused requests by reason",
                               ["app", "reason"], registry=r)
        self.logins = Counter("certgate_logins_total",
                              "Second-factor sign-ins by result: succeeded, failed (wrong "
                              "password or TOTP code), locked_out", ["result"], registry=r)
        self.upstream_errors = Counter("certgate_upstream_errors_total",
                                       "Upstream failures by app and kind (unavailable, "
                                       "timeout, 5xx_response)", ["app", "kind"], registry=r)
        self.revocations = Counter("certgate_revocations_applied_total",
                                   "Revocations and suspensions applied from the change feed",
                                   registry=r)
        self.reloads = Counter("certgate_config_reloads_total", "Config reloads by result",
                               ["result"], registry=r)
        self.certificates = Gauge("certgate_certificates_indexed",
                                  "Certificates in the in-memory index", registry=r,
                                  multiprocess_mode="livemax")
        self.connections = Gauge("certgate_connections_open",
                                 "Open client connections on all listeners", registry=r,
                                 multiprocess_mode="livesum")
        self.websockets = Gauge("certgate_websockets_open", "Open proxied WebSockets",
                                registry=r, multiprocess_mode="livesum")
        self.sessions = Gauge("certgate_sessions_active", "Sign-in sessions held in memory",
                              registry=r, multiprocess_mode="livemax")
        self.db_healthy = Gauge("certgate_database_reachable",
                                "1 when the change feed reaches the database",
                                registry=r, multiprocess_mode="livemin")
        self.change_lag = Gauge("certgate_change_feed_lag_seconds",
                                "Seconds since the change feed last read the database",
                                registry=r, multiprocess_mode="livemax")
        self.last_event = Gauge("certgate_change_feed_last_event_id",
                                "Id of the last change applied from the feed", registry=r,
                                multiprocess_mode="livemin")
        self.audit_failing = Gauge("certgate_audit_failing",
                                   "1 while the audit log cannot be written",
                                   registry=r, multiprocess_mode="livemax")
        self.audit_queue = Gauge("certgate_audit_queue_records",
                                 "Audit records emitted and not yet written", registry=r,
                                 multiprocess_mode="livesum")
        self.audit_spooled = Gauge("certgate_audit_spooled_records",
                                   "Audit records kept in memory or the spool, waiting for "
                                   "the audit log", registry=r, multiprocess_mode="livesum")
        self.policy = Gauge("certgate_policy_info",
                            "1 for the hash of the policies in force (0 for earlier ones)",
                            ["hash"], registry=r, multiprocess_mode="livemax")
        self.expiry = Gauge("certgate_expiry_seconds",
                            "Seconds until it expires: the soonest valid client "
                            "certificate, the server certificate, the issuing CA, the root "
                            "CA, the CRL's nextUpdate", ["what"], registry=r,
                            multiprocess_mode="livemin")
        self.ready = Gauge("certgate_ready", "1 while /readyz says ready (listeners open)",
                           registry=r, multiprocess_mode="livemin")
        self.degraded = Gauge("certgate_degraded_reasons",
                              "How many reasons /readyz gives for degraded (0 when well)",
                              registry=r, multiprocess_mode="livemax")
        self.syslog_sent = Counter("certgate_audit_syslog_sent_messages",
                                   "Audit records and checkpoints sent to the syslog receiver",
                                   registry=r)
        self.syslog_dropped = Counter("certgate_audit_syslog_dropped_messages",
                                      "Audit messages dropped from the syslog forward (its "
                                      "buffer was full); the database still holds them",
                                      registry=r)
        self.syslog_queued = Gauge("certgate_audit_syslog_queued_messages",
                                   "Audit messages waiting for the syslog receiver",
                                   registry=r, multiprocess_mode="livesum")
        self._syslog_seen = (0, 0)
        self.task_healthy = Gauge("certgate_background_task_healthy",
                                  "1 when the background task runs and its last round "
                                  "succeeded recently", ["task"], registry=r,
                                  multiprocess_mode="livemin")
        self.task_last_success = Gauge("certgate_background_task_last_success_timestamp_seconds",
                                       "Unix time of the task's last successful round",
                                       ["task"], registry=r, multiprocess_mode="livemin")
        self.proxy_refused = Counter("certgate_proxy_protocol_refused_total",
                                     "Connections closed on a PROXY protocol listener "
                                     "before TLS, by reason", ["reason"],
                                     registry=r)
        # "I lost my USB stick" (gateway.auth.lost): results only, never a user or serial.
        self.lost_attempts = Counter("certgate_lost_attempts_total",
                                     "Tries to stop a certificate with its stop code, by "
                                     "result (stopped, refused, limited, invalid)", ["result"],
                                     registry=r)
        self.lost_webhook = Counter("certgate_lost_webhook_total",
                                    "Notifications of a stopped certificate POSTed to "
                                    "lost.webhook_url, by result (sent, failed)", ["result"],
                                    registry=r)
        self.mail = Counter("certgate_mail_total",
                            "E-mails through the mail: relay, by kind (lost, download) and "
                            "result (sent, failed)", ["kind", "result"], registry=r)
        # Labelled children by (app, decision, status class, reason): ``labels()`` builds
        # and locks on every call; the label sets are few, so keep them.
        self._children: dict[tuple[str | None, str, int, str],
                             tuple[Any, Any, tuple[Any, ...]]] = {}
        self._upstream: dict[str | None, Any] = {}
        self._policy_hash: str | None = None

    def observe(self, app: str | None, decision: str, status: int, seconds: float,
                reason: str = "", upstream_seconds: float | None = None) -> None:
        """One finished request: O(1) after the first of its kind."""
        key = (app, decision, status // 100, reason)
        children = self._children.get(key)
        if children is None:
            children = self._build(key)
        requests, duration, extras = children
        requests.inc()
        duration.observe(seconds)
        for extra in extras:  # denials, logins, upstream errors: most requests have none
            extra.inc()
        if upstream_seconds is not None:
            child = self._upstream.get(app)
            if child is None:
                child = self._upstream[app] = self.upstream_duration.labels(app or "-")
            child.observe(upstream_seconds)

    def _build(self, key: tuple[str | None, str, int, str]
               ) -> tuple[Any, Any, tuple[Any, ...]]:
        if len(self._children) > 10_000:  # apps come and go with reloads
            self._children.clear()
            self._upstream.clear()
        app, decision, status_class, reason = key
        name = app or "-"
        extra = []
        if decision == "deny":
            extra.append(self.denials.labels(name, reason or "-"))
        if reason in LOGIN_RESULTS:
            extra.append(self.logins.labels(LOGIN_RESULTS[reason]))
        if reason in UPSTREAM_ERRORS:
            extra.append(self.upstream_errors.labels(name, UPSTREAM_ERRORS[reason]))
        elif decision == "allow" and status_class == 5 and app is not None:
            extra.append(self.upstream_errors.labels(name, "5xx_response"))
        children = self._children[key] = (
            self.requests.labels(name, decision, f"{status_class}xx"),
            self.duration.labels(name), tuple(extra))
        return children

    def reloaded(self, result: str) -> None:
        if self.primary:
            self.reloads.labels(result).inc()

    def revoked(self, count: int) -> None:
        if self.primary and count:
            self.revocations.inc(count)

    def policy_loaded(self, digest: str) -> None:
        """Mark ``digest`` as the policies in force (the previous one drops to 0)."""
        if digest == self._policy_hash:
            return
        if self._policy_hash is not None:
            self.policy.labels(self._policy_hash).set(0)
        self.policy.labels(digest).set(1)
        self._policy_hash = digest

    def observe_tasks(self, tasks: Iterable[TaskHealth]) -> None:
        for task in tasks:
            label = task_label(task.name)
            self.task_healthy.labels(label).set(0 if task.problem() else 1)
            if task.last_success_at is not None:
                self.task_last_success.labels(label).set(task.last_success_at.timestamp())

    def observe_syslog(self, sent: int, dropped: int, queued: int) -> None:
        """The forwarder's running totals, turned into counter increments."""
        seen_sent, seen_dropped = self._syslog_seen
        self.syslog_sent.inc(max(0, sent - seen_sent))
        self.syslog_dropped.inc(max(0, dropped - seen_dropped))
        self.syslog_queued.set(queued)
        self._syslog_seen = (sent, dropped)

    def render(self) -> bytes:
        """The exposition: this registry, or every worker's files added up."""
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def task_label(name: str) -> str:
    return name.lower().replace(" ", "_").replace("-", "_")
