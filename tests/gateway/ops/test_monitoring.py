"""What ships for monitoring: ``deploy/prometheus/alerts.yml`` passes ``promtool check
rules`` and its unit tests, and it and ``deploy/grafana/certgate-dashboard.json`` ask
only for metrics a real gateway's scrape has; the dashboard shows every one of them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.conftest import Gateway
from tests.gateway.ops.test_health import ALLOWED_LABELS, PROMTOOL, admin

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "certgate-dashboard.json"
METRIC = re.compile(r"\bcertgate_[a-z_]+\b")
# Suffixes a family's samples add (histograms) or the parser strips (counters).
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",), "info": ("_info",)}


def promtool(*args: str) -> str:
    if shutil.which(PROMTOOL) is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    done = subprocess.run([PROMTOOL, *args], capture_output=True, timeout=120)
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, out
    return out


def dashboard_panels() -> list[dict[str, Any]]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard_panels() for t in p["targets"]]


def alert_exprs() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_alert_rules_pass_promtool() -> None:
    assert f"SUCCESS: {len(alert_exprs())} rules found" in promtool("check", "rules", str(ALERTS))


def test_alert_rules_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", str(ALERT_TESTS))


def test_every_alert_asked_for_is_there() -> None:
    names = {rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"]
             for rule in group["rules"]}
    assert names >= {"CertgateServerCertificateExpiring", "CertgateCaExpiring",
                     "CertgateCrlExpiring", "CertgateDenySpike", "CertgateLockoutSpike",
                     "CertgateUpstreamErrors", "CertgateAuditSpoolNotEmpty",
                     "CertgateNodeNotReady", "CertgateChangeFeedLag"}


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each panel query, with Grafana's variables filled in, as a recording rule."""
    panels = dashboard_panels()
    assert len({p["id"] for p in panels}) == len(panels)
    assert all(p["targets"] and all(t["expr"].strip() for t in p["targets"]) for p in panels)
    rules = [{"record": f"dashboard:query{i}",
              "expr": e.replace("$__rate_interval", "5m").replace("$__interval", "1m")
              .replace("$instance", ".*")} for i, e in enumerate(dashboard_exprs())]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool("check", "rules", str(path))
    grouped = {label.strip() for e in dashboard_exprs() + alert_exprs()
               for group in re.findall(r"by \(([^)]*)\)", e) for label in group.split(",")}
    assert grouped <= ALLOWED_LABELS | {"instance"}


async def test_dashboard_and_alerts_ask_only_for_metrics_a_scrape_has(gateway: Gateway) -> None:
    await gateway.request("GET", "/")
    _, text = await admin(gateway, "/metrics")
    families = {f.name: f.type for f in text_string_to_metric_families(text)
                # prometheus-client's own ``*_created`` series are not ours to chart
                if f.name.startswith("certgate_") and not f.name.endswith("_created")}
    exposed = {name + suffix for name, kind in families.items() for suffix in SUFFIXES[kind]}
    on_dashboard = {m for e in dashboard_exprs() for m in METRIC.findall(e)}
    in_alerts = {m for e in alert_exprs() for m in METRIC.findall(e)}
    assert on_dashboard <= exposed, on_dashboard - exposed
    assert in_alerts <= exposed, in_alerts - exposed
    # And the dashboard shows every family the gateway exposes.
    shown = {name for name, kind in families.items()
             if any(name + suffix in on_dashboard for suffix in SUFFIXES[kind])}
    assert shown == set(families), set(families) - shown
