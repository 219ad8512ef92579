"""Products, subscriptions, a user's subscriptions, and the key check for gateways."""

from __future__ import annotations

from typing import Any

from chalice import Response

from chalicelib.api.docs import JSON_TYPE, apim, json_result, ours, ref
from chalicelib.api.envelope import collection, empty, group_entity, iso, json_response
from chalicelib.api.lists import list_query
from chalicelib.api.routing import ARM_PREFIX, Call, Router
from chalicelib.bootstrap import services
from chalicelib.config import get_settings
from chalicelib.domain.paging import Page
from chalicelib.domain.subscriptions import (
    Product,
    Subscription,
    read_product,
    read_subscription,
)
from chalicelib.errors import FieldProblem, ResourceNotFound, ValidationFailed
from chalicelib.services.subscriptions import PRODUCT_FILTER_FIELDS, SUBSCRIPTION_FILTER_FIELDS

router = Router(ARM_PREFIX)
PRODUCT = "/products/{productId}"
SUBSCRIPTION = "/subscriptions/{sid}"
PRODUCT_TYPE = "Microsoft.ApiManagement/service/products"
SUBSCRIPTION_TYPE = "Microsoft.ApiManagement/service/subscriptions"
PRODUCT_GROUP_TYPE = "Microsoft.ApiManagement/service/products/groups"


def product_entity(product: Product) -> dict[str, Any]:
    return {
        "id": f"{get_settings().service_path}/products/{product.id}",
        "type": PRODUCT_TYPE,
        "name": product.id,
        "properties": {
            "displayName": product.display_name,
            "description": product.description,
            "terms": product.terms,
            "subscriptionRequired": product.subscription_required,
            "approvalRequired": product.approval_required,
            "subscriptionsLimit": product.subscriptions_limit,
            "state": product.state.value,
        },
    }


def subscription_entity(sub: Subscription) -> dict[str, Any]:
    """APIM's SubscriptionContract; ids in full ARM form; never the keys."""
    path = get_settings().service_path
    dates = {
        "createdDate": sub.created_date,
        "startDate": sub.start_date,
        "expirationDate": sub.expiration_date,
        "endDate": sub.end_date,
        "notificationDate": sub.notification_date,
    }
    return {
        "id": f"{path}/subscriptions/{sub.id}",
        "type": SUBSCRIPTION_TYPE,
        "name": sub.id,
        "properties": {
            "ownerId": f"{path}/users/{sub.owner_id}" if sub.owner_id else None,
            "scope": path if sub.scope == "/" else f"{path}{sub.scope}",
            "displayName": sub.display_name,
            "state": sub.state.value,
            "stateComment": sub.state_comment,
            "allowTracing": sub.allow_tracing,
            **{k: iso(v) if v else None for k, v in dates.items()},
        },
    }


def _product_id(call: Call) -> str:
    return call.id_param("productId")


def _sid(call: Call) -> str:
    return call.id_param("sid")


# Products


@router.route(
    "/products",
    GET=apim("Product_ListByService"),
)
def list_products(call: Call) -> Response:
    page = services().products.list(list_query(call, PRODUCT_FILTER_FIELDS))
    return json_response(collection([product_entity(p) for p in page.items], page, call.link))


@router.route(
    PRODUCT,
    GET=apim("Product_Get"),
    HEAD=apim("Product_GetEntityTag"),
)
def get_product(call: Call) -> Response:
    product = services().products.get(_product_id(call))
    return json_response(product_entity(product), etag_version=product.version)


@router.route(
    PRODUCT,
    PUT=apim("Product_CreateOrUpdate"),
)
def put_product(call: Call) -> Response:
    product_id = _product_id(call)
    given = read_product(call.json(), create=True)
    product, created = services().products.put(product_id, given, call.if_match())
    return json_response(product_entity(product), 201 if created else 200, product.version)


@router.route(
    PRODUCT,
    PATCH=apim("Product_Update"),
)
def patch_product(call: Call) -> Response:
    given = read_product(call.json(), create=False)
    product = services().products.update(_product_id(call), given, call.require_if_match())
    return json_response(product_entity(product), etag_version=product.version)


@router.route(
    PRODUCT,
    DELETE=apim("Product_Delete"),
)
def delete_product(call: Call) -> Response:
    remove = call.flag("deleteSubscriptions")
    services().products.delete(_product_id(call), call.require_if_match(), remove)
    return empty(204)


@router.route(
    PRODUCT + "/groups",
    GET=apim("ProductGroup_ListByProduct"),
)
def list_product_groups(call: Call) -> Response:
    ids = services().products.groups(_product_id(call))
    values = []
    for group_id in ids:
        try:
            values.append(group_entity(services().groups.get(group_id).group, PRODUCT_GROUP_TYPE))
        except ResourceNotFound:
            continue  # the group was deleted; its link goes with the next clean-up
    return json_response(collection(values, Page(values, None, len(values)), call.link))


@router.route(
    PRODUCT + "/groups/{groupId}",
    HEAD=apim("ProductGroup_CheckEntityExists"),
)
def product_has_group(call: Call) -> Response:
    linked = services().products.has_group(_product_id(call), call.params["groupId"])
    return empty(204 if linked else 404)


