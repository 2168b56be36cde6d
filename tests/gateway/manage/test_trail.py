"""The admin trail: one call records an event with its actor on ``<node>.cli`` and signs
a checkpoint of it (in the table and the file) that verifies with ``audit.pub``; a
record that can't be written is an ``AuditTrailError`` (one sentence), or with
``keep_going`` a problem kept for the caller to report after its output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.audit.keys import load_audit_public_key
from gateway.config import Config
from gateway.manage.audit import verify_audit
from gateway.manage.errors import ManageError
from gateway.manage.trail import AdminTrail, AuditTrailError, os_actor, record_admin_event
from gateway.store.store import Store
from tests.gateway.audit.helpers import FlakyDatabase, stored


@pytest.fixture
def own_config(config: Config, tmp_path: Path) -> Config:
    """The session's config with a checkpoint file of this test's own, made (empty) as
    the gateway makes it at its first checkpoint."""
    audit = config.audit.model_copy(update={"checkpoints": tmp_path / "checkpoints.jsonl"})
    audit.checkpoints.touch(mode=0o600)
    return config.model_copy(update={"audit": audit})


async def test_one_event_is_recorded_and_checkpointed(store: Store, own_config: Config) -> None:
    await record_admin_event(store, own_config, type="audit.read", actor="reviewer",
                             reason="export", user="alice", serial="01AB",
                             detail={"command": "export", "since": "30d"})
    node = f"{own_config.node}.cli"
    [row] = await stored(store, node)
    assert (row["type"], row["actor"], row["reason"], row["user"], row["serial"]) == (
        "audit.read", "reviewer", "export", "alice", "01AB")
    assert json.loads(row["detail"]) == {"command": "export", "since": "30d"}
    assert row["decision"] == "info" and len(row["reference"]) == 12
    [checkpoint] = await store.audit_checkpoints(node)
    assert (checkpoint["seq"], checkpoint["hash"]) == (1, row["hash"])
    assert own_config.audit.checkpoints.read_text().count("\n") == 1
    result = await verify_audit(store, public_key=load_audit_public_key(
        own_config.audit.public_key), checkpoint_file=own_config.audit.checkpoints)
    assert result.ok and result.nodes[0].checkpoints == 1  # one, in the table and the file


async def test_a_checkpoint_file_the_gateway_never_made_is_not_created(
        store: Store, own_config: Config) -> None:
    """Created by the CLI (run as root, say), the gateway could not append to it."""
    own_config.audit.checkpoints.unlink()
    await record_admin_event(store, own_config, type="audit.read", actor="root",
                             reason="verify")
    assert not own_config.audit.checkpoints.exists()
    assert len(await store.audit_checkpoints(f"{own_config.node}.cli")) == 1  # the table's


async def test_records_of_one_trail_share_a_reference(store: Store, own_config: Config) -> None:
    trail = AdminTrail(store, own_config, "admin")
    await trail.record("user.disable", "disabled", user="bob")
    await trail.record("session.kill", "ended", user="bob", detail={"sessions": 2})
    await trail.close()
    rows = await stored(store, trail.node)
    assert [r["type"] for r in rows] == ["user.disable", "session.kill"]
    assert {r["reference"] for r in rows} == {trail.reference}


async def test_a_record_that_fails_is_never_silent(store: Store, own_config: Config) -> None:
    down = FlakyDatabase(store)
    down.down = True
    trail = AdminTrail(down, own_config, "admin")  # type: ignore[arg-type]
    with pytest.raises(AuditTrailError) as info:
        await trail.record("user.add", "added", user="carol")
    assert isinstance(info.value, ManageError)
    assert str(info.value) == ("the audit record user.add could not be written: cannot reach "
                               "the database at test: refused")
    kept = AdminTrail(down, own_config, "admin", keep_going=True)  # type: ignore[arg-type]
    await kept.record("user.add", "added", user="carol")
    assert kept.problems == [str(info.value)] and kept.written == 0


def test_the_actor_names_the_person_behind_sudo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUDO_USER", "alice")
    monkeypatch.setattr("gateway.manage.trail.os_user", lambda: "root")
    assert os_actor() == "root (sudo: alice)"
    monkeypatch.delenv("SUDO_USER")
    assert os_actor() == "root"
