"""User use-cases against a real store: what they record and what they refuse."""

from __future__ import annotations

import pytest

from gateway.auth.passwords import verify_password
from gateway.manage import users
from gateway.manage.errors import ManageError
from gateway.store.errors import ConflictError, NotFoundError
from gateway.store.store import Store


async def test_add_user_with_groups_and_a_hashed_password(store: Store) -> None:
    added = await users.add_user(store, "alice", email="alice@example.test",
                                 groups=("staff", "ops"), password="a long enough password")
    assert (added.name, added.email, added.enabled, added.groups) == (
        "alice", "alice@example.test", True, ("ops", "staff"))
    assert added.password_hash is not None and added.password_hash.startswith("$argon2id$")
    assert verify_password(added.password_hash, "a long enough password")
    assert await store.get_user("alice") == added
    bare = await users.add_user(store, "bob")
    assert (bare.email, bare.groups, bare.password_hash) == (None, (), None)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"name": "alice"}, ConflictError, "a user named 'alice' already exists"),
    ({"name": "Bad Name"}, ManageError, "'Bad Name' is not a valid user name"),
    ({"name": "-dash"}, ManageError, "'-dash' is not a valid user name"),
    ({"name": "carol", "email": "not-an-email"}, ManageError, "is not an email address"),
    ({"name": "carol", "groups": ("Bad Group",)}, ManageError, "is not a valid group name"),
    ({"name": "carol", "password": "short"}, ManageError,
     "the password must have at least 12 characters"),
    ({"name": "carol", "password": " padded password "}, ManageError,
     "must not start or end with spaces"),
])
async def test_add_refusals_change_nothing(store: Store, kwargs: dict[str, object],
                                           error: type[Exception], message: str) -> None:
    await users.add_user(store, "alice")
    before = await store.list_users()
    with pytest.raises(error, match=message):
        await users.add_user(store, **kwargs)  # type: ignore[arg-type]
    assert await store.list_users() == before


async def test_disable_enable_password_groups(store: Store) -> None:
    await users.add_user(store, "bob", groups=("staff",))
    assert (await users.set_user_enabled(store, "bob", False)).enabled is False
    assert (await store.get_user("bob")).enabled is False
    assert (await users.set_user_enabled(store, "bob", True)).enabled is True
    await users.set_password(store, "bob", "another long password")
    stored = (await store.get_user("bob")).password_hash
    assert stored is not None and verify_password(stored, "another long password")
    assert (await users.set_groups(store, "bob", ("pbx-admins", "staff"))).groups == (
        "pbx-admins", "staff")
    assert (await users.set_groups(store, "bob", ())).groups == ()


async def test_changes_to_unknown_users_and_bad_values_are_refused(store: Store) -> None:
    await users.add_user(store, "bob", groups=("staff",))
    with pytest.raises(NotFoundError, match="no user named 'nobody'"):
        await users.set_user_enabled(store, "nobody", False)
    with pytest.raises(NotFoundError, match="no user named 'nobody'"):
        await users.set_password(store, "nobody", "a long enough password")
    with pytest.raises(NotFoundError, match="no user named 'nobody'"):
        await users.set_groups(store, "nobody", ("x",))
    with pytest.raises(ManageError, match="at least 12 characters"):
        await users.set_password(store, "bob", "short")
    with pytest.raises(ManageError, match="'Staff' is not a valid group name"):
        await users.set_groups(store, "bob", ("Staff",))
    bob = await store.get_user("bob")
    assert (bob.groups, bob.password_hash) == (("staff",), None)


async def test_set_change_and_remove_an_email(store: Store) -> None:
    await users.add_user(store, "bob", email="bob@example.test")
    last = max((e.id for e in await store.events_after(0)), default=0)
    assert (await users.set_email(store, "bob", "robert@example.test")).email == (
        "robert@example.test")
    # Running gateways hear of it: a ``user`` event, as for any other change to a user.
    assert [(e.kind, e.key) for e in await store.events_after(last)] == [("user", "bob")]
    assert (await users.set_email(store, "bob", None)).email is None
    with pytest.raises(NotFoundError, match="no user named 'nobody'"):
        await users.set_email(store, "nobody", "n@example.test")
    with pytest.raises(ManageError, match="'bob@' is not an email address"):
        await users.set_email(store, "bob", "bob@")
    with pytest.raises(ManageError, match="at most 254 characters"):  # the column's length
        await users.set_email(store, "bob", "b" * 60 + "@" + "e" * 200 + ".test")
    assert (await store.get_user("bob")).email is None
