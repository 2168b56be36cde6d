"""Config loading: every error names file, line and key; values are parsed strictly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_size

BASE = """\
listen: 127.0.0.1:8443
admin_listen: 127.0.0.1:9443
tls: {cert: tls/s.pem, key: tls/k.pem, client_ca: ca/root.pem}
pki: {ca_dir: ca}
assertion: {key: keys/a.pem}
audit: {path: audit/a.jsonl}
apps:
  - name: pbx
    host: pbx.example.test
    upstream: https://10.0.0.5
    read_timeout: 15m
    max_body_size: 2GiB
    ports: [8003]
    routes:
      - path: /ucp/ws
        upstream: http://10.0.0.5:8001
        websockets: true
    allow:
      - groups: [pbx-admins]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "certgate.yaml"
    path.write_text(text)
    return path


def test_valid_config_resolves_paths_and_values(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE))
    app = config.apps[0]
    assert config.tls.cert == tmp_path / "tls/s.pem"
    assert config.database_url == f"sqlite+aiosqlite:///{tmp_path / 'certgate.db'}"
    assert (app.read_timeout, app.max_body_size, app.ports) == (timedelta(minutes=15), 2**31,
                                                                 (8003,))
    assert app.routes[0].upstream == "http://10.0.0.5:8001" and app.routes[0].read_timeout is None
    assert config.policy_set.app_for_host("pbx.example.test") is not None


@pytest.mark.parametrize(("old", "new", "line", "key", "message"), [
    ("    read_timeout: 15m", "    read_timeout: soon", 11, "apps[0].read_timeout",
     "not a duration"),
    ("    max_body_size: 2GiB", "    max_body_size: huge", 12, "apps[0].max_body_size",
     "expected a size"),
    ("    upstream: https://10.0.0.5", "    upstream: ftp://x/y", 10, "apps[0].upstream",
     "not an upstream URL"),
    ("    ports: [8003]", "    ports: [8443]", 13, "apps[0].ports[0]",
     "port 8443 is already used by listen"),
    ("admin_listen: 127.0.0.1:9443", "admin_listen: 127.0.0.1:8443", 2, "admin_listen",
     "already used by listen"),
    ("listen: 127.0.0.1:8443", "listen: nowhere", 1, "listen", "not an address"),
    ("      - path: /ucp/ws", "      - path: ucp", 15, "apps[0].routes[0].path",
     "not a path prefix"),
    ("      - groups: [pbx-admins]", "      - grups: [pbx-admins]", 19, "apps[0].allow[0].grups",
     "unknown key 'grups'"),
    ("pki: {ca_dir: ca}", "pki: {ca_dir: ca, crl_url: 'https://x/crl'}", 4, "pki.crl_url",
     "plain http:// URL"),
])
def test_errors_name_file_line_and_key(tmp_path: Path, old: str, new: str, line: int, key: str,
                                       message: str) -> None:
    assert old in BASE
    path = write(tmp_path, BASE.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    issue = info.value.issues[0]
    assert (issue.file, issue.line, issue.key) == (str(path), line, key)
    assert message in issue.message


def test_duplicate_hosts_across_apps(tmp_path: Path) -> None:
    text = BASE + "  - name: other\n    host: pbx.example.test\n    upstream: http://x\n" \
                  "    allow: [{everyone: true}]\n"
    with pytest.raises(ConfigError, match=r"certgate.yaml:21: apps\[1\].host: host "):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(("text", "size"), [("100MiB", 100 * 2**20), ("2GiB", 2 * 2**30),
                                            ("10MB", 10**7), (512, 512), ("1 KiB", 1024)])
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "-1", "10XB", "0", True])
def test_bad_sizes(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(("setup", "message"), [
    (lambda d: (d / "audit" / "a.jsonl").mkdir(parents=True), "is a directory"),
    (lambda d: (d / "audit").write_text("a file where the directory should be"),
     "is not a directory, so"),
    (lambda d: (d / "audit").symlink_to(d / "missing" / "gone"), "cannot be created"),
], ids=["directory-at-the-path", "file-at-the-parent", "dangling-parent"])
def test_an_audit_log_that_cannot_be_written_is_refused(
        tmp_path: Path, setup: object, message: str) -> None:
    setup(tmp_path)  # type: ignore[operator]
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, BASE))
    issue, *others = err.value.issues
    assert (issue.line, issue.key) == (6, "audit.path")
    assert message in issue.message and str(tmp_path / "audit") in issue.message
    # The checkpoint file's default place (audit/checkpoints.jsonl) may be refused too.
    assert [o.key for o in others] in ([], ["audit.checkpoints"])


def test_the_json_lines_file_is_optional_and_the_node_defaults_to_the_host_name(
        tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE.replace("audit: {path: audit/a.jsonl}\n", "")))
    assert config.audit.path is None and config.node
    assert config.audit.key == tmp_path / "audit.key"
    assert config.audit.public_key == tmp_path / "audit.pub"
    assert config.audit.checkpoints == tmp_path / "audit" / "checkpoints.jsonl"


@pytest.mark.parametrize("node", ["-leading-dash", "a b", "x" * 61, "ünï"])
def test_a_bad_node_name_is_refused(tmp_path: Path, node: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, f"node: '{node}'\n" + BASE))
    assert [(i.line, i.key) for i in err.value.issues] == [(1, "node")]


def test_a_missing_audit_directory_that_can_be_created_is_accepted(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE.replace("audit/a.jsonl", "new/dir/a.jsonl")))
    assert config.audit.on_failure == "keep-serving"
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_audit_on_failure_takes_deny_or_keep_serving(tmp_path: Path) -> None:
    text = BASE.replace("audit: {path: audit/a.jsonl}",
                        "audit: {path: audit/a.jsonl, on_failure: deny}")
    assert load_config(write(tmp_path, text)).audit.on_failure == "deny"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text.replace("deny}", "ignore}")))
    assert err.value.issues[0].key == "audit.on_failure"


@pytest.mark.parametrize("value", ["'true'", "1", "'yes'", "maybe", "[true]"])
def test_audit_query_must_be_true_or_false(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, BASE.replace("    ports: [8003]",
                                        f"    ports: [8003]\n    audit_query: {value}"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    issue = info.value.issues[0]
    assert (issue.line, issue.key) == (14, "apps[0].audit_query")
    assert "boolean" in issue.message, issue.message


def test_audit_query_is_off_unless_an_app_opts_in(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, BASE)).apps[0].audit_query is False
    path = write(tmp_path, BASE.replace("    ports: [8003]", "    ports: [8003]\n"
                                                            "    audit_query: true"))
    assert load_config(path).apps[0].audit_query is True
