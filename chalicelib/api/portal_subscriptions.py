"""The developer's subscriptions and products pages: keys on request, subscribe, rename, cancel.

Server-rendered forms that work without JavaScript, on the portal's one session
(api/portal_session.py: signed out to sign-in and back, every POST checked for CSRF). A key is
only ever in the answer to the POST that asked to show it, never in a GET page or a URL. A
subscription id of another developer is answered exactly as an id that does not exist (404).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from chalice import Response

from chalicelib.api.docs import form_body, ours, page_responses, query_param
from chalicelib.api.portal_session import (
    Developer,
    FormHandler,
    delegate,
    developer_form,
    developer_page,
    render,
    see_other,
)
from chalicelib.api.routing import Call, Router
from chalicelib.bootstrap import services
from chalicelib.domain.delegation import Operation
from chalicelib.domain.subscriptions import KEY_SLOTS, SubscriptionState, read_portal_name
from chalicelib.errors import (
    LimitReached,
    PreconditionFailed,
    ResourceNotFound,
    StateConflict,
    ValidationFailed,
)
from chalicelib.services.subscriptions import OwnSubscription, ProductOffer

router = Router(management=False)
SUBSCRIPTIONS = "/portal/subscriptions"
PRODUCTS = "/portal/products"
# What a redirect after a change says; {name} is the subscription's name.
DONE = {
    "subscribed": "Your subscription “{name}” is active. Its keys are below.",
    "requested": (
        "Your request “{name}” was sent. It waits for approval; we will email you once it has "
        "been reviewed."
    ),
    "renamed": "The subscription is now called “{name}”.",
    "cancelled": "The subscription “{name}” is cancelled: its keys no longer work.",
    "regenerated-primary": (
        "The subscription “{name}” has a new primary key; the previous one no longer works."
    ),
    "regenerated-secondary": (
        "The subscription “{name}” has a new secondary key; the previous one no longer works."
    ),
}
NOT_YOURS = "That subscription does not exist, or it is not yours. The page lists yours."
STATE_WORDS = {
    SubscriptionState.SUBMITTED: "Awaiting approval",
    SubscriptionState.ACTIVE: "Active",
    SubscriptionState.SUSPENDED: "Suspended",
    SubscriptionState.REJECTED: "Rejected",
    SubscriptionState.CANCELLED: "Cancelled",
    SubscriptionState.EXPIRED: "Expired",
}


def _page_answers(*statuses: str) -> dict[str, dict[str, Any]]:
    """A page's answers, and the 303 of a change done (or of a developer not signed in)."""
    answers = page_responses(statuses=statuses)
    answers["303"] = {
        "description": "Done: back to the page, saying what changed; or not signed in: to the "
        "sign-in page, which returns here.",
    }
    return answers


# --- the subscriptions page --------------------------------------------------------------------


