"""Products, subscriptions and key checks: a blocked developer cannot call any API."""

import pytest

from tests.support import error_of

STARTER = {"properties": {"displayName": "Starter", "state": "published", "subscriptionsLimit": 2}}


@pytest.fixture
def shop(api):
    api.create_user("dev", "dev@example.com")
    assert api.put("/products/starter", STARTER).status == 201
    return api


def subscribe(api, sid="sub1", owner="/users/dev", scope="/products/starter", **props):
    body = {"properties": {"ownerId": owner, "scope": scope, "displayName": sid, **props}}
    reply = api.put(f"/subscriptions/{sid}", body)
    assert reply.status == 201, reply.body
    return reply


def secrets_of(api, sid="sub1"):
    reply = api.call("POST", f"/subscriptions/{sid}/listSecrets")
    assert reply.status == 200
    return reply.json


def check(api, key, **target):
    reply = api.call("POST", "/gateway/check", {"key": key, **target})
    assert reply.status == 200, reply.body
    return reply.json


# Products


def test_product_crud_and_etags(api):
    created = api.put(
        "/products/gold",
        {
            "properties": {
                "displayName": "Gold",
                "description": "<b>best</b>",
                "terms": "be nice",
                "subscriptionRequired": True,
                "approvalRequired": True,
                "subscriptionsLimit": 1,
                "state": "published",
            }
        },
    )
    assert created.status == 201
    p = created.json["properties"]
    assert (p["approvalRequired"], p["subscriptionsLimit"], p["state"]) == (True, 1, "published")
    assert created.json["id"].endswith("/products/gold")
    assert api.get("/products/gold").json == created.json
    assert api.head("/products/gold").etag == created.etag
    stale = api.patch(
        "/products/gold",
        {"properties": {"state": "notPublished"}},
        headers={"If-Match": '"AAAAAAAAAAE="'},
    )
    assert stale.status == 412
    patched = api.patch(
        "/products/gold",
        {"properties": {"state": "notPublished"}},
        headers={"If-Match": created.etag},
    )
    assert patched.json["properties"]["state"] == "notPublished"
    assert patched.json["properties"]["description"] == "<b>best</b>"
    assert api.put("/products/gold", {"properties": {"displayName": "Gold 2"}}).status == 200
    assert api.get("/products/nope").status == 404


def test_product_list_filters(api):
    for pid, state in [("a", "published"), ("b", "notPublished"), ("c", "published")]:
        api.put(f"/products/{pid}", {"properties": {"displayName": pid.upper(), "state": state}})
    names = [p["name"] for p in api.get("/products?$filter=state eq 'published'").json["value"]]
    assert names == ["a", "c"]
    assert [p["name"] for p in api.get("/products?$top=1&$skip=1").json["value"]] == ["b"]
    assert api.get("/products?$filter=colour eq 'x'").status == 400


def test_product_validation(api):
    reply = api.put(
        "/products/x", {"properties": {"subscriptionsLimit": -1, "approvalRequired": "yes"}}
    )
    targets = {d["target"] for d in error_of(reply)["details"]}
    assert targets == {"displayName", "subscriptionsLimit", "approvalRequired"}


def test_deleting_a_product_with_subscriptions_needs_delete_subscriptions(shop):
    subscribe(shop)
    refused = shop.delete("/products/starter", headers={"If-Match": "*"})
    assert refused.status == 409
    assert shop.get("/subscriptions/sub1").status == 200
    assert (
        shop.delete("/products/starter?deleteSubscriptions=true", headers={"If-Match": "*"}).status
        == 204
    )
    assert shop.get("/products/starter").status == 404
    assert shop.get("/subscriptions/sub1").status == 404


def test_product_groups(shop):
    assert shop.head("/products/starter/groups/developers").status == 404
    added = shop.put("/products/starter/groups/developers")
    assert added.status == 201
    assert added.json["name"] == "developers"
    assert shop.put("/products/starter/groups/developers").status == 200
    assert shop.head("/products/starter/groups/developers").status == 204
    listed = shop.get("/products/starter/groups").json["value"]
    assert [g["name"] for g in listed] == ["developers"]
    assert shop.put("/products/starter/groups/nosuchgroup").status == 404
    assert shop.delete("/products/starter/groups/developers").status == 204
    assert shop.head("/products/starter/groups/developers").status == 404
    assert shop.delete("/products/starter/groups/developers").status == 404


# Subscriptions


def test_subscription_contract_never_shows_keys(shop):
    reply = subscribe(shop)
    p = reply.json["properties"]
    assert p["ownerId"] == f"{shop.base}/users/dev"
    assert p["scope"] == f"{shop.base}/products/starter"
    assert p["state"] == "active"
    assert p["createdDate"].endswith("Z")
    assert (
        "primaryKey" not in reply.body.decode()
        and "primaryKey" not in shop.get("/subscriptions/sub1").body.decode()
    )
    keys = secrets_of(shop)
    assert len(keys["primaryKey"]) == 64 and keys["primaryKey"] != keys["secondaryKey"]


