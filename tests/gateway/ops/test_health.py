"""The admin listener of a real gateway: ``/metrics`` after known traffic shows exact
values, parses with prometheus-client's parser and passes ``promtool check metrics``;
labels never carry a user, serial or path; ``/readyz`` names each part and every
reason it is degraded, with since when."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from gateway.ops.metrics import EXPIRY_KINDS
from gateway.ops.readiness import CHANGE_FEED_BEHIND
from gateway.ops.supervise import TaskHealth, keep_running
from gateway.runtime import Runtime
from tests.gateway.conftest import Gateway, apps

PROMTOOL = "/usr/bin/promtool"
# Every label name a certgate series may carry: bounded sets only.
ALLOWED_LABELS = {"app", "decision", "status", "reason", "result", "kind", "hash", "what",
                  "task", "le"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def promtool_check_metrics(text: str) -> None:
    if shutil.which(PROMTOOL) is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    done = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


async def admin(gw: Gateway, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{gw.admin_port}{path}") as resp:
        return resp.status, (await resp.json() if path == "/readyz" else await resp.text())


def parse(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def one(*labels: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels))


@apps(portal={"upstream": "http://127.0.0.1:9"})  # nothing listens there
async def test_scrape_after_known_traffic_counts_exactly(gateway: Gateway) -> None:
    for _ in range(3):
        assert (await gateway.request("GET", "/"))[0] == 200
    for _ in range(2):
        assert (await gateway.request("GET", "/", user="bob"))[0] == 403
    assert (await gateway.request("GET", "/admin"))[0] == 403
    assert (await gateway.request("GET", "/public", host="portal.test"))[0] == 502
    _, text = await admin(gateway, "/metrics")
    got = parse(text)

    wiki = ("app", "wiki")
    assert got[("certgate_requests_total", one(wiki, ("decision", "allow"),
                                               ("status", "2xx")))] == 3
    assert got[("certgate_requests_total", one(wiki, ("decision", "deny"),
                                               ("status", "4xx")))] == 3
    assert got[("certgate_denials_total", one(wiki, ("reason", "no-matching-allow-rule")))] == 2
    assert got[("certgate_denials_total", one(wiki, ("reason", "denied-by-rule")))] == 1
    assert got[("certgate_request_duration_seconds_count", (wiki,))] == 6
    assert got[("certgate_upstream_duration_seconds_count", (wiki,))] == 3  # forwarded only
    portal = ("app", "portal")
    assert got[("certgate_requests_total", one(portal, ("decision", "error"),
                                               ("status", "5xx")))] == 1
    assert got[("certgate_upstream_errors_total", one(portal, ("kind", "unavailable")))] == 1
    assert got[("certgate_upstream_duration_seconds_count", (portal,))] == 1
    assert got[("certgate_certificates_indexed", ())] == 4
    assert got[("certgate_database_reachable", ())] == 1
    assert got[("certgate_sessions_active", ())] == 0
    assert got[("certgate_websockets_open", ())] == 0
    assert got[("certgate_connections_open", ())] >= 1  # this scrape's own
    assert got[("certgate_audit_failing", ())] == 0
    assert (got[("certgate_ready", ())], got[("certgate_degraded_reasons", ())]) == (1, 0)
    assert got[("certgate_audit_spooled_records", ())] == 0
    follower = gateway.runtime.follower
    assert follower is not None
    assert got[("certgate_change_feed_last_event_id", ())] == follower.last_event_id
    assert 0 <= got[("certgate_change_feed_lag_seconds", ())] < CHANGE_FEED_BEHIND
    assert got[("certgate_revocations_applied_total", ())] == 0
    policy = [labels for name, labels in got if name == "certgate_policy_info"]
    assert len(policy) == 1 and got[("certgate_policy_info", policy[0])] == 1
    for what in EXPIRY_KINDS:  # init made all of them; each lies ahead
        assert got[("certgate_expiry_seconds", (("what", what),))] > 3600, what
    # The server certificate outlives no CA; every client certificate expires before both.
    assert got[("certgate_expiry_seconds", (("what", "root_ca"),))] >= \
        got[("certgate_expiry_seconds", (("what", "issuing_ca"),))]
    assert got[("certgate_background_task_healthy", (("task", "change_follower"),))] == 1
    assert got[("certgate_background_task_healthy", (("task", "metrics_sampler"),))] == 1
    promtool_check_metrics(text)


async def test_labels_never_carry_users_serials_or_paths(gateway: Gateway) -> None:
    for user in ("alice", "bob", "carol"):
        await gateway.request("GET", "/admin/secret-path", user=user)
        await gateway.request("GET", "/some/where?user=x", user=user)
    _, text = await admin(gateway, "/metrics")
    got = parse(text)
    store = await gateway.store()
    try:
        serials = {f"{c.serial:x}" for c in await store.list_certificates()}
    finally:
        await store.close()
    names = {name for _, labels in got for name, _ in labels}
    assert names <= ALLOWED_LABELS
    values = {value.lower() for _, labels in got for _, value in labels}
    assert not values & {"alice", "bob", "carol", "dave"}
    assert not values & serials
    assert not any("/" in value for value in values)  # no path, no file name


async def test_a_revocation_applied_is_counted(gateway: Gateway) -> None:
    follower = gateway.runtime.follower
    assert follower is not None
    await gateway.revoke("dave")

    async def applied() -> bool:
        return follower.revocations == 1

    await gateway.wait_for(applied, timeout=5)
    _, text = await admin(gateway, "/metrics")
    assert parse(text)[("certgate_revocations_applied_total", ())] == 1


async def test_a_reload_changes_the_policy_hash(gateway: Gateway) -> None:
    _, before = await admin(gateway, "/metrics")
    old = {labels for name, labels in parse(before) if name == "certgate_policy_info"}
    text = gateway.config_path.read_text().replace("/small", "/smaller")
    gateway.config_path.write_text(text)
    assert gateway.runtime.reload(gateway.config_path)
    got = parse((await admin(gateway, "/metrics"))[1])
    hashes = {labels: got[("certgate_policy_info", labels)]
              for name, labels in got if name == "certgate_policy_info"}
    assert len(hashes) == 2 and [hashes[h] for h in old] == [0]
    assert sum(hashes.values()) == 1
    assert got[("certgate_config_reloads_total", (("result", "applied"),))] == 1


class Killed(BaseException):
    """Not an ``Exception``: ``keep_running`` does not survive it, as no loop should die."""


async def test_a_background_task_killed_shows_in_readyz_and_metrics(gateway: Gateway) -> None:
    health = TaskHealth("report mailer", stuck_after=60.0, while_failing="no reports go out")
    gateway.runtime.tasks.append(health)

    async def round_() -> None:
        raise Killed("unexpected")

    task = asyncio.create_task(keep_running(health, round_, interval=0.01, max_backoff=0.1,
                                            round_timeout=5.0, log=gateway.runtime.log))
    await asyncio.wait({task})
    assert isinstance(task.exception(), Killed) and not health.running
    status, ready = await admin(gateway, "/readyz")
    assert status == 200 and ready["ready"] is True and ready["status"] == "degraded"
    dead = next(d for d in ready["degraded"] if d["component"] == "report mailer")
    assert dead["reason"] == "not running" and dead["meaning"] == "no reports go out"
    _, text = await admin(gateway, "/metrics")
    got = parse(text)
    assert got[("certgate_background_task_healthy", (("task", "report_mailer"),))] == 0
    assert got[("certgate_degraded_reasons", ())] == len(ready["degraded"])


async def test_readyz_names_each_part_and_is_ok_when_all_is_well(gateway: Gateway) -> None:
    status, ready = await admin(gateway, "/readyz")
    assert status == 200 and (ready["ready"], ready["status"], ready["degraded"]) == \
        (True, "ok", [])
    parts = ready["parts"]
    assert parts["config"]["state"] == "loaded" and parts["config"]["apps"] == 8
    assert parts["state"]["certificates"] == 4
    assert parts["listeners"]["state"] == "listening"
    gateway.runtime.ready = False  # as while draining: the load balancer must let go
    try:
        status, ready = await admin(gateway, "/readyz")
    finally:
        gateway.runtime.ready = True
    assert status == 503 and ready["parts"]["listeners"]["state"] == "starting or draining"


async def test_readyz_degraded_while_the_change_feed_is_behind(gateway: Gateway) -> None:
    follower = gateway.runtime.follower
    assert follower is not None
    # The feed read the database last a minute ago (as when its rounds hang).
    follower.lag = lambda now=None: 60.0  # type: ignore[method-assign]
    status, ready = await admin(gateway, "/readyz")
    assert status == 200 and ready["status"] == "degraded"
    behind = next(d for d in ready["degraded"] if d["component"] == "change feed")
    assert behind["reason"] == "changes made elsewhere were last read 60 s ago"
    assert behind["since"]
    _, text = await admin(gateway, "/metrics")
    assert parse(text)[("certgate_change_feed_lag_seconds", ())] == 60


async def test_readyz_degraded_when_the_crl_is_close_to_expiry(gateway: Gateway) -> None:
    runtime: Runtime = gateway.runtime
    assert runtime.crl_der is not None  # `certgate init` published one
    next_update = x509.load_der_x509_crl(runtime.crl_der).next_update_utc
    assert next_update is not None
    validity = runtime.state.config.pki.crl_validity
    clock = runtime.clock
    runtime.clock = lambda: next_update - validity * 0.2  # past the renewal it missed
    try:
        status, ready = await admin(gateway, "/readyz")
        _, text = await admin(gateway, "/metrics")
    finally:
        runtime.clock = clock
    assert status == 200 and ready["status"] == "degraded"
    crl = next(d for d in ready["degraded"] if d["component"] == "crl")
    assert crl["reason"].startswith(f"the CRL expires at {next_update.isoformat()}")
    assert crl["since"] == (next_update - validity * 0.25).isoformat()
    left = parse(text)[("certgate_expiry_seconds", (("what", "crl"),))]
    assert left == pytest.approx((validity * 0.2).total_seconds())
    _, ready = await admin(gateway, "/readyz")
    assert not any(d["component"] == "crl" for d in ready["degraded"])