@router.route(
    PRODUCT + "/groups/{groupId}",
    PUT=apim("ProductGroup_CreateOrUpdate"),
)
def add_product_group(call: Call) -> Response:
    group_id = call.params["groupId"]
    created = services().products.add_group(_product_id(call), group_id)
    group = services().groups.get(group_id).group
    return json_response(group_entity(group, PRODUCT_GROUP_TYPE), 201 if created else 200)


@router.route(
    PRODUCT + "/groups/{groupId}",
    DELETE=apim("ProductGroup_Delete"),
)
def remove_product_group(call: Call) -> Response:
    services().products.remove_group(_product_id(call), call.params["groupId"])
    return empty(204)


# Subscriptions


@router.route(
    "/subscriptions",
    GET=apim("Subscription_List"),
)
def list_subscriptions(call: Call) -> Response:
    page = services().subscriptions.list(list_query(call, SUBSCRIPTION_FILTER_FIELDS))
    return json_response(collection([subscription_entity(s) for s in page.items], page, call.link))


@router.route(
    SUBSCRIPTION,
    GET=apim("Subscription_Get"),
    HEAD=apim("Subscription_GetEntityTag"),
)
def get_subscription(call: Call) -> Response:
    sub = services().subscriptions.get(_sid(call))
    return json_response(subscription_entity(sub), etag_version=sub.version)


@router.route(
    SUBSCRIPTION,
    PUT=apim("Subscription_CreateOrUpdate"),
)
def put_subscription(call: Call) -> Response:
    sid = _sid(call)
    notify = call.flag("notify")
    given = read_subscription(call.json(), get_settings().service_path, create=True)
    sub, created = services().subscriptions.put(sid, given, call.if_match(), notify)
    return json_response(subscription_entity(sub), 201 if created else 200, sub.version)


@router.route(
    SUBSCRIPTION,
    PATCH=apim("Subscription_Update"),
)
def patch_subscription(call: Call) -> Response:
    notify = call.flag("notify")
    given = read_subscription(call.json(), get_settings().service_path, create=False)
    sub = services().subscriptions.update(_sid(call), given, call.require_if_match(), notify)
    return json_response(subscription_entity(sub), etag_version=sub.version)


@router.route(
    SUBSCRIPTION,
    DELETE=apim("Subscription_Delete"),
)
def delete_subscription(call: Call) -> Response:
    services().subscriptions.delete(_sid(call), call.require_if_match())
    return empty(204)


@router.route(
    SUBSCRIPTION + "/listSecrets",
    POST=apim("Subscription_ListSecrets"),
)
def list_secrets(call: Call) -> Response:
    sub = services().subscriptions.get(_sid(call))
    body = {"primaryKey": sub.primary_key, "secondaryKey": sub.secondary_key}
    return json_response(body, etag_version=sub.version)


@router.route(
    SUBSCRIPTION + "/regeneratePrimaryKey",
    POST=apim("Subscription_RegeneratePrimaryKey"),
)
def regenerate_primary(call: Call) -> Response:
    services().subscriptions.regenerate(_sid(call), "primary")
    return empty(204)


@router.route(
    SUBSCRIPTION + "/regenerateSecondaryKey",
    POST=apim("Subscription_RegenerateSecondaryKey"),
)
def regenerate_secondary(call: Call) -> Response:
    services().subscriptions.regenerate(_sid(call), "secondary")
    return empty(204)


@router.route(
    "/users/{userId}/subscriptions",
    GET=apim("UserSubscription_List"),
)
def list_user_subscriptions(call: Call) -> Response:
    user_id = call.id_param("userId")
    page = services().subscriptions.of_user(user_id, list_query(call, SUBSCRIPTION_FILTER_FIELDS))
    return json_response(collection([subscription_entity(s) for s in page.items], page, call.link))


@router.route(
    "/users/{userId}/subscriptions/{sid}",
    GET=apim("UserSubscription_Get"),
)
def get_user_subscription(call: Call) -> Response:
    user_id = call.id_param("userId")
    services().accounts.get(user_id)
    sub = services().subscriptions.get(_sid(call), owner_id=user_id)
    return json_response(subscription_entity(sub), etag_version=sub.version)


# The key check, for gateways other than API Gateway (extension)


@router.route(
    "/gateway/check",
    POST=ours(
        "Gateway_CheckKey",
        "For gateways other than API Gateway: may this subscription key call this product or "
        "API now? (The key's subscription and its owner must both be active.)",
        management=True,
        body={"required": True, "content": {JSON_TYPE: {"schema": ref("KeyCheckRequest")}}},
        responses={"200": json_result("The decision.", ref("KeyCheckResult"))},
    ),
)
def check_key(call: Call) -> Response:
    """``{key, productId | apiId}`` -> ``{allowed, reason, userId, subscriptionId}``."""
    body = call.json()
    if not isinstance(body, dict):
        raise ValidationFailed([FieldProblem("body", "The body must be a JSON object.")])
    problems = [
        FieldProblem(name, f"'{name}' must be a string.")
        for name in ("key", "productId", "apiId")
        if body.get(name) is not None and not isinstance(body.get(name), str)
    ]
    if not isinstance(body.get("key"), str):
        problems.append(FieldProblem("key", "'key' is required."))
    if problems:
        raise ValidationFailed(problems)
    decision = services().key_check.check(body["key"], body.get("productId"), body.get("apiId"))
    return json_response(
        {
            "allowed": decision.allowed,
            "reason": decision.reason,
            "userId": decision.user_id,
            "subscriptionId": decision.subscription_id,
        }
    )
