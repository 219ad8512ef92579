"""Subscription limits, key checks and membership clean-up on fakes.

tests/api keeps what the edge adds: the 409 of a refused subscription, the JSON of
``/gateway/check``, the authorizer's policy documents, the stored rows of DynamoDB.
"""

import pytest

from chalicelib.domain.custom_groups import GroupChanges
from chalicelib.domain.etag import ANY
from chalicelib.domain.messages import ACCOUNT_DELETED
from chalicelib.domain.subscriptions import read_product, read_subscription
from chalicelib.domain.users import UserChanges, UserState
from chalicelib.errors import LimitReached, StateConflict
from tests.services.conftest import create_user


def put_product(svc, product_id, **props):
    body = {"properties": {"displayName": product_id.title(), **props}}
    product, created = svc.products.put(product_id, read_product(body, create=True), None)
    assert created
    return product


def subscribe(svc, sid, owner="/users/dev", scope="/products/starter", **props):
    body = {"properties": {"ownerId": owner, "scope": scope, "displayName": sid, **props}}
    given = read_subscription(body, svc.settings.service_path, create=True)
    return svc.subscriptions.put(sid, given, None)[0]


def change(svc, sid, **props):
    given = read_subscription({"properties": props}, svc.settings.service_path, create=False)
    return svc.subscriptions.update(sid, given, ANY)


def block(svc, user_id, state="blocked"):
    svc.accounts.update(user_id, UserChanges(state=UserState(state)), ANY)


@pytest.fixture
def shop(svc):
    create_user(svc, "dev", "dev@example.com")
    put_product(svc, "starter", state="published", subscriptionsLimit=2)
    return svc


def check(svc, key, product="starter", api=None):
    decision = svc.key_check.check(key, product, api)
    return decision.allowed, decision.reason


def test_the_subscriptions_limit_holds_per_user_and_product(shop):
    subscribe(shop, "s1")
    subscribe(shop, "s2")
    with pytest.raises(StateConflict):
        subscribe(shop, "s3")
    assert shop.store.subscriptions.get("s3") is None
    # A cancelled subscription gives its place back; another user has places of their own.
    change(shop, "s1", state="cancelled")
    subscribe(shop, "s3")
    create_user(shop, "other")
    subscribe(shop, "o1", owner="/users/other")
    with pytest.raises(StateConflict):  # reactivating would take a third place
        change(shop, "s1", state="active")


def test_approval_required_products_start_submitted_and_their_keys_wait(svc):
    create_user(svc, "dev")
    put_product(svc, "gold", approvalRequired=True)
    sub = subscribe(svc, "sub1", scope="/products/gold")
    assert sub.state.value == "submitted"
    assert check(svc, sub.primary_key, "gold") == (False, "subscription not active")
    change(svc, "sub1", state="active")
    assert check(svc, sub.primary_key, "gold") == (True, "active subscription")


def test_a_key_works_only_while_its_subscription_and_owner_are_active(shop):
    sub = subscribe(shop, "sub1")
    assert check(shop, sub.primary_key) == (True, "active subscription")
    block(shop, "dev")
    assert check(shop, sub.primary_key) == (False, "owner blocked")
    block(shop, "dev", "active")
    assert check(shop, sub.secondary_key) == (True, "active subscription")
    change(shop, "sub1", state="suspended")
    assert check(shop, sub.secondary_key) == (False, "subscription not active")


def test_keys_are_checked_against_their_scope_and_owner(shop):
    product = subscribe(shop, "sub1")
    api = subscribe(shop, "api", scope="/apis/echo")
    assert check(shop, product.primary_key, "other") == (False, "out of scope")
    assert check(shop, api.primary_key, None, "echo") == (True, "active subscription")
    assert check(shop, api.primary_key, None, "other") == (False, "out of scope")
    assert check(shop, "no-such-key", None, "echo") == (False, "unknown key")
    # A subscription that outlives its owner (only a direct store change does that) denies.
    tx = shop.store.transaction()
    shop.store.users.stage_delete(tx, shop.store.users.get("dev"))
    tx.commit()
    assert check(shop, product.primary_key) == (False, "owner deleted")


def test_a_deleted_users_memberships_apply_to_nothing_and_the_relay_removes_them_all(svc):
    create_user(svc, "ada")
    count = 19  # more than one transaction would have held
    for n in range(count):
        svc.groups.create(f"g{n:02d}", GroupChanges(f"G{n}", None, None, None, frozenset()))
        svc.groups.add_member(f"g{n:02d}", "ada")
    assert len(svc.accounts.groups_of("ada")) == count + 1
    svc.accounts.delete("ada", ANY)
    # Off the request path: the rows stay until the relay runs the account's clean-up task,
    # and meanwhile no group lists the account, nor a new account with its id.
    assert len(svc.group_store.members_rows) == count
    assert all(not svc.groups.is_member(f"g{n:02d}", "ada") for n in range(count))
    svc.clock.advance(seconds=1)
    create_user(svc, "ada")
    assert [g.id for g in svc.accounts.groups_of("ada")] == ["developers"]
    (task,) = [m for m in svc.store.outbox.rows.values() if m.template == ACCOUNT_DELETED]
    assert svc.relay.send_now(task.id).sent == 1
    assert svc.group_store.members_rows == {}
    assert len(svc.group_store.rows) == count


def test_a_limit_of_zero_allows_no_subscription(svc):
    create_user(svc, "dev", "dev@example.com")
    put_product(svc, "closed", state="published", subscriptionsLimit=0)
    with pytest.raises(LimitReached):
        subscribe(svc, "s1", scope="/products/closed")
    assert svc.store.subscriptions.get("s1") is None