def test_owner_and_scope_accept_full_arm_ids(shop):
    reply = subscribe(shop, owner=f"{shop.base}/users/dev", scope=f"{shop.base}/products/starter")
    assert reply.json["properties"]["scope"] == f"{shop.base}/products/starter"
    subscribe(shop, "all", scope="/apis")
    subscribe(shop, "one", scope=f"{shop.base}/apis/echo")
    assert shop.get("/subscriptions/one").json["properties"]["scope"] == f"{shop.base}/apis/echo"


@pytest.mark.parametrize(
    ("props", "target"),
    [
        ({"scope": "/bananas/1"}, "scope"),
        ({"scope": "/products/missing"}, "scope"),
        ({"ownerId": "/users/ghost"}, "ownerId"),
        ({"ownerId": "/groups/x"}, "ownerId"),
        ({"state": "sleeping"}, "state"),
    ],
)
def test_subscription_validation(shop, props, target):
    body = {
        "properties": {
            "ownerId": "/users/dev",
            "scope": "/products/starter",
            "displayName": "s",
            **props,
        }
    }
    reply = shop.put("/subscriptions/bad", body)
    assert reply.status == 400
    assert target in {d["target"] for d in error_of(reply)["details"]}
    assert shop.get("/subscriptions/bad").status == 404


def test_list_and_user_subscriptions(shop):
    shop.create_user("other")
    subscribe(shop, "a1")
    subscribe(shop, "b1", owner="/users/other")
    subscribe(shop, "c1", scope="/apis")
    names = [s["name"] for s in shop.get("/subscriptions").json["value"]]
    assert names == ["a1", "b1", "c1"]
    mine = [s["name"] for s in shop.get("/users/dev/subscriptions").json["value"]]
    assert mine == ["a1", "c1"]
    filtered = shop.get("/users/dev/subscriptions?$filter=productId eq 'starter'").json["value"]
    assert [s["name"] for s in filtered] == ["a1"]
    assert (
        shop.get("/subscriptions?$filter=ownerId eq '/users/other'").json["value"][0]["name"]
        == "b1"
    )
    assert shop.get("/users/dev/subscriptions/a1").status == 200
    assert shop.get("/users/dev/subscriptions/b1").status == 404
    assert shop.get("/users/ghost/subscriptions").status == 404


def test_subscription_patch_delete_and_etags(shop):
    created = subscribe(shop)
    assert shop.patch("/subscriptions/sub1", {"properties": {"displayName": "x"}}).status == 400
    stale = shop.patch(
        "/subscriptions/sub1",
        {"properties": {"displayName": "x"}},
        headers={"If-Match": '"AAAAAAAAAAE="'},
    )
    assert stale.status == 412
    changed = shop.patch(
        "/subscriptions/sub1",
        {"properties": {"displayName": "renamed", "stateComment": "why"}},
        headers={"If-Match": created.etag},
    )
    assert changed.json["properties"]["displayName"] == "renamed"
    assert changed.json["properties"]["stateComment"] == "why"
    assert shop.delete("/subscriptions/sub1", headers={"If-Match": created.etag}).status == 412
    assert shop.delete("/subscriptions/sub1", headers={"If-Match": changed.etag}).status == 204
    assert shop.get("/subscriptions/sub1").status == 404


def test_given_keys_are_kept_and_must_be_unique(shop):
    subscribe(shop, primaryKey="my-primary-key", secondaryKey="my-secondary-key")
    assert secrets_of(shop) == {"primaryKey": "my-primary-key", "secondaryKey": "my-secondary-key"}
    clash = shop.put(
        "/subscriptions/sub2",
        {"properties": {"scope": "/apis", "displayName": "x", "primaryKey": "my-primary-key"}},
    )
    assert clash.status == 409
    assert shop.get("/subscriptions/sub2").status == 404


# Key checks


