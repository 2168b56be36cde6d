"""Prometheus metrics: the expected series, counted right, and labels that stay bounded
(app, decision, status class) — never a user, a serial or a path."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from gateway.ops.metrics import Metrics
from tests.gateway.ops.test_health import ALLOWED_LABELS


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.render().decode())
            for s in family.samples}


def test_render_has_every_series() -> None:
    text = Metrics().render().decode()
    for name, kind in (("certgate_requests_total", "counter"),
                       ("certgate_request_duration_seconds", "histogram"),
                       ("certgate_certificates_indexed", "gauge"),
                       ("certgate_websockets_open", "gauge"),
                       ("certgate_database_reachable", "gauge"),
                       ("certgate_config_reloads_total", "counter")):
        assert f"# TYPE {name} {kind}\n" in text, name


def test_observe_counts_by_app_decision_and_status_class() -> None:
    m = Metrics()
    m.observe("wiki", "allow", 200, 0.003)
    m.observe("wiki", "allow", 204, 0.2)
    m.observe("wiki", "deny", 403, 0.001)
    m.observe(None, "deny", 421, 0.001)  # no app (unknown host)
    m.certificates.set(4)
    m.reloads.labels("ok").inc()
    got = samples(m)
    total = "certgate_requests_total"
    assert got[(total, (("app", "wiki"), ("decision", "allow"), ("status", "2xx")))] == 2
    assert got[(total, (("app", "wiki"), ("decision", "deny"), ("status", "4xx")))] == 1
    assert got[(total, (("app", "-"), ("decision", "deny"), ("status", "4xx")))] == 1
    hist = "certgate_request_duration_seconds"
    assert got[(hist + "_count", (("app", "wiki"),))] == 3
    assert abs(got[(hist + "_sum", (("app", "wiki"),))] - 0.204) < 1e-9
    assert got[(hist + "_bucket", (("app", "wiki"), ("le", "0.005")))] == 2
    assert got[(hist + "_bucket", (("app", "wiki"), ("le", "+Inf")))] == 3
    assert got[("certgate_certificates_indexed", ())] == 4
    assert got[("certgate_config_reloads_total", (("result", "ok"),))] == 1


def test_labels_stay_bounded_whatever_the_traffic() -> None:
    m = Metrics()
    for i in range(300):  # many users, serials and paths behind the same few series
        m.observe("wiki", "allow" if i % 3 else "deny", 200 + (i % 4) * 100 + i % 7, 0.01)
    got = samples(m)
    label_names = {name for _, labels in got for name, _ in labels}
    assert label_names <= ALLOWED_LABELS
    statuses = {value for _, labels in got for name, value in labels if name == "status"}
    assert statuses <= {"2xx", "3xx", "4xx", "5xx"}
    request_series = [k for k in got if k[0] == "certgate_requests_total"]
    assert len(request_series) == 8  # 4 status classes x 2 decisions
    assert sum(got[k] for k in request_series) == 300


def test_registries_are_per_instance() -> None:
    a, b = Metrics(), Metrics()
    a.observe("wiki", "allow", 200, 0.01)
    assert not re.search(r"certgate_requests_total\{", b.render().decode())


def test_children_cache_overflow_keeps_counting() -> None:
    m = Metrics()
    for i in range(10_002):  # apps come and go with reloads: the cache is cleared, not the counts
        m.observe(f"app{i}", "allow", 200, 0.0)
    m.observe("app0", "allow", 200, 0.0)
    assert m.registry.get_sample_value(
        "certgate_requests_total", {"app": "app0", "decision": "allow", "status": "2xx"}) == 2


def test_reasons_feed_denials_logins_and_upstream_errors() -> None:
    m = Metrics()
    m.observe("wiki", "deny", 403, 0.001, "no-matching-allow-rule")
    m.observe("wiki", "deny", 403, 0.001, "no-matching-allow-rule")
    m.observe("secure", "allow", 303, 0.01, "login-succeeded")
    m.observe("secure", "deny", 401, 0.01, "login-failed")
    m.observe("secure", "deny", 429, 0.01, "locked-out")
    m.observe("wiki", "error", 502, 0.2, "upstream-unavailable", upstream_seconds=0.19)
    m.observe("wiki", "error", 504, 30.0, "upstream-timeout", upstream_seconds=30.0)
    m.observe("wiki", "allow", 503, 0.05, "allowed", upstream_seconds=0.04)  # the app's 5xx
    m.observe("wiki", "allow", 200, 0.05, "allowed", upstream_seconds=0.04)
    got = samples(m)
    assert got[("certgate_denials_total", (("app", "wiki"),
                                           ("reason", "no-matching-allow-rule")))] == 2
    assert got[("certgate_denials_total", (("app", "secure"), ("reason", "login-failed")))] == 1
    assert {labels: v for (name, labels), v in got.items()
            if name == "certgate_logins_total"} == {
        (("result", "succeeded"),): 1, (("result", "failed"),): 1, (("result", "locked_out"),): 1}
    assert {labels: v for (name, labels), v in got.items()
            if name == "certgate_upstream_errors_total"} == {
        (("app", "wiki"), ("kind", "unavailable")): 1, (("app", "wiki"), ("kind", "timeout")): 1,
        (("app", "wiki"), ("kind", "5xx_response")): 1}
    assert got[("certgate_upstream_duration_seconds_count", (("app", "wiki"),))] == 4
    assert got[("certgate_request_duration_seconds_count", (("app", "wiki"),))] == 6


def test_node_wide_events_are_counted_by_the_primary_worker_only() -> None:
    primary, other = Metrics(), Metrics(primary=False)
    for m in (primary, other):  # every worker reloads on SIGHUP and applies each revocation
        m.reloaded("applied")
        m.revoked(2)
    assert primary.registry.get_sample_value("certgate_revocations_applied_total") == 2
    assert other.registry.get_sample_value("certgate_revocations_applied_total") == 0
    assert primary.registry.get_sample_value("certgate_config_reloads_total",
                                             {"result": "applied"}) == 1
    assert other.registry.get_sample_value("certgate_config_reloads_total",
                                           {"result": "applied"}) is None


def test_the_policy_hash_in_force_is_the_only_one_at_1() -> None:
    m = Metrics()
    m.policy_loaded("aaaa")
    m.policy_loaded("aaaa")
    m.policy_loaded("bbbb")
    got = samples(m)
    assert got[("certgate_policy_info", (("hash", "aaaa"),))] == 0
    assert got[("certgate_policy_info", (("hash", "bbbb"),))] == 1
