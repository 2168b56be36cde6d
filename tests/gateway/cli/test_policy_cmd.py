"""`certgate policy check` and `certgate policy explain`."""

from __future__ import annotations

import yaml

from tests.gateway.cli.conftest import Certgate

APPS = [{"name": "pbx-admin", "host": "pbx.example.test", "upstream": "http://127.0.0.1:9",
         "allow": [{"groups": ["pbx-admins"], "methods": ["GET", "POST"],
                    "source_networks": ["192.0.2.0/24"]}],
         "deny": [{"paths": ["/admin/config/backup*"]}]}]


def with_apps(cg: Certgate) -> None:
    data = yaml.safe_load(cg.config.read_text())
    data["apps"] = APPS
    cg.config.write_text(yaml.safe_dump(data, sort_keys=False))


def test_check_ok_and_errors_name_file_and_line(cg: Certgate) -> None:
    with_apps(cg)
    assert cg.ok("policy", "check").out.strip() == f"{cg.config}: OK (1 app(s))"
    bad = cg.config.read_text().replace("192.0.2.0/24", "192.0.2.300/24")
    broken = cg.config.with_name("broken.yaml")
    broken.write_text(bad)
    line = bad.splitlines().index("    - 192.0.2.300/24") + 1
    result = cg("policy", "check", str(broken))
    assert result.code == 1
    assert (f"{broken}:{line}: apps[0].allow[0].source_networks[0]: '192.0.2.300/24' is not a "
            "valid network") in result.err
    assert "1 problem(s); nothing was changed" in result.err


def test_explain_names_decision_reason_and_rule(cg: Certgate) -> None:
    with_apps(cg)
    cg.ok("user", "add", "carol", "--group", "pbx-admins")
    out = cg.ok("policy", "explain", "--user", "carol", "--url",
                "https://pbx.example.test/admin/config/backup.tgz", "--source-ip",
                "192.0.2.7").out
    assert "decision: deny" in out and "rule:     pbx-admin.deny[0]" in out
    data = cg.ok("policy", "explain", "--user", "carol", "--url", "https://pbx.example.test/",
                 "--method", "post", "--source-ip", "192.0.2.7", "--json").json()
    assert (data["decision"], data["reason"], data["rule"]) == ("allow", "allowed",
                                                               "pbx-admin.allow[0]")
    data = cg.ok("policy", "explain", "--user", "carol", "--url", "https://pbx.example.test/",
                 "--source-ip", "198.51.100.1", "--json").json()
    assert (data["decision"], data["reason"]) == ("deny", "no-matching-allow-rule")


def test_explain_refusals(cg: Certgate) -> None:
    with_apps(cg)
    assert cg("policy", "explain", "--user", "nobody", "--url", "https://x.test/").err.strip() \
        == "certgate: no user named 'nobody'"
    result = cg("policy", "explain", "--user", "x", "--url", "http://x.test/")
    assert result.code == 2 and "must be an https:// URL" in result.err
    result = cg("policy", "explain", "--user", "x", "--url", "https://x.test/a%2fb")
    assert result.code == 1 and "refuses this path with 400" in result.err


def test_explain_reads_paths_as_the_app_does(cg: Certgate) -> None:
    with_apps(cg)
    cg.ok("user", "add", "carol", "--group", "pbx-admins")
    url = "https://pbx.example.test/admin/config/backup;v=1/x.tgz"
    result = cg("policy", "explain", "--user", "carol", "--url", url, "--source-ip", "192.0.2.7")
    assert result.code == 1 and "';' parameters" in result.err
    data = yaml.safe_load(cg.config.read_text())
    data["apps"][0]["path_parameters"] = "allow"
    cg.config.write_text(yaml.safe_dump(data, sort_keys=False))
    data = cg.ok("policy", "explain", "--user", "carol", "--url", url, "--source-ip",
                 "192.0.2.7", "--json").json()
    assert (data["decision"], data["rule"], data["request"]["path"]) == (
        "deny", "pbx-admin.deny[0]", "/admin/config/backup/x.tgz")


def test_check_refuses_an_audit_log_that_cannot_be_written(cg: Certgate) -> None:
    data = yaml.safe_load(cg.config.read_text())
    data["audit"]["path"] = "audit/audit.jsonl"  # the optional JSON-lines copy
    cg.config.write_text(yaml.safe_dump(data, sort_keys=False))
    audit = cg.config.parent / data["audit"]["path"]
    audit.parent.mkdir(parents=True, exist_ok=True)
    audit.mkdir()  # a directory where the audit file should be
    result = cg("policy", "check")
    assert result.code == 1
    assert f"audit.path: {audit} is a directory; the audit log must be a file" in result.err