def _subscriptions_page(
    call: Call,
    developer: Developer,
    status: int = 200,
    *,
    shown: tuple[str, str, str] | None = None,
    panel: tuple[str, str] | None = None,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    """The developer's subscriptions; ``shown`` is (id, slot, key) of the one key asked for;
    ``panel`` (kind, id) opens a rename form or a cancel confirmation."""
    owned = services().subscriptions.of_developer(developer.user)
    by_id = {own.subscription.id: own for own in owned}
    if panel is None:
        for kind in ("rename", "cancel"):
            sid = call.query.get(kind, "")
            if sid in by_id:
                panel = (kind, sid)
    if panel is not None and (
        panel[1] not in by_id or (panel[0] == "cancel" and not by_id[panel[1]].cancellable)
    ):
        panel = None
    return render(
        call,
        "subscriptions.html",
        developer,
        status,
        title="Your subscriptions",
        current="subscriptions",
        owned=owned,
        shown=shown,
        panel=panel,
        slots=KEY_SLOTS,
        states=STATE_WORDS,
        submitted=SubscriptionState.SUBMITTED,
        message=None if status != 200 or shown else _done_message(call, by_id),
        error=error,
        errors=errors or {},
        values=values or {},
    )


def _done_message(call: Call, by_id: dict[str, OwnSubscription]) -> str | None:
    """The message a redirect asked for; the name comes from the store, never from the URL."""
    template = DONE.get(call.query.get("done", ""))
    own = by_id.get(call.query.get("s", ""))
    if template is None or own is None:
        return None
    return template.format(name=own.subscription.display_name)


@router.route(
    SUBSCRIPTIONS,
    GET=ours(
        "PortalSubscriptions_Show",
        "The signed-in developer's subscriptions: product, state, dates; keys stay hidden until "
        "asked for with a POST. Signed out: 303 to the sign-in page.",
        params=[
            query_param("rename", "A subscription id: opens its rename form.", type="string"),
            query_param(
                "cancel", "A subscription id: asks to confirm its cancellation.", type="string"
            ),
        ],
        responses=_page_answers(),
    ),
)
@developer_page
def show_subscriptions(call: Call, developer: Developer) -> Response:
    return _subscriptions_page(call, developer)


def _back(call: Call, sid: str, done: str) -> Response:
    """303 to the subscriptions page, saying what was done."""
    return see_other(call, "portal/subscriptions?" + urlencode({"done": done, "s": sid}))


def _show_key(call: Call, developer: Developer, fields: dict[str, str]) -> Response:
    sid, slot = fields.get("subscription", ""), fields.get("key", "")
    key = services().subscriptions.key_of(developer.user, sid, slot)
    return _subscriptions_page(call, developer, shown=(sid, slot, key))


def _regenerate(call: Call, developer: Developer, fields: dict[str, str]) -> Response:
    sid, slot = fields.get("subscription", ""), fields.get("key", "")
    services().subscriptions.regenerate_own(developer.user, sid, slot)
    return _back(call, sid, f"regenerated-{slot}")


def _rename(call: Call, developer: Developer, fields: dict[str, str]) -> Response:
    sid = fields.get("subscription", "")
    try:
        name = read_portal_name(fields.get("name"))
    except ValidationFailed as exc:
        return _subscriptions_page(
            call,
            developer,
            400,
            panel=("rename", sid),
            error="The name was not changed: " + exc.details[0].message,
            errors={"name": exc.details[0].message},
            values={"name": fields.get("name", "")[:200]},
        )
    services().subscriptions.rename(developer.user, sid, name)
    return _back(call, sid, "renamed")


def _cancel(call: Call, developer: Developer, fields: dict[str, str]) -> Response:
    sid = fields.get("subscription", "")
    if services().delegation.enabled_for(Operation.UNSUBSCRIBE):
        # Only the developer's own subscription is handed on (404 otherwise, as below).
        own = services().subscriptions.own(developer.user, sid)
        handed = delegate(call, Operation.UNSUBSCRIBE, subscription_id=own.id)
        if handed is not None:
            return handed
    if fields.get("confirm") != "yes":
        # Without the confirmation's own button (a forged or replayed form), ask first; the
        # question is only for the developer's own subscription (404 otherwise).
        own = services().subscriptions.own(developer.user, sid)
        return _subscriptions_page(
            call,
            developer,
            400,
            panel=("cancel", own.id),
            error="Confirm the cancellation: its keys stop working at once.",
        )
    services().subscriptions.cancel(developer.user, sid)
    return _back(call, sid, "cancelled")


_SUBSCRIPTION_ACTIONS: dict[str, FormHandler] = {
    "show": _show_key,
    "regenerate": _regenerate,
    "rename": _rename,
    "cancel": _cancel,
}


@router.route(
    SUBSCRIPTIONS,
    POST=ours(
        "PortalSubscriptions_Act",
        "One action on one of the developer's own subscriptions: show a key (the page, with "
        "that key), regenerate a key, rename, or cancel (confirm=yes). Changes answer 303 back "
        "to the page; another developer's subscription is 404.",
        body=form_body("csrf", "action", "subscription", "key", "name", "confirm"),
        responses=_page_answers("400", "403", "404", "409"),
    ),
)
@developer_form
def act_on_subscription(call: Call, developer: Developer, fields: dict[str, str]) -> Response:
    action = _SUBSCRIPTION_ACTIONS.get(fields.get("action", ""))
    if action is None:
        return _subscriptions_page(call, developer, 400, error="Choose one of the page's buttons.")
    try:
        return action(call, developer, fields)
    except ResourceNotFound:
        return _subscriptions_page(call, developer, 404, error=NOT_YOURS)
    except ValidationFailed as exc:
        return _subscriptions_page(call, developer, 400, error=exc.details[0].message)
    except StateConflict as exc:
        return _subscriptions_page(call, developer, 409, error=exc.message)
    except PreconditionFailed:
        # An administrator changed it between the read and the write.
        return _subscriptions_page(call, developer, 409, error=_CHANGED_MEANWHILE)


_CHANGED_MEANWHILE = (
    "The subscription was changed meanwhile, so nothing was done. The page shows it as it is "
    "now; try again."
)


_NOT_OFFERED = (
    "That product does not exist, or it is not offered to you. The page lists the products you "
    "can subscribe to."
)
_AT_LIMIT = (
    "You already have as many subscriptions to this product as it allows. Cancel one on your "
    "subscriptions page to subscribe again."
)

# --- the products page -------------------------------------------------------------------------


def _products_page(
    call: Call,
    developer: Developer,
    status: int = 200,
    *,
    failed: str | None = None,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    """The products the developer may see; ``failed`` is the product whose form is shown again
    with ``errors`` next to its fields."""
    offers: list[ProductOffer] = services().subscriptions.catalogue(developer.user)
    return render(
        call,
        "products.html",
        developer,
        status,
        title="Products",
        current="products",
        offers=offers,
        failed=failed,
        error=error,
        errors=errors or {},
        values=values or {},
    )


@router.route(
    PRODUCTS,
    GET=ours(
        "PortalProducts_Show",
        "The published products the signed-in developer's groups may see, with their terms and "
        "a subscribe form where the developer may still subscribe. Signed out: 303 to sign-in.",
        responses=_page_answers(),
    ),
)
@developer_page
def show_products(call: Call, developer: Developer) -> Response:
    return _products_page(call, developer)


def _hand_on(call: Call, developer: Developer, product_id: str) -> Response:
    """Delegated: the publisher's site subscribes the developer (through the management API).

    Only a product the developer may subscribe to now is signed over: the site trusts the
    signature as the portal's word that this developer may have this product.
    """
    offer = next(
        (
            o
            for o in services().subscriptions.catalogue(developer.user)
            if o.product.id == product_id
        ),
        None,
    )
    if offer is None:
        return _products_page(call, developer, 404, error=_NOT_OFFERED)
    if not offer.can_subscribe:
        return _products_page(call, developer, 409, error=offer.reason or _AT_LIMIT)
    handed = delegate(call, Operation.SUBSCRIBE, product_id=product_id, user_id=developer.user.id)
    return handed or _products_page(call, developer, 409, error=_NOT_OFFERED)


@router.route(
    PRODUCTS,
    POST=ours(
        "PortalProducts_Subscribe",
        "Subscribes the developer to a product they may see: active at once, or awaiting "
        "approval; the product's terms must be accepted (acceptTerms=yes) and its limit per "
        "developer holds under concurrent requests. 303 to the subscriptions page.",
        body=form_body("csrf", "action", "product", "name", "acceptTerms"),
        responses=_page_answers("400", "403", "404", "409"),
    ),
)
@developer_form
def subscribe(call: Call, developer: Developer, fields: dict[str, str]) -> Response:
    if fields.get("action") != "subscribe":
        return _products_page(call, developer, 400, error="Choose one of the page's buttons.")
    product_id = fields.get("product", "")
    if services().delegation.enabled_for(Operation.SUBSCRIBE):
        return _hand_on(call, developer, product_id)
    values = {"name": fields.get("name", "")[:200], "acceptTerms": fields.get("acceptTerms", "")}
    try:
        name = read_portal_name(fields.get("name"))
        sub = services().subscriptions.subscribe(
            developer.user, product_id, name, fields.get("acceptTerms") == "yes"
        )
    except ValidationFailed as exc:
        errors = {d.target: d.message for d in reversed(exc.details)}
        return _products_page(
            call,
            developer,
            400,
            failed=product_id,
            error="Nothing was subscribed: " + exc.details[0].message,
            errors=errors,
            values=values,
        )
    except ResourceNotFound:
        return _products_page(call, developer, 404, error=_NOT_OFFERED)
    except LimitReached:
        return _products_page(call, developer, 409, error=_AT_LIMIT)
    except StateConflict as exc:
        return _products_page(call, developer, 409, error=exc.message)
    done = "requested" if sub.state is SubscriptionState.SUBMITTED else "subscribed"
    return _back(call, sub.id, done)
