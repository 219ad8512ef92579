"""Products, subscriptions, groups, templates and audit events: fakes and DynamoDB alike."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.audit import AuditEvent
from chalicelib.domain.custom_groups import Membership, StoredGroup
from chalicelib.domain.email_templates import StoredTemplate
from chalicelib.domain.groups import Group
from chalicelib.domain.subscriptions import Product, ProductState, Subscription, SubscriptionState
from chalicelib.errors import IdTaken, LimitReached, PreconditionFailed, StateConflict
from chalicelib.mail.templates import TemplateParameter

NOW = datetime(2026, 3, 1, 9, 15, 0, 500000, tzinfo=UTC)


def commit(store, stage):
    tx = store.transaction()
    stage(tx)
    tx.commit()


# --- products ----------------------------------------------------------------------------------


def test_products_are_versioned_and_carry_the_groups_that_may_see_them(backend):
    store = backend.store
    gold = Product(
        "gold",
        "Gold",
        description="<b>best</b>",
        terms="be nice",
        approval_required=True,
        subscriptions_limit=1,
        state=ProductState.PUBLISHED,
        version=3,
    )
    plain = Product("basic", "Basic")
    commit(store, lambda tx: store.products.stage_create(tx, gold))
    commit(store, lambda tx: store.products.stage_create(tx, plain))
    assert store.products.get("gold") == gold
    assert store.products.get("basic") == plain
    assert store.products.get("nope") is None
    with pytest.raises(IdTaken):
        commit(store, lambda tx: store.products.stage_create(tx, replace(gold, version=9)))
    assert [p.id for p in store.products.iterate(None, 10, 10)] == ["basic", "gold"]
    assert [p.id for p in store.products.iterate("basic", 10, 10)] == ["gold"]
    with pytest.raises(PreconditionFailed):
        commit(store, lambda tx: store.products.stage_replace(tx, replace(gold, version=2), gold))
    renamed = replace(gold, display_name="Golden", version=4)
    commit(store, lambda tx: store.products.stage_replace(tx, gold, renamed))
    assert store.products.get("gold") == renamed

    assert store.products.link_group("gold", "Partners")
    assert not store.products.link_group("gold", "partners")
    assert store.products.link_group("gold", "developers")
    assert store.products.link_group("basic", "developers")
    assert store.products.group_ids("gold") == ["developers", "Partners"]
    assert store.products.has_group("gold", "PARTNERS")
    assert not store.products.has_group("basic", "partners")
    assert store.products.products_of_group("Developers") == ["basic", "gold"]
    store.products.unlink_group("gold", "developers")
    store.products.unlink_group("gold", "never-linked")
    assert store.products.group_ids("gold") == ["Partners"]

    with pytest.raises(PreconditionFailed):
        commit(store, lambda tx: store.products.stage_delete(tx, gold))
    commit(store, lambda tx: store.products.stage_delete(tx, renamed))
    assert store.products.get("gold") is None
    assert store.products.group_ids("gold") == []
    assert store.products.products_of_group("partners") == []


# --- subscriptions -----------------------------------------------------------------------------


def a_subscription(sid, owner="ada", scope="/products/gold", **fields):
    values = {
        "id": sid,
        "scope": scope,
        "display_name": sid.upper(),
        "state": SubscriptionState.ACTIVE,
        "owner_id": owner,
        "created_date": NOW,
        "primary_key": f"{sid}-primary",
        "secondary_key": f"{sid}-secondary",
        "version": 1,
        "start_date": NOW,
    }
    return Subscription(**{**values, **fields})


def test_subscriptions_keys_and_limits_change_together(backend):
    store = backend.store
    subs = store.subscriptions
    first = a_subscription("s1", state_comment="why", allow_tracing=False)
    commit(store, lambda tx: subs.stage_create(tx, first, 2))
    assert subs.get("s1") == first
    assert subs.get("nope") is None
    primary = subs.key("s1-primary")
    assert (primary.subscription_id, primary.slot, primary.owner_id) == ("s1", "primary", "ada")
    assert (primary.scope, primary.state) == ("/products/gold", SubscriptionState.ACTIVE)
    assert subs.key("s1-secondary").slot == "secondary"
    assert subs.key("unknown") is None

    with pytest.raises(IdTaken):
        commit(store, lambda tx: subs.stage_create(tx, replace(first, primary_key="x"), 2))
    with pytest.raises(StateConflict):  # a key already in use
        commit(
            store,
            lambda tx: subs.stage_create(tx, a_subscription("s2", primary_key="s1-primary"), 2),
        )
    assert subs.get("s2") is None
    commit(store, lambda tx: subs.stage_create(tx, a_subscription("s2"), 2))
    with pytest.raises(StateConflict):  # the user's places in the product are taken
        commit(store, lambda tx: subs.stage_create(tx, a_subscription("s3"), 2))
    assert subs.get("s3") is None and subs.key("s3-primary") is None
    commit(store, lambda tx: subs.stage_create(tx, a_subscription("o1", owner="bob"), 2))

    # Cancelling gives the place back; the new keys replace the old ones at once.
    cancelled = replace(
        first, state=SubscriptionState.CANCELLED, primary_key="s1-new", version=2, end_date=NOW
    )
    with pytest.raises(PreconditionFailed):
        commit(store, lambda tx: subs.stage_replace(tx, replace(first, version=0), cancelled, 2))
    commit(store, lambda tx: subs.stage_replace(tx, first, cancelled, 2))
    assert subs.get("s1") == cancelled
    assert subs.key("s1-primary") is None
    assert subs.key("s1-new").state is SubscriptionState.CANCELLED
    assert subs.key("s1-secondary").state is SubscriptionState.CANCELLED
    commit(store, lambda tx: subs.stage_create(tx, a_subscription("s3"), 2))

    assert [s.id for s in subs.iterate(None, 10, 10)] == ["o1", "s1", "s2", "s3"]
    assert [s.id for s in subs.iterate("o1", 2, 1)] == ["s1", "s2"]
    assert [s.id for s in subs.of_owner("ada", None, 10, 10)] == ["s1", "s2", "s3"]
    assert [s.id for s in subs.of_owner("ada", "s1", 1, 1)] == ["s2"]
    assert [s.id for s in subs.of_product("gold", 10)] == ["o1", "s1", "s2", "s3"]
    assert [s.id for s in subs.of_product("gold", 2)] == ["o1", "s1"]
    assert subs.exists_for_owner("bob") and not subs.exists_for_owner("carl")

    s3 = subs.get("s3")
    with pytest.raises(PreconditionFailed):
        commit(store, lambda tx: subs.stage_delete(tx, replace(s3, version=5)))
    commit(store, lambda tx: subs.stage_delete(tx, s3))
    assert subs.get("s3") is None and subs.key("s3-primary") is None
    commit(store, lambda tx: subs.stage_create(tx, a_subscription("s4"), 2))  # its place is free


def test_subscriptions_without_an_owner_or_product_hold_no_place(backend):
    store = backend.store
    subs = store.subscriptions
    for n in range(3):
        commit(
            store,
            lambda tx, n=n: subs.stage_create(tx, a_subscription(f"a{n}", scope="/apis"), 1),
        )
        commit(
            store,
            lambda tx, n=n: subs.stage_create(tx, a_subscription(f"n{n}", owner=None), 1),
        )
    assert subs.key("a2-primary").owner_id == "ada"
    assert subs.key("n2-primary").owner_id is None
    assert len(list(subs.iterate(None, 10, 10))) == 6


# --- audit -------------------------------------------------------------------------------------


def an_event(event_id, target_id="ada", time=NOW, **fields):
    values = {
        "id": event_id,
        "time": time,
        "action": "user.updated",
        "actor": "integration",
        "actor_kind": "management",
        "address": "127.0.0.1",
        "request_id": "req-1",
        "target_type": "user",
        "target_id": target_id,
        "target_email": f"{target_id}@example.com",
    }
    return AuditEvent(**{**values, **fields})


def test_audit_events_read_newest_first_by_target_and_by_month(backend):
    store = backend.store
    audit = store.audit
    older = an_event("20260201T000000000000-1", time=NOW - timedelta(days=28))
    first = an_event(
        "20260301T091500500000-2",
        changes={"note": {"old": None, "new": "x"}, "when": {"old": None, "new": NOW}},
    )
    second = an_event("20260301T091500500000-3", address="", request_id="", target_email=None)
    other = an_event("20260301T091500500000-4", target_id="bob", action="group.member_added")
    commit(store, lambda tx: audit.stage_put(tx, first))
    commit(store, lambda tx: audit.stage_put(tx, other))
    audit.put(second)
    audit.put(older)
    stored = list(audit.stream("user#ada", None, 10, 10))
    assert [e.id for e in stored] == [second.id, first.id, older.id]
    # Changes are kept as JSON: values that are not JSON come back as their text.
    assert stored[1].changes == {
        "note": {"old": None, "new": "x"},
        "when": {"old": None, "new": str(NOW)},
    }
    assert stored[0] == second
    assert [e.id for e in audit.stream("user#ada", second.id, 1, 1)] == [first.id]
    assert list(audit.stream("user#nobody", None, 10, 10)) == []
    assert [e.id for e in audit.month("2026-03", None, 10, 10)] == [other.id, second.id, first.id]
    assert [e.id for e in audit.month("2026-03", other.id, 1, 1)] == [second.id]
    assert [e.id for e in audit.month("2026-02", None, 10, 10)] == [older.id]


# --- groups ------------------------------------------------------------------------------------


def a_group(group_id, version=1, generation=1, **fields):
    group = Group(group_id, group_id.title(), fields.pop("description", None), False, "custom")
    return StoredGroup(replace(group, **fields), version, generation)


def a_membership(key, user_id, generation=1, user_since=NOW):
    return Membership(key, key, user_id, generation, user_since, NOW + timedelta(minutes=1))


class Taken(Exception):
    pass


def test_groups_are_versioned_and_listed_by_key(backend):
    store, groups = backend.store, backend.groups
    partners = a_group("Partners", description="d", version=3, generation=3)
    external = a_group("aad", type="external", external_id="aad://t/groups/1")
    commit(store, lambda tx: groups.stage_create(tx, partners, Taken))
    commit(store, lambda tx: groups.stage_create(tx, external, Taken))
    assert groups.get("partners") == partners
    assert groups.get("aad") == external
    assert groups.get("nope") is None
    assert groups.get_many(["partners", "nope", "aad"]) == {"partners": partners, "aad": external}
    with pytest.raises(Taken):
        commit(store, lambda tx: groups.stage_create(tx, a_group("PARTNERS"), Taken))
    assert [g.key for g in groups.iterate(None, 10, 10)] == ["aad", "partners"]
    assert [g.key for g in groups.iterate("aad", 10, 10)] == ["partners"]
    changed = replace(partners, version=4)
    with pytest.raises(PreconditionFailed):
        commit(store, lambda tx: groups.stage_replace(tx, replace(partners, version=1), changed))
    commit(store, lambda tx: groups.stage_replace(tx, partners, changed))
    assert groups.get("partners") == changed
    with pytest.raises(PreconditionFailed):
        commit(store, lambda tx: groups.stage_delete(tx, partners))
    commit(store, lambda tx: groups.stage_delete(tx, changed))
    assert groups.get("partners") is None


def test_memberships_are_listed_by_group_and_by_user_and_replace_leftovers(backend):
    store, groups = backend.store, backend.groups
    commit(store, lambda tx: groups.stage_create(tx, a_group("beta"), Taken))
    rows = [
        a_membership("beta", "cy"),
        a_membership("beta", "ada"),
        a_membership("alpha", "ada"),
        a_membership("beta", "bob"),
    ]
    for row in rows:
        commit(store, lambda tx, row=row: groups.stage_add_member(tx, row, Taken))
    assert groups.membership("beta", "ada") == rows[1]
    assert groups.membership("beta", "nobody") is None
    with pytest.raises(Taken):  # the same row again: it is there and applies
        commit(store, lambda tx: groups.stage_add_member(tx, rows[1], Taken))
    # A row of a former group (another generation) or account (another registration) is replaced.
    reborn = a_membership("beta", "ada", generation=2)
    commit(store, lambda tx: groups.stage_add_member(tx, reborn, Taken))
    new_account = a_membership("beta", "ada", generation=2, user_since=NOW + timedelta(days=1))
    commit(store, lambda tx: groups.stage_add_member(tx, new_account, Taken))
    assert groups.membership("beta", "ada") == new_account
    assert [m.user_id for m in groups.members("beta", None, 10, 10)] == ["ada", "bob", "cy"]
    assert [m.user_id for m in groups.members("beta", "ada", 1, 1)] == ["bob"]
    assert [m.group_key for m in groups.memberships_of("ada", None, 10, 10)] == ["alpha", "beta"]
    assert [m.group_key for m in groups.memberships_of("ada", "alpha", 10, 10)] == ["beta"]
    assert next(iter(groups.members("beta", None, 10, 10))) == new_account
    commit(store, lambda tx: groups.stage_remove_member(tx, rows[3]))
    assert [m.user_id for m in groups.members("beta", None, 10, 10)] == ["ada", "cy"]
    groups.remove_memberships([rows[0], new_account, rows[3]])
    assert list(groups.members("beta", None, 10, 10)) == []
    assert groups.get("beta") is not None  # the group item is no membership
    assert [m.group_key for m in groups.memberships_of("ada", None, 10, 10)] == ["alpha"]


def test_a_membership_check_holds_only_while_the_row_is_as_read(backend):
    store, groups = backend.store, backend.groups
    row = a_membership("beta", "ada")
    commit(store, lambda tx: groups.stage_add_member(tx, row, Taken))
    commit(store, lambda tx: groups.stage_check_member(tx, row, Taken))  # as read: it holds
    later = a_membership("beta", "ada", generation=2)
    commit(store, lambda tx: groups.stage_add_member(tx, later, Taken))
    with pytest.raises(Taken):  # the row was replaced since it was read
        commit(store, lambda tx: groups.stage_check_member(tx, row, Taken))
    commit(store, lambda tx: groups.stage_remove_member(tx, later))
    with pytest.raises(Taken):  # and now it is gone
        commit(store, lambda tx: groups.stage_check_member(tx, later, Taken))


# --- templates ---------------------------------------------------------------------------------


def a_template(version, subject="Hi", **fields):
    values = {
        "name": "inviteUserNotificationMessage",
        "subject": subject,
        "body": "<p>{{ ConfirmUrl }}</p>",
        "text": "{{ ConfirmUrl }}",
        "title": "Invite user",
        "description": None,
        "parameters": (TemplateParameter("DevFirstName", "First name", ""),),
        "version": version,
        "updated_at": NOW,
    }
    return StoredTemplate(**{**values, **fields})


def test_a_template_is_saved_over_what_was_read_and_deleted_back_to_the_default(backend):
    store, templates = backend.store, backend.templates
    first = a_template(1)
    commit(store, lambda tx: templates.stage_put(tx, first, None))
    assert templates.get("inviteUserNotificationMessage") == first
    assert templates.get("accountClosedDeveloper") is None
    with pytest.raises(PreconditionFailed):  # someone saved it since it was read as the default
        commit(store, lambda tx: templates.stage_put(tx, a_template(2, "Other"), None))
    second = a_template(2, "Second", parameters=())
    with pytest.raises(PreconditionFailed):
        commit(store, lambda tx: templates.stage_put(tx, second, a_template(7)))
    commit(store, lambda tx: templates.stage_put(tx, second, first))
    assert templates.get_many(["inviteUserNotificationMessage", "accountClosedDeveloper"]) == {
        "inviteUserNotificationMessage": second
    }
    with pytest.raises(PreconditionFailed):
        commit(store, lambda tx: templates.stage_delete(tx, first))
    commit(store, lambda tx: templates.stage_delete(tx, second))
    assert templates.get("inviteUserNotificationMessage") is None


def test_a_limit_of_zero_refuses_even_the_first_subscription(backend):
    store = backend.store
    subs = store.subscriptions
    with pytest.raises(LimitReached):
        commit(store, lambda tx: subs.stage_create(tx, a_subscription("s1"), 0))
    assert subs.get("s1") is None and subs.key("s1-primary") is None
    # A place given back under a limit of 1 can be taken again; a full one cannot.
    commit(store, lambda tx: subs.stage_create(tx, a_subscription("s1"), 1))
    with pytest.raises(LimitReached):
        commit(store, lambda tx: subs.stage_create(tx, a_subscription("s2"), 1))
