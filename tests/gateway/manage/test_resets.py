"""Starting a password reset: a readable one-time code, stored only as its argon2id
hash, that works for 24 hours; a disabled user gets none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.auth.resetcodes import code_matches, well_formed
from gateway.manage.errors import ManageError
from gateway.manage.resets import open_reset, start_password_reset
from gateway.store.store import Store

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def test_the_code_is_returned_once_and_only_its_hash_is_kept(store: Store) -> None:
    await store.add_user("dave", password_hash="old")
    reset = await start_password_reset(store, "dave", NOW, created_by="root")
    assert well_formed(reset.code) and len(reset.code) == 19
    assert well_formed(reset.code.upper().replace("-", " "))
    assert reset.expires_at == NOW + timedelta(hours=24)
    found = await open_reset(store, "dave", NOW)
    assert found is not None and reset.code not in found.code_hash
    assert found.code_hash.startswith("$argon2id$")
    assert code_matches(found.code_hash, reset.code)
    again = await start_password_reset(store, "dave", NOW, created_by="root")
    newer = await open_reset(store, "dave", NOW)
    assert newer is not None and not code_matches(newer.code_hash, reset.code)
    assert code_matches(newer.code_hash, again.code)


async def test_a_disabled_user_gets_no_reset(store: Store) -> None:
    await store.add_user("dave")
    await store.set_user_enabled("dave", False)
    with pytest.raises(ManageError, match="disabled"):
        await start_password_reset(store, "dave", NOW, created_by="root")
