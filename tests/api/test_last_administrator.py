"""The last active administrator stays: the API refuses to block or delete it (409).

Administrators are made the way ``apim-users create-admin`` makes them (through the services),
which only the in-process app sees; these tests therefore use chalice's test client directly.
"""

from __future__ import annotations

import pytest

from chalicelib.bootstrap import services
from chalicelib.domain.etag import ANY
from chalicelib.domain.users import UserChanges, UserState, read_draft
from chalicelib.errors import LastAdministrator, StateConflict
from tests.support import error_of


def make_admin(user_id: str, first: str = "Grace", last: str = "Hopper"):
    body = {"email": f"{user_id}@example.com", "firstName": first, "lastName": last}
    user, _ = services().accounts.create_or_replace(user_id, read_draft({"properties": body}), None)
    assert services().groups.add_administrator(user.id)
    return user


def test_the_only_administrator_cannot_be_blocked_or_deleted(api, aws):
    make_admin("boss")
    for reply in (
        api.patch("/users/boss", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"}),
        api.patch("/users/boss", {"properties": {"state": "pending"}}, headers={"If-Match": "*"}),
        api.put(
            "/users/boss",
            {
                "properties": {
                    "email": "boss@example.com",
                    "firstName": "Grace",
                    "lastName": "Hopper",
                    "state": "blocked",
                }
            },
            headers={"If-Match": "*"},
        ),
        api.delete("/users/boss", headers={"If-Match": "*"}),
    ):
        assert reply.status == 409, reply.body
        error = error_of(reply)
        assert error["code"] == "Conflict"
        assert "Grace Hopper is the last active administrator" in error["message"]
        assert "apim-users create-admin" in error["message"]
    assert services().accounts.get("boss").state is UserState.ACTIVE
    # Other changes to the account still work.
    renamed = api.patch("/users/boss", {"properties": {"note": "n"}}, headers={"If-Match": "*"})
    assert renamed.status == 200


def test_with_two_administrators_one_can_go_but_not_the_second(api, aws):
    make_admin("boss")
    make_admin("deputy", "Ada", "Lovelace")
    blocked = api.patch(
        "/users/deputy", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"}
    )
    assert blocked.status == 200
    refused = api.patch(
        "/users/boss", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"}
    )
    assert refused.status == 409
    # A blocked administrator is not an active one: deleting it leaves the active one alone.
    assert api.delete("/users/deputy", headers={"If-Match": "*"}).status == 204
    assert api.delete("/users/boss", headers={"If-Match": "*"}).status == 409
    # Developers are blocked and deleted as before.
    api.create_user("dev1")
    assert (
        api.patch(
            "/users/dev1", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"}
        ).status
        == 200
    )
    assert api.delete("/users/dev1", headers={"If-Match": "*"}).status == 204


def test_a_transition_that_keeps_the_administrator_active_is_not_refused(aws):
    make_admin("boss")
    with pytest.raises(LastAdministrator):
        services().accounts.update("boss", UserChanges(state=UserState.BLOCKED), ANY)
    # Blocked already (made so by hand in the table's past): activating is always allowed.
    kept = services().accounts.update("boss", UserChanges(state=UserState.ACTIVE), ANY)
    assert kept.state is UserState.ACTIVE


def test_the_remaining_administrator_is_checked_in_the_same_transaction(aws):
    """Two administrators blocking each other at once cannot both succeed: the block stages a
    check that the administrator who stays is unchanged, so a change to that account between
    the read and the commit fails the whole transaction (nothing written)."""
    from dataclasses import replace

    boss = make_admin("boss")
    deputy = make_admin("deputy", "Ada", "Lovelace")
    store = services().store
    assert services().groups.other_active_administrator(boss) == deputy
    tx = store.transaction()
    store.users.stage_check(tx, deputy, lambda: StateConflict("changed at the same moment"))
    store.users.stage_replace(
        tx, boss, replace(boss, state=UserState.BLOCKED, version=boss.version + 1)
    )
    services().accounts.update("deputy", UserChanges(state=UserState.BLOCKED), ANY)
    with pytest.raises(StateConflict):
        tx.commit()
    assert services().accounts.get("boss").state is UserState.ACTIVE
    # Unchanged, the same check lets the transaction through.
    fresh = services().accounts.get("deputy")
    tx = store.transaction()
    store.users.stage_check(tx, fresh, lambda: StateConflict("changed at the same moment"))
    store.users.stage_replace(tx, boss, replace(boss, note="checked", version=boss.version + 1))
    tx.commit()
    assert services().accounts.get("boss").note == "checked"


def test_remove_admin_refuses_the_last_active_administrator(aws, capsys):
    from chalicelib.cli import main

    make_admin("boss")
    with pytest.raises(SystemExit) as refused:
        main(["remove-admin", "--email", "boss@example.com"])
    assert "Grace Hopper is the last active administrator" in str(refused.value)
    assert "apim-users create-admin" in str(refused.value)
    assert services().groups.is_administrator(services().accounts.get("boss"))
    # With a second active administrator, the first can step down; then the second cannot.
    make_admin("deputy", "Ada", "Lovelace")
    assert main(["remove-admin", "--email", "boss@example.com"]) == 0
    assert "boss@example.com is no longer an administrator" in capsys.readouterr().out
    assert not services().groups.is_administrator(services().accounts.get("boss"))
    with pytest.raises(SystemExit, match="Ada Lovelace is the last active administrator"):
        main(["remove-admin", "--email", "deputy@example.com"])


def test_a_blocked_administrator_can_always_be_removed(aws):
    make_admin("boss")
    make_admin("deputy", "Ada", "Lovelace")
    services().accounts.update("deputy", UserChanges(state=UserState.BLOCKED), ANY)
    services().groups.remove_administrator("deputy")  # not active: no console access to keep
    assert not services().groups.is_administrator(services().accounts.get("deputy"))


def test_two_administrators_removing_each_other_at_once_cannot_both_succeed(aws):
    """The removal checks, in its own transaction, that the administrator who stays still is
    one: the other's removal committing in between fails it, and nothing is written."""
    boss = make_admin("boss")
    make_admin("deputy", "Ada", "Lovelace")
    groups = services().groups
    real_other = groups.other_active_administrator

    def deputy_leaves_meanwhile(user):
        other = real_other(user)
        groups.other_active_administrator = real_other  # the deputy's own removal reads as usual
        groups.remove_administrator("deputy")
        return other

    groups.other_active_administrator = deputy_leaves_meanwhile
    try:
        with pytest.raises(StateConflict):
            groups.remove_administrator(boss.id)
    finally:
        groups.other_active_administrator = real_other
    assert groups.is_administrator(services().accounts.get("boss"))
    assert not groups.is_administrator(services().accounts.get("deputy"))