def test_block_denies_the_key_and_activate_allows_it_again(shop):
    subscribe(shop)
    key = secrets_of(shop)["primaryKey"]
    assert check(shop, key, productId="starter") == {
        "allowed": True,
        "reason": "active subscription",
        "userId": "dev",
        "subscriptionId": "sub1",
    }
    shop.patch("/users/dev", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"})
    assert check(shop, key, productId="starter")["reason"] == "owner blocked"
    shop.patch("/users/dev", {"properties": {"state": "active"}}, headers={"If-Match": "*"})
    assert check(shop, key, productId="starter")["allowed"] is True


def test_suspend_denies(shop):
    subscribe(shop)
    key = secrets_of(shop)["secondaryKey"]
    shop.patch(
        "/subscriptions/sub1", {"properties": {"state": "suspended"}}, headers={"If-Match": "*"}
    )
    assert check(shop, key, productId="starter") == {
        "allowed": False,
        "reason": "subscription not active",
        "userId": "dev",
        "subscriptionId": "sub1",
    }


def test_regenerate_primary_kills_the_old_primary_only(shop):
    subscribe(shop)
    old = secrets_of(shop)
    assert shop.call("POST", "/subscriptions/sub1/regeneratePrimaryKey").status == 204
    new = secrets_of(shop)
    assert new["primaryKey"] != old["primaryKey"]
    assert new["secondaryKey"] == old["secondaryKey"]
    assert check(shop, old["primaryKey"], productId="starter")["reason"] == "unknown key"
    assert check(shop, new["primaryKey"], productId="starter")["allowed"] is True
    assert check(shop, old["secondaryKey"], productId="starter")["allowed"] is True
    assert shop.call("POST", "/subscriptions/sub1/regenerateSecondaryKey").status == 204
    assert check(shop, old["secondaryKey"], productId="starter")["reason"] == "unknown key"


def test_scope_and_deleted_owner(shop):
    subscribe(shop)
    subscribe(shop, "api", scope="/apis/echo")
    product_key = secrets_of(shop)["primaryKey"]
    api_key = secrets_of(shop, "api")["primaryKey"]
    assert check(shop, product_key, productId="other")["reason"] == "out of scope"
    assert check(shop, api_key, apiId="echo")["allowed"] is True
    assert check(shop, api_key, apiId="other")["reason"] == "out of scope"
    assert check(shop, "no-such-key", apiId="echo") == {
        "allowed": False,
        "reason": "unknown key",
        "userId": None,
        "subscriptionId": None,
    }
    assert shop.call("POST", "/gateway/check", {"productId": "x"}).status == 400


def test_deleting_a_user_with_subscriptions(shop):
    subscribe(shop)
    key = secrets_of(shop)["primaryKey"]
    refused = shop.delete("/users/dev", headers={"If-Match": "*"})
    assert refused.status == 409
    assert error_of(refused)["code"] == "Conflict"
    assert shop.get("/users/dev").status == 200
    assert check(shop, key, productId="starter")["allowed"] is True
    assert (
        shop.delete("/users/dev?deleteSubscriptions=true", headers={"If-Match": "*"}).status == 204
    )
    assert shop.get("/subscriptions/sub1").status == 404
    assert check(shop, key, productId="starter")["reason"] == "unknown key"


def test_a_deleted_owner_denies_even_if_the_subscription_stays(shop):
    # An ownerless path: the subscription outlives its owner only through a direct store change.
    subscribe(shop)
    key = secrets_of(shop)["primaryKey"]
    from chalicelib.bootstrap import services

    user = services().store.users.get("dev")
    tx = services().store.transaction()
    services().store.users.stage_delete(tx, user)
    tx.commit()
    assert check(shop, key, productId="starter")["reason"] == "owner deleted"


def authorizer_event(key=None, query_key=None, stage=None):
    return {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:echoapi/prod/GET/things",
        "headers": {"Ocp-Apim-Subscription-Key": key} if key else {},
        "queryStringParameters": {"subscription-key": query_key} if query_key else None,
        "stageVariables": stage or {},
    }


def test_the_lambda_authorizer_allows_and_denies(shop, client):
    subscribe(shop, "api", scope="/apis/echoapi")
    key = secrets_of(shop, "api")["primaryKey"]
    allowed = client.lambda_.invoke("subscription_key_authorizer", authorizer_event(key)).payload
    statement = allowed["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"].endswith("echoapi/prod/GET/things")
    assert allowed["principalId"] == "dev"
    assert allowed["context"]["subscriptionId"] == "api"
    by_query = client.lambda_.invoke("subscription_key_authorizer", authorizer_event(query_key=key))
    assert by_query.payload["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    shop.patch("/users/dev", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"})
    denied = client.lambda_.invoke("subscription_key_authorizer", authorizer_event(key)).payload
    assert denied["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert denied["context"]["reason"] == "owner blocked"
    none = client.lambda_.invoke("subscription_key_authorizer", authorizer_event()).payload
    assert none["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_the_authorizer_checks_the_product_named_by_the_stage(shop, client):
    subscribe(shop)
    key = secrets_of(shop)["primaryKey"]
    event = authorizer_event(key, stage={"apimProductId": "starter"})
    assert (
        client.lambda_.invoke("subscription_key_authorizer", event).payload["policyDocument"][
            "Statement"
        ][0]["Effect"]
        == "Allow"
    )
    other = authorizer_event(key, stage={"apimProductId": "gold"})
    assert (
        client.lambda_.invoke("subscription_key_authorizer", other).payload["context"]["reason"]
        == "out of scope"
    )
