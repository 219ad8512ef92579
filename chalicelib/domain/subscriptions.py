"""Products, subscriptions and their keys: states, scopes, and validation of what callers send."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.text import name_characters_problem
from chalicelib.domain.users import BodyReader, id_problem, properties_of
from chalicelib.errors import FieldProblem, ValidationFailed


class ProductState(StrEnum):
    NOT_PUBLISHED = "notPublished"
    PUBLISHED = "published"


class SubscriptionState(StrEnum):
    """APIM's states; only ``active`` lets a key through."""

    SUBMITTED = "submitted"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


# The states that hold one of a user's ``subscriptionsLimit`` places.
LIVE_STATES = frozenset(
    {SubscriptionState.SUBMITTED, SubscriptionState.ACTIVE, SubscriptionState.SUSPENDED}
)

# The states whose keys a developer may see and regenerate: a request awaiting approval, a
# rejected one and an ended one have keys that never worked or never will again.
KEY_STATES = frozenset({SubscriptionState.ACTIVE, SubscriptionState.SUSPENDED})
# What a developer may cancel (a request awaiting approval is withdrawn the same way).
CANCELLABLE_STATES = LIVE_STATES
KEY_SLOTS = ("primary", "secondary")
PORTAL_NAME_MAX = 100

# The developer's emails of APIM's subscription flow (templates/email/).
REQUEST_MAIL = "requestDeveloperNotificationMessage"
PURCHASE_MAIL = "purchaseDeveloperNotificationMessage"
REJECT_MAIL = "rejectDeveloperNotificationMessage"
# The publishers' notifications of the same events (names of APIM's NotificationName).
REQUEST_PUBLISHER = "RequestPublisherNotificationMessage"
PURCHASE_PUBLISHER = "PurchasePublisherNotificationMessage"


def developer_mail(before: SubscriptionState | None, after: SubscriptionState) -> str | None:
    """The email a state change sends its owner (``before`` None: the subscription is new).

    A purchase is announced when a subscription first becomes active (created active, or a
    request approved), never when a suspended one is activated again; a rejection only ends a
    request.
    """
    if before is after:
        return None
    if after is SubscriptionState.ACTIVE and before in {None, SubscriptionState.SUBMITTED}:
        return PURCHASE_MAIL
    if after is SubscriptionState.SUBMITTED and before is None:
        return REQUEST_MAIL
    if after is SubscriptionState.REJECTED and before is SubscriptionState.SUBMITTED:
        return REJECT_MAIL
    return None


def publisher_notice(before: SubscriptionState | None, after: SubscriptionState) -> str | None:
    """The publishers' notification of the same change: a new request, or a purchase."""
    mail = developer_mail(before, after)
    return {REQUEST_MAIL: REQUEST_PUBLISHER, PURCHASE_MAIL: PURCHASE_PUBLISHER}.get(mail or "")


def read_portal_name(value: str | None, target: str = "name") -> str:
    """The name a developer gives a subscription: one line of 1 to 100 characters."""
    name = (value or "").strip()
    if not name:
        raise ValidationFailed([FieldProblem(target, "Enter a name for the subscription.")])
    if len(name) > PORTAL_NAME_MAX:
        raise ValidationFailed(
            [FieldProblem(target, f"Use at most {PORTAL_NAME_MAX} characters for the name.")]
        )
    if name_characters_problem(name):
        raise ValidationFailed(
            [FieldProblem(target, "The name must be one line without control characters.")]
        )
    return name


@dataclass(frozen=True)
class Product:
    """What subscriptions are for."""

    id: str
    display_name: str
    description: str | None = None
    terms: str | None = None
    subscription_required: bool = True
    approval_required: bool = False
    subscriptions_limit: int | None = None
    state: ProductState = ProductState.NOT_PUBLISHED
    version: int = 0


@dataclass(frozen=True)
class Subscription:
    """A subscription; ``scope`` is kept short (``/products/p``, ``/apis``, ``/apis/a``, ``/``)."""

    id: str
    scope: str
    display_name: str
    state: SubscriptionState
    owner_id: str | None
    created_date: datetime
    primary_key: str = field(repr=False)
    secondary_key: str = field(repr=False)
    version: int
    state_comment: str | None = None
    allow_tracing: bool = True
    start_date: datetime | None = None
    expiration_date: datetime | None = None
    end_date: datetime | None = None
    notification_date: datetime | None = None

    @property
    def product_id(self) -> str | None:
        return product_of(self.scope)


