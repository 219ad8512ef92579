"""Users, email locks and transactions: the same answers from the fakes and from DynamoDB."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.links import Link, LinkPurpose, LinkState
from chalicelib.domain.users import (
    Identity,
    User,
    UserOrder,
    UserSort,
    UserState,
    order_key,
    state_prefix,
)
from chalicelib.errors import (
    EmailTaken,
    IdTaken,
    LinkUnusable,
    PreconditionFailed,
    ResourceNotFound,
)

NOW = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def a_user(user_id, email=None, **fields):
    email = email or f"{user_id}@example.com"
    values = {
        "id": user_id,
        "email": email,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "state": UserState.ACTIVE,
        "note": None,
        "registration_date": NOW,
        "identities": (Identity("Basic", email),),
        "version": 1,
    }
    return User(**{**values, **fields})


def create(store, *users):
    for user in users:
        tx = store.transaction()
        store.users.stage_create(tx, user)
        tx.commit()


def a_link(user_id, link_id, **fields):
    values = {
        "user_id": user_id,
        "link_id": link_id,
        "purpose": LinkPurpose.INVITE,
        "state": LinkState.PENDING,
        "token_hash": f"hash-{user_id}-{link_id}",
        "created_at": NOW,
        "expires_at": NOW + timedelta(hours=48),
        "message_id": f"m-{link_id}",
    }
    return Link(**{**values, **fields})


def put_links(store, *links):
    tx = store.transaction()
    for link in links:
        store.links.stage_put(tx, link)
    tx.commit()


# --- users -------------------------------------------------------------------------------------


def test_a_user_reads_back_as_it_was_written(backend):
    store = backend.store
    full = a_user(
        "ada",
        "Ada.Lovelace@Example.com",
        note="first of her kind",
        identities=(Identity("Basic", "Ada.Lovelace@Example.com"), Identity("Microsoft", "oid")),
        password_hash="$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA",
        token_epoch="0123456789abcdef",
        state=UserState.PENDING,
        version=7,
    )
    bare = a_user("bob", token_epoch="")
    create(store, full, bare)
    assert store.users.get("ada") == full
    assert store.users.get("bob") == bare
    assert store.users.require("ada") == full
    assert store.users.get("nobody") is None
    with pytest.raises(ResourceNotFound):
        store.users.require("nobody")
    assert store.users.find_by_email("ada.lovelace@example.com") == full
    assert store.users.find_by_email("Ada.Lovelace@Example.com") is None  # keys are normalized
    assert store.users.get_many(["bob", "nobody", "ada", "bob"]) == {"ada": full, "bob": bare}


def test_ids_and_emails_are_unique_and_a_refused_create_writes_nothing(backend):
    store = backend.store
    create(store, a_user("ada", "ada@example.com"))
    with pytest.raises(IdTaken):
        create(store, a_user("ada", "someone.else@example.com"))
    with pytest.raises(EmailTaken):
        create(store, a_user("other", "ADA@example.com"))
    with pytest.raises(IdTaken):  # both taken: the id is what the caller hears about
        create(store, a_user("ada", "ada@example.com"))
    assert store.users.get("other") is None
    # Neither refused create claimed anything: that email and that id are still free.
    create(store, a_user("other", "someone.else@example.com"))
    assert store.users.find_by_email("someone.else@example.com").id == "other"


def test_replace_checks_the_version_and_moves_the_email_lock(backend):
    store = backend.store
    ada = a_user("ada", "old@example.com")
    create(store, ada, a_user("bob", "taken@example.com"))
    moved = replace(ada, email="new@example.com", version=2)
    tx = store.transaction()
    store.users.stage_replace(tx, ada, moved)
    tx.commit()
    assert store.users.get("ada") == moved
    assert store.users.find_by_email("new@example.com") == moved
    create(store, a_user("carl", "old@example.com"))  # the old address is free again
    with pytest.raises(EmailTaken):
        create(store, a_user("dora", "NEW@example.com"))

    stale = store.transaction()
    store.users.stage_replace(stale, ada, replace(ada, first_name="Stale", version=3))
    with pytest.raises(PreconditionFailed):
        stale.commit()
    mine = store.transaction()
    store.users.stage_replace(
        mine, ada, replace(ada, version=3), on_fail=lambda: LinkUnusable("used")
    )
    with pytest.raises(LinkUnusable):
        mine.commit()
    clash = store.transaction()
    store.users.stage_replace(clash, moved, replace(moved, email="Taken@example.com", version=3))
    with pytest.raises(EmailTaken):
        clash.commit()
    assert store.users.get("ada") == moved
    assert store.users.find_by_email("new@example.com") == moved


def test_delete_checks_the_version_and_frees_the_email(backend):
    store = backend.store
    ada = a_user("ada")
    create(store, ada)
    stale = store.transaction()
    store.users.stage_delete(stale, replace(ada, version=99))
    with pytest.raises(PreconditionFailed):
        stale.commit()
    assert store.users.get("ada") == ada
    tx = store.transaction()
    store.users.stage_delete(tx, ada)
    tx.commit()
    assert store.users.get("ada") is None
    assert store.users.find_by_email("ada@example.com") is None
    create(store, a_user("again", "ada@example.com"))


def test_users_are_iterated_in_id_order_within_the_budget(backend):
    store = backend.store
    create(store, *(a_user(uid) for uid in ("delta", "alpha", "charlie", "bravo", "echo")))
    assert [u.id for u in store.users.iterate(None, 10, 2)] == [
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
    ]
    assert [u.id for u in store.users.iterate("bravo", 2, 1)] == ["charlie", "delta"]
    assert list(store.users.iterate("echo", 10, 10)) == []


def test_sorted_lists_follow_their_key_both_ways_from_a_start_and_within_a_state(backend):
    store = backend.store
    blocked = UserState.BLOCKED
    create(
        store,
        a_user("u1", "zed@example.com", first_name="Émile", last_name="Zola"),
        a_user("u2", "amy@example.com", first_name="amy", last_name="Adams", state=blocked),
        a_user("u3", "bob@example.com", first_name="Bob", last_name="Brown"),
        a_user("u4", "cy@example.com", first_name="Cy", last_name="Young", state=blocked),
    )

    def ids(order, after=None, budget=10, prefix=None):
        return [u.id for u in store.users.iterate_sorted(order, after, budget, 2, prefix)]

    by_name, by_name_down = UserOrder(UserSort.NAME, False), UserOrder(UserSort.NAME, True)
    assert ids(by_name) == ["u2", "u3", "u4", "u1"]  # case and accents folded: amy, bob, cy, emile
    assert ids(by_name_down) == ["u1", "u4", "u3", "u2"]
    assert ids(UserOrder(UserSort.EMAIL, False)) == ["u2", "u3", "u4", "u1"]
    u3 = store.users.get("u3")
    assert ids(by_name, after=order_key(u3, UserSort.NAME)) == ["u4", "u1"]
    assert ids(by_name_down, after=order_key(u3, UserSort.NAME), budget=1) == ["u2"]
    by_state = UserOrder(UserSort.STATE, False)
    assert ids(by_state, prefix=state_prefix(blocked)) == ["u2", "u4"]
    u2 = store.users.get("u2")
    assert ids(by_state, after=order_key(u2, UserSort.STATE), prefix=state_prefix(blocked)) == [
        "u4"
    ]
    assert ids(UserOrder(UserSort.STATE, True), prefix=state_prefix(blocked)) == ["u4", "u2"]


# --- links -------------------------------------------------------------------------------------


def test_links_are_found_by_token_by_user_newest_first_and_by_expiry(backend):
    store = backend.store
    old = a_link("ada", "20260301T000000000000-aa")
    new = a_link("ada", "20260302T000000000000-bb", expires_at=NOW + timedelta(hours=1))
    reset = a_link(
        "ada", "20260303T000000000000-cc", purpose=LinkPurpose.RESET, expires_at=NOW + timedelta(2)
    )
    other = a_link("bob", "20260301T000000000000-dd", expires_at=NOW - timedelta(hours=1))
    put_links(store, old, new, reset, other)
    assert store.links.get("ada", old.link_id) == old
    assert store.links.get("ada", "nope") is None
    assert store.links.find_by_token(new.token_hash) == new
    assert store.links.find_by_token("unknown") is None
    invitations = {LinkPurpose.INVITE, LinkPurpose.SIGNUP}
    assert store.links.for_user("ada", invitations) == [new, old]
    assert store.links.for_user("ada", invitations, 1) == [new]
    assert store.links.for_user("ada", set(LinkPurpose)) == [reset, new, old]
    assert list(store.links.due(NOW, 10)) == [other]
    later = NOW + timedelta(hours=50)
    assert list(store.links.due(later, 10)) == [other, new, old, reset]
    assert list(store.links.due(later, 2)) == [other, new]


def test_a_link_ends_once_and_leaves_the_due_list(backend):
    store = backend.store
    link = a_link("ada", "20260301T000000000000-aa")
    put_links(store, link)
    tx = store.transaction()
    store.links.stage_end(tx, link, LinkState.ACCEPTED, NOW + timedelta(minutes=5))
    tx.commit()
    ended = store.links.get("ada", link.link_id)
    assert (ended.state, ended.ended_at) == (LinkState.ACCEPTED, NOW + timedelta(minutes=5))
    assert list(store.links.due(NOW + timedelta(days=3), 10)) == []
    again = store.transaction()
    store.links.stage_end(again, link, LinkState.REVOKED, NOW)
    with pytest.raises(LinkUnusable):
        again.commit()
    rotate = store.transaction()
    store.links.stage_rotate(rotate, link, "new-hash")
    with pytest.raises(LinkUnusable):
        rotate.commit()


def test_a_pending_link_gets_a_new_token_only_if_the_old_one_is_still_its_own(backend):
    store = backend.store
    link = a_link("ada", "20260301T000000000000-aa")
    put_links(store, link)
    tx = store.transaction()
    store.links.stage_rotate(tx, link, "new-hash")
    tx.commit()
    assert store.links.find_by_token("new-hash") == replace(link, token_hash="new-hash")
    assert store.links.find_by_token(link.token_hash) is None
    stale = store.transaction()
    store.links.stage_end(stale, link, LinkState.ACCEPTED, NOW)  # the old token, never mailed
    with pytest.raises(LinkUnusable):
        stale.commit()
    # Revoking ends the link whatever its token is now (a resend racing the relay).
    revoke = store.transaction()
    store.links.stage_end(revoke, link, LinkState.REVOKED, NOW)
    revoke.commit()
    assert store.links.get("ada", link.link_id).state is LinkState.REVOKED


# --- transactions ------------------------------------------------------------------------------


def test_a_transaction_writes_everything_or_nothing(backend):
    store = backend.store
    create(store, a_user("ada"))
    tx = store.transaction()
    store.users.stage_create(tx, a_user("bob"))
    put_links_in = a_link("bob", "20260301T000000000000-aa")
    store.links.stage_put(tx, put_links_in)
    store.users.stage_create(tx, a_user("ada", "ada2@example.com"))  # the id is taken
    with pytest.raises(IdTaken):
        tx.commit()
    assert store.users.get("bob") is None
    assert store.users.find_by_email("bob@example.com") is None
    assert store.links.get("bob", put_links_in.link_id) is None


def test_a_user_check_holds_only_while_the_version_is_the_one_read(backend):
    store = backend.store
    ada = a_user("ada")
    create(store, ada)

    class Changed(Exception):
        pass

    def check(user, link_id):
        tx = store.transaction()
        store.users.stage_check(tx, user, Changed)
        store.links.stage_put(tx, a_link("ada", link_id))
        tx.commit()

    check(ada, "20260301T000000000000-aa")  # as read: the link is written with the check
    assert store.links.get("ada", "20260301T000000000000-aa") is not None
    tx = store.transaction()
    store.users.stage_replace(tx, ada, replace(ada, first_name="Ad", version=2))
    tx.commit()
    with pytest.raises(Changed):
        check(ada, "20260301T000000000000-bb")
    assert store.links.get("ada", "20260301T000000000000-bb") is None


def test_the_first_failed_write_in_send_order_names_the_error(backend):
    """Deletes go first, then puts, then updates, whatever order they were staged in."""
    store = backend.store
    ada, link = a_user("ada"), a_link("ada", "20260301T000000000000-aa")
    create(store, ada)
    tx = store.transaction()
    store.links.stage_end(tx, link, LinkState.ACCEPTED, NOW)  # update: no such link
    store.users.stage_create(tx, a_user("ada", "x@example.com"))  # put: id taken
    store.users.stage_delete(tx, replace(ada, id="ghost", email="ghost@example.com"))  # delete
    with pytest.raises(PreconditionFailed):
        tx.commit()
    tx = store.transaction()
    store.links.stage_end(tx, link, LinkState.ACCEPTED, NOW)
    store.users.stage_create(tx, a_user("ada", "x@example.com"))
    with pytest.raises(IdTaken):
        tx.commit()
    assert store.users.get("ada") == ada


def test_a_transaction_may_not_touch_one_item_twice(backend):
    store = backend.store
    twice = store.transaction()
    link = a_link("ada", "20260301T000000000000-aa")
    store.links.stage_put(twice, link)
    store.links.stage_put(twice, replace(link, token_hash="other"))
    with pytest.raises(Exception):  # noqa: B017  (DynamoDB's ValidationException; the fake's own)
        twice.commit()
    assert store.links.get("ada", link.link_id) is None
