"""Prometheus metrics, labelled by app, decision and status class only.

Never label by user, certificate or path: those are unbounded and belong in the
audit log. One registry per runtime, so tests and workers never collide.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway.ops.supervise import TaskHealth


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("certgate_requests_total", "Requests by outcome",
                                ["app", "decision", "status"], registry=self.registry)
        self.duration = Histogram("certgate_request_duration_seconds",
                                  "Time to the response head (streaming not included)",
                                  ["app"], registry=self.registry,
                                  buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1,
                                           2.5, 5, 10))
        self.certificates = Gauge("certgate_certificates_indexed",
                                  "Certificates in the in-memory index", registry=self.registry)
        self.websockets = Gauge("certgate_websockets_open", "Open proxied WebSockets",
                                registry=self.registry)
        self.db_healthy = Gauge("certgate_database_reachable",
                                "1 when the change feed reaches the database",
                                registry=self.registry)
        self.audit_failing = Gauge("certgate_audit_failing",
                                   "1 while the audit log cannot be written",
                                   registry=self.registry)
        self.audit_spooled = Gauge("certgate_audit_spooled_records",
                                   "Audit records kept in memory or the spool, waiting for "
                                   "the audit log", registry=self.registry)
        self.syslog_sent = Counter("certgate_audit_syslog_sent_messages",
                                   "Audit records and checkpoints sent to the syslog receiver",
                                   registry=self.registry)
        self.syslog_dropped = Counter("certgate_audit_syslog_dropped_messages",
                                      "Audit messages dropped from the syslog forward (its "
                                      "buffer was full); the database still holds them",
                                      registry=self.registry)
        self.syslog_queued = Gauge("certgate_audit_syslog_queued_messages",
                                   "Audit messages waiting for the syslog receiver",
                                   registry=self.registry)
        self._syslog_seen = (0, 0)
        self.task_healthy = Gauge("certgate_background_task_healthy",
                                  "1 when the background task runs and its last round "
                                  "succeeded recently", ["task"], registry=self.registry)
        self.task_last_success = Gauge("certgate_background_task_last_success_timestamp_seconds",
                                       "Unix time of the task's last successful round",
                                       ["task"], registry=self.registry)
        self.reloads = Counter("certgate_config_reloads_total", "Config reloads by result",
                               ["result"], registry=self.registry)
        # Labelled children by (app, decision, status): ``labels()`` builds and locks
        # on every call; the label sets are few (apps x decisions x 5), so keep them.
        self._children: dict[tuple[str | None, str, int], tuple[Any, Any]] = {}

    def observe(self, app: str | None, decision: str, status: int, seconds: float) -> None:
        key = (app, decision, status // 100)
        children = self._children.get(key)
        if children is None:
            if len(self._children) > 10_000:  # apps come and go with reloads
                self._children.clear()
            name = app or "-"
            children = self._children[key] = (
                self.requests.labels(name, decision, f"{status // 100}xx"),
                self.duration.labels(name))
        children[0].inc()
        children[1].observe(seconds)

    def observe_tasks(self, tasks: Iterable[TaskHealth]) -> None:
        for task in tasks:
            label = task.name.lower().replace(" ", "_")
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
        return generate_latest(self.registry)