def new_key() -> str:
    """32 random bytes, hex."""
    return secrets.token_hex(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def product_of(scope: str) -> str | None:
    return scope.removeprefix("/products/") if scope.startswith("/products/") else None


def short_id(value: str, service_path: str) -> str:
    """``/users/u1`` or the full ARM id of this instance's entity -> ``/users/u1``."""
    if value.lower().startswith(service_path.lower()):
        return value[len(service_path) :] or "/"
    return value


def parse_scope(value: Any, service_path: str) -> tuple[str | None, FieldProblem | None]:
    """A scope we can check: all APIs, one API, or one product."""
    if not isinstance(value, str) or not value:
        return None, FieldProblem("scope", "'scope' is required: /products/{id} or /apis[/{id}].")
    scope = short_id(value.rstrip("/") or "/", service_path)
    parts = scope.split("/")
    if scope in {"/", "/apis"}:
        return scope, None
    if len(parts) == 3 and parts[1].lower() in {"products", "apis"} and parts[2]:
        if id_problem(parts[2], "scope") is None:
            return f"/{parts[1].lower()}/{parts[2]}", None
    return None, FieldProblem(
        "scope", "'scope' must be /products/{id}, /apis, /apis/{id} or the full id of one of them."
    )


def parse_owner(value: Any, service_path: str) -> tuple[str | None, FieldProblem | None]:
    """``/users/{id}`` or the full ARM id -> the user id."""
    if value is None:
        return None, None
    if isinstance(value, str):
        short = short_id(value, service_path)
        parts = short.split("/")
        if len(parts) == 3 and parts[1] == "users" and id_problem(parts[2], "ownerId") is None:
            return parts[2], None
    return None, FieldProblem("ownerId", "'ownerId' must be /users/{id} or the user's full id.")


@dataclass(frozen=True)
class SubscriptionInput:
    """A validated PUT/PATCH body: None means "not sent"."""

    scope: str | None = None
    owner_id: str | None = None
    owner_given: bool = False
    display_name: str | None = None
    state: SubscriptionState | None = None
    state_comment: str | None = None
    allow_tracing: bool | None = None
    primary_key: str | None = field(default=None, repr=False)
    secondary_key: str | None = field(default=None, repr=False)


def read_subscription(body: Any, service_path: str, *, create: bool) -> SubscriptionInput:
    """Validate a subscription body; every problem at once."""
    props = properties_of(body)
    r = BodyReader(props)
    scope, owner = None, None
    if create or "scope" in props:
        scope, problem = parse_scope(props.get("scope"), service_path)
        if problem:
            r.problems.append(problem)
    if "ownerId" in props:
        owner, problem = parse_owner(props.get("ownerId"), service_path)
        if problem:
            r.problems.append(problem)
    display = r.text("displayName", required=create, max_len=100)
    state = r.enum("state", SubscriptionState)
    comment = r.text("stateComment", required=False, max_len=1000, min_len=0)
    primary = r.text("primaryKey", required=False, max_len=256)
    secondary = r.text("secondaryKey", required=False, max_len=256)
    tracing = props.get("allowTracing")
    if tracing is not None and not isinstance(tracing, bool):
        r.problems.append(FieldProblem("allowTracing", "'allowTracing' must be true or false."))
    r.done()
    return SubscriptionInput(
        scope=scope,
        owner_id=owner,
        owner_given="ownerId" in props,
        display_name=display,
        state=state,
        state_comment=comment,
        allow_tracing=tracing,
        primary_key=primary,
        secondary_key=secondary,
    )


@dataclass(frozen=True)
class ProductInput:
    """A validated product body: None means "not sent"."""

    display_name: str | None = None
    description: str | None = None
    terms: str | None = None
    subscription_required: bool | None = None
    approval_required: bool | None = None
    subscriptions_limit: int | None = None
    limit_given: bool = False
    state: ProductState | None = None
    given: frozenset[str] = frozenset()


def read_product(body: Any, *, create: bool) -> ProductInput:
    props = properties_of(body)
    r = BodyReader(props)
    display = r.text("displayName", required=create, max_len=300)
    description = r.text("description", required=False, max_len=1000, min_len=0)
    terms = r.text("terms", required=False, max_len=10000, min_len=0)
    flags: dict[str, bool | None] = {}
    for name in ("subscriptionRequired", "approvalRequired"):
        value = props.get(name)
        if value is not None and not isinstance(value, bool):
            r.problems.append(FieldProblem(name, f"'{name}' must be true or false."))
            value = None
        flags[name] = value
    limit = props.get("subscriptionsLimit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        r.problems.append(
            FieldProblem("subscriptionsLimit", "'subscriptionsLimit' must be a whole number ≥ 0.")
        )
        limit = None
    state = r.enum("state", ProductState)
    r.done()
    return ProductInput(
        display_name=display,
        description=description,
        terms=terms,
        subscription_required=flags["subscriptionRequired"],
        approval_required=flags["approvalRequired"],
        subscriptions_limit=limit,
        limit_given="subscriptionsLimit" in props,
        state=state,
        given=frozenset(props),
    )


def scope_covers(scope: str, product_id: str | None, api_id: str | None) -> bool:
    """All-APIs subscriptions cover everything; others only their own product or API."""
    if scope in {"/", "/apis"}:
        return True
    if product_id is not None and scope == f"/products/{product_id}":
        return True
    return api_id is not None and scope == f"/apis/{api_id}"
