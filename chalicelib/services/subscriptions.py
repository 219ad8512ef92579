"""Products, subscriptions and the key check that gateways call on every API request."""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from chalicelib.domain.audit import REDACTED, diff
from chalicelib.domain.clock import Clock
from chalicelib.domain.etag import Expected, check_expected, next_version
from chalicelib.domain.groups import DEVELOPERS, Group
from chalicelib.domain.messages import Message
from chalicelib.domain.odata import ALL_FUNCTIONS, ALL_OPS, EQ_ONLY, FieldSpec
from chalicelib.domain.paging import Page
from chalicelib.domain.portal import NotificationName
from chalicelib.domain.subscriptions import (
    CANCELLABLE_STATES,
    KEY_SLOTS,
    KEY_STATES,
    LIVE_STATES,
    Product,
    ProductInput,
    ProductState,
    Subscription,
    SubscriptionInput,
    SubscriptionState,
    developer_mail,
    new_key,
    product_of,
    publisher_notice,
    scope_covers,
)
from chalicelib.domain.tx import Tx
from chalicelib.domain.users import User, UserState
from chalicelib.errors import (
    FieldProblem,
    IdTaken,
    PreconditionFailed,
    ResourceNotFound,
    StateConflict,
    ValidationFailed,
)
from chalicelib.services.audit import Audit, Target
from chalicelib.services.listing import ListQuery, bounded_page, read_budget
from chalicelib.services.mailing import MailService
from chalicelib.services.ports import Products, Store, Subscriptions

NO_FUNCTIONS: frozenset[str] = frozenset()
PRODUCT_FILTER_FIELDS = {
    "name": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "displayName": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "description": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "terms": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "state": FieldSpec("enum", EQ_ONLY, NO_FUNCTIONS),
}
SUBSCRIPTION_FILTER_FIELDS = {
    "name": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "displayName": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "stateComment": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "ownerId": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "scope": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "userId": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "productId": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "state": FieldSpec("enum", EQ_ONLY, NO_FUNCTIONS),
}
# A product delete removes at most this many subscriptions in its own transaction.
_DELETE_BATCH = 4  # 4 items each plus its event: moto caps a transaction at 25 items
_MAX_SUBSCRIPTIONS = 1000


def product_record(product: Product) -> dict[str, Any]:
    return {
        "name": product.id,
        "displayName": product.display_name,
        "description": product.description,
        "terms": product.terms,
        "state": product.state.value,
    }


def subscription_record(sub: Subscription) -> dict[str, Any]:
    return {
        "name": sub.id,
        "displayName": sub.display_name,
        "stateComment": sub.state_comment,
        "ownerId": f"/users/{sub.owner_id}" if sub.owner_id else None,
        "scope": sub.scope,
        "userId": sub.owner_id,
        "productId": sub.product_id,
        "state": sub.state.value,
    }


def _page(
    iterate: Callable[..., Iterator[Any]], query: ListQuery, record: Callable[[Any], dict[str, Any]]
) -> Page[Any]:
    budget = read_budget(query)
    rows = ((x.id, x) for x in iterate(query.cursor.after, budget + 1, min(budget + 1, 200)))
    flt = query.filter
    return bounded_page(rows, query, budget, lambda x: flt is None or flt.evaluate(record(x)))


class ProductService:
    """Products and the groups that may see them."""

    def __init__(
        self, store: Store, group_exists: Callable[[str], bool], clock: Clock, *, audit: Audit
    ) -> None:
        self._audit = audit
        self._store = store
        self._products: Products = store.products
        self._subscriptions: Subscriptions = store.subscriptions
        self._group_exists = group_exists
        self._clock = clock

    def get(self, product_id: str) -> Product:
        product = self._products.get(product_id)
        if product is None:
            raise ResourceNotFound(f"Product not found: '{product_id}'.")
        return product

    def list(self, query: ListQuery) -> Page[Product]:
        return _page(self._products.iterate, query, product_record)

    def put(
        self, product_id: str, given: ProductInput, expected: Expected | None
    ) -> tuple[Product, bool]:
        now = self._clock()
        if expected is None:
            fresh = _apply_product(Product(product_id, given.display_name or ""), given)
            fresh = replace(fresh, version=next_version(0, now))
            tx = self._store.transaction()
            self._products.stage_create(tx, fresh)
            try:
                tx.commit()
                return fresh, True
            except IdTaken:
                pass
        existing = self._products.get(product_id)
        if existing is None:
            raise PreconditionFailed(
                f"Product '{product_id}' does not exist; If-Match cannot match."
            )
        check_expected(expected, existing.version)
        return self._replace(existing, given), False

    def update(self, product_id: str, given: ProductInput, expected: Expected) -> Product:
        existing = self.get(product_id)
        check_expected(expected, existing.version)
        return self._replace(existing, given)

    def _replace(self, existing: Product, given: ProductInput) -> Product:
        updated = replace(
            _apply_product(existing, given), version=next_version(existing.version, self._clock())
        )
        tx = self._store.transaction()
        self._products.stage_replace(tx, existing, updated)
        tx.commit()
        return updated

    def delete(self, product_id: str, expected: Expected, delete_subscriptions: bool) -> None:
        """409 while subscriptions exist, unless they are to go too."""
        product = self.get(product_id)
        check_expected(expected, product.version)
        # Read once: the product index lags behind deletes, so it is not read again in between.
        subs = self._subscriptions.of_product(product_id, _MAX_SUBSCRIPTIONS)
        if subs and not delete_subscriptions:
            raise StateConflict(
                f"Product '{product_id}' has subscriptions; delete them first, "
                "or pass deleteSubscriptions=true."
            )
        for start in range(0, len(subs), _DELETE_BATCH):
            tx = self._store.transaction()
            for sub in subs[start : start + _DELETE_BATCH]:
                self._subscriptions.stage_delete(tx, sub)
                self._audit.stage(tx, "subscription.deleted", _target(sub))
            tx.commit()
        tx = self._store.transaction()
        self._products.stage_delete(tx, product)
        tx.commit()

    def groups(self, product_id: str) -> builtins.list[str]:
        self.get(product_id)
        return self._products.group_ids(product_id)

    def has_group(self, product_id: str, group_id: str) -> bool:
        self.get(product_id)
        return self._products.has_group(product_id, group_id)

    def add_group(self, product_id: str, group_id: str) -> bool:
        self.get(product_id)
        if not self._group_exists(group_id):
            raise ResourceNotFound(f"Group not found: '{group_id}'.")
        return self._products.link_group(product_id, group_id)

    def remove_group(self, product_id: str, group_id: str) -> None:
        if not self.has_group(product_id, group_id):
            raise ResourceNotFound(f"Group '{group_id}' is not linked to product '{product_id}'.")
        self._products.unlink_group(product_id, group_id)


def _apply_product(product: Product, given: ProductInput) -> Product:
    """The product with the sent fields changed; fields not sent keep their value."""

    def flag(value: bool | None, current: bool) -> bool:
        return current if value is None else value

    return replace(
        product,
        display_name=given.display_name or product.display_name,
        description=given.description if "description" in given.given else product.description,
        terms=given.terms if "terms" in given.given else product.terms,
        subscription_required=flag(given.subscription_required, product.subscription_required),
        approval_required=flag(given.approval_required, product.approval_required),
        subscriptions_limit=given.subscriptions_limit
        if given.limit_given
        else product.subscriptions_limit,
        state=given.state or product.state,
    )


class PublisherNotices(Protocol):
    """Where the publishers hear of a developer's request or purchase (services.notifications).

    APIM's ``RequestPublisherNotificationMessage`` and ``PurchasePublisherNotificationMessage``,
    staged in the transaction of the change to the recipients configured under
    ``notifications``.
    """

    def stage(
        self,
        tx: Tx,
        name: NotificationName,
        developer: User,
        *,
        product: Product | None = None,
        subscription: Subscription | None = None,
    ) -> builtins.list[Message]: ...


@dataclass(frozen=True)
class OwnSubscription:
    """A developer's subscription as their portal page lists it."""

    subscription: Subscription
    product_name: str

    @property
    def keys_visible(self) -> bool:
        return self.subscription.state in KEY_STATES

    @property
    def cancellable(self) -> bool:
        return self.subscription.state in CANCELLABLE_STATES


@dataclass(frozen=True)
class ProductOffer:
    """A product the developer may see, and whether (and why not) they may subscribe now."""

    product: Product
    held: int
    can_subscribe: bool
    reason: str | None


# A developer's pages read at most this many of their subscriptions and visible products.
_OWN_SHOWN = 100
_PRODUCTS_SHOWN = 100


def _new_subscription_id() -> str:
    """24 hex digits, the shape of the ids APIM's portal gives subscriptions."""
    return secrets.token_hex(12)


def _day(value: Any) -> str:
    return value.strftime("%d %B %Y") if value else ""


class SubscriptionService:
    """Subscriptions of users to products or APIs; keys change only through this service.

    A state change made by an administrator emails the owner when asked to (``notify``: the
    management API's ``notify=true``, always from the console), and every change a developer
    makes from the portal is checked to be on their own subscription.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        audit: Audit,
        mail: MailService,
        groups_of: Callable[[User], builtins.list[Group]],
        publishers: PublisherNotices,
    ) -> None:
        self._audit = audit
        self._store = store
        self._subscriptions: Subscriptions = store.subscriptions
        self._products: Products = store.products
        self._clock = clock
        self._mail = mail
        self._groups_of = groups_of
        self._publishers = publishers

    def get(self, sid: str, owner_id: str | None = None) -> Subscription:
        sub = self._subscriptions.get(sid)
        if sub is None or (owner_id is not None and sub.owner_id != owner_id):
            raise ResourceNotFound(f"Subscription not found: '{sid}'.")
        return sub

    def list(self, query: ListQuery) -> Page[Subscription]:
        return _page(self._subscriptions.iterate, query, subscription_record)

    def of_user(self, user_id: str, query: ListQuery) -> Page[Subscription]:
        self._store.users.require(user_id)

        def iterate(after: str | None, budget: int, size: int) -> Iterator[Subscription]:
            return self._subscriptions.of_owner(user_id, after, budget, size)

        return _page(iterate, query, subscription_record)

    def _check_references(
        self, given: SubscriptionInput, scope: str, owner: str | None
    ) -> Product | None:
        problems = []
        if owner is not None and self._store.users.get(owner) is None:
            problems.append(FieldProblem("ownerId", f"User not found: '{owner}'."))
        product = None
        product_id = product_of(scope)
        if product_id is not None:
            product = self._products.get(product_id)
            if product is None:
                problems.append(FieldProblem("scope", f"Product not found: '{product_id}'."))
        if problems:
            raise ValidationFailed(problems)
        return product

    def put(
        self,
        sid: str,
        given: SubscriptionInput,
        expected: Expected | None,
        notify: bool = False,
    ) -> tuple[Subscription, bool]:
        now = self._clock()
        if expected is None:
            assert given.scope is not None and given.display_name is not None
            product = self._check_references(given, given.scope, given.owner_id)
            state = given.state or (
                SubscriptionState.SUBMITTED
                if product is not None and product.approval_required
                else SubscriptionState.ACTIVE
            )
            fresh = Subscription(
                id=sid,
                scope=given.scope,
                display_name=given.display_name,
                state=state,
                owner_id=given.owner_id,
                created_date=now,
                primary_key=given.primary_key or new_key(),
                secondary_key=given.secondary_key or new_key(),
                version=next_version(0, now),
                state_comment=given.state_comment,
                allow_tracing=given.allow_tracing if given.allow_tracing is not None else True,
                start_date=now if state is SubscriptionState.ACTIVE else None,
            )
            if fresh.primary_key == fresh.secondary_key:
                raise ValidationFailed([FieldProblem("secondaryKey", "The two keys must differ.")])
            tx = self._store.transaction()
            self._subscriptions.stage_create(
                tx, fresh, product.subscriptions_limit if product else None
            )
            try:
                self._audit.stage(
                    tx, "subscription.created", _target(fresh), diff({}, _fields(fresh))
                )
                if notify:
                    self._stage_notices(tx, None, fresh, product)
                tx.commit()
                return fresh, True
            except IdTaken:
                pass
        existing = self._subscriptions.get(sid)
        if existing is None:
            raise PreconditionFailed(f"Subscription '{sid}' does not exist; If-Match cannot match.")
        check_expected(expected, existing.version)
        return self._change(existing, given, notify), False

    def update(
        self, sid: str, given: SubscriptionInput, expected: Expected, notify: bool = False
    ) -> Subscription:
        """A change by an administrator; ``notify`` emails the owner about a new state."""
        existing = self.get(sid)
        check_expected(expected, existing.version)
        return self._change(existing, given, notify)

    def _stage_notices(
        self,
        tx: Tx,
        before: SubscriptionState | None,
        sub: Subscription,
        product: Product | None,
        owner: User | None = None,
    ) -> None:
        """The owner's email about a new state, and the publishers' notice, in ``tx``.

        The owner is read here (one GetItem) only when there is something to send; an
        ownerless subscription, or one whose owner was deleted, has nobody to tell.
        """
        template = developer_mail(before, sub.state)
        if template is None or sub.owner_id is None:
            return
        owner = owner or self._store.users.get(sub.owner_id)
        if owner is None:
            return
        self._mail.stage(tx, template, owner, extra=_mail_values(sub, product))
        notice = publisher_notice(before, sub.state)
        if notice is not None:
            self._publishers.stage(
                tx, NotificationName(notice), owner, product=product, subscription=sub
            )

    def _change(
        self, existing: Subscription, given: SubscriptionInput, notify: bool = False
    ) -> Subscription:
        now = self._clock()
        scope = given.scope or existing.scope
        owner = given.owner_id if given.owner_given else existing.owner_id
        product = self._check_references(given, scope, owner)
        state = given.state or existing.state
        updated = replace(
            existing,
            scope=scope,
            owner_id=owner,
            display_name=given.display_name or existing.display_name,
            state=state,
            state_comment=given.state_comment
            if given.state_comment is not None
            else existing.state_comment,
            allow_tracing=given.allow_tracing
            if given.allow_tracing is not None
            else existing.allow_tracing,
            primary_key=given.primary_key or existing.primary_key,
            secondary_key=given.secondary_key or existing.secondary_key,
            version=next_version(existing.version, now),
            start_date=existing.start_date or (now if state is SubscriptionState.ACTIVE else None),
            end_date=now
            if state in {SubscriptionState.CANCELLED, SubscriptionState.EXPIRED}
            and existing.state is not state
            else existing.end_date,
        )
        if updated.primary_key == updated.secondary_key:
            raise ValidationFailed([FieldProblem("secondaryKey", "The two keys must differ.")])
        tx = self._store.transaction()
        self._subscriptions.stage_replace(
            tx, existing, updated, product.subscriptions_limit if product else None
        )
        changes = diff(_fields(existing), _fields(updated))
        self._audit.stage(tx, "subscription.changed", _target(updated), changes)
        if notify:
            self._stage_notices(tx, existing.state, updated, product)
        tx.commit()
        return updated

    def delete(self, sid: str, expected: Expected) -> None:
        existing = self.get(sid)
        check_expected(expected, existing.version)
        tx = self._store.transaction()
        self._subscriptions.stage_delete(tx, existing)
        self._audit.stage(
            tx, "subscription.deleted", _target(existing), diff(_fields(existing), {})
        )
        tx.commit()

    def regenerate(self, sid: str, slot: str) -> None:
        """A new key in one slot; the old one is refused from the next call on."""
        self._regenerate(self.get(sid), slot, None)

    def _regenerate(self, existing: Subscription, slot: str, by_user: str | None) -> None:
        key = new_key()
        updated = replace(
            existing,
            primary_key=key if slot == "primary" else existing.primary_key,
            secondary_key=key if slot == "secondary" else existing.secondary_key,
            version=next_version(existing.version, self._clock()),
        )
        tx = self._store.transaction()
        self._subscriptions.stage_replace(tx, existing, updated, None)
        secret = {f"{slot}Key": {"old": None, "new": REDACTED}}
        self._audit.stage(
            tx, "subscription.key_regenerated", _target(existing), secret, by_user=by_user
        )
        tx.commit()

    # --- the developer's own subscriptions (the portal) ----------------------------------------

    def own(self, developer: User, sid: str) -> Subscription:
        """One of the developer's subscriptions; another's is "not found", exactly as a
        subscription that does not exist (no oracle for other developers' ids)."""
        sub = self._subscriptions.get(sid) if sid else None
        if sub is None or sub.owner_id != developer.id:
            raise ResourceNotFound("You have no subscription with this id.")
        return sub

    def of_developer(self, developer: User) -> builtins.list[OwnSubscription]:
        """The developer's subscriptions (one Query), with their products' names."""
        subs = list(self._subscriptions.of_owner(developer.id, None, _OWN_SHOWN, _OWN_SHOWN))
        names: dict[str, str] = {}
        for sub in subs:
            product_id = sub.product_id
            if product_id is not None and product_id not in names:
                product = self._products.get(product_id)
                names[product_id] = product.display_name if product else product_id
        return [OwnSubscription(sub, _scope_label(sub, names)) for sub in subs]

    def key_of(self, developer: User, sid: str, slot: str) -> str:
        """One key of the developer's own subscription, while it can be used."""
        sub = self._own_with_keys(developer, sid, slot)
        return sub.primary_key if slot == "primary" else sub.secondary_key

    def regenerate_own(self, developer: User, sid: str, slot: str) -> Subscription:
        """A new key for the developer's own subscription; the old one stops working at once."""
        sub = self._own_with_keys(developer, sid, slot)
        self._regenerate(sub, slot, developer.id)
        return sub

    def _own_with_keys(self, developer: User, sid: str, slot: str) -> Subscription:
        if slot not in KEY_SLOTS:
            raise ValidationFailed([FieldProblem("key", "Choose the primary or secondary key.")])
        sub = self.own(developer, sid)
        if sub.state not in KEY_STATES:
            raise StateConflict(
                f"The subscription “{sub.display_name}” is {sub.state.value}: it has no keys "
                "to show or regenerate."
            )
        return sub

    def rename(self, developer: User, sid: str, name: str) -> Subscription:
        """The developer's own name for their subscription (``name`` already checked)."""
        existing = self.own(developer, sid)
        if existing.display_name == name:
            return existing
        updated = replace(
            existing,
            display_name=name,
            version=next_version(existing.version, self._clock()),
        )
        return self._commit_own(developer, existing, updated)

    def _commit_own(
        self, developer: User, existing: Subscription, updated: Subscription
    ) -> Subscription:
        """A developer's change to their own subscription, audited as theirs, in one write."""
        tx = self._store.transaction()
        self._subscriptions.stage_replace(tx, existing, updated, None)
        changes = diff(_fields(existing), _fields(updated))
        self._audit.stage(
            tx, "subscription.changed", _target(updated), changes, by_user=developer.id
        )
        tx.commit()
        return updated

    def cancel(self, developer: User, sid: str) -> Subscription:
        """The developer ends their own subscription (or withdraws a request): keys stop at once,
        and the place it held under the product's limit is free again."""
        existing = self.own(developer, sid)
        if existing.state not in CANCELLABLE_STATES:
            raise StateConflict(
                f"The subscription “{existing.display_name}” is {existing.state.value}: "
                "there is nothing to cancel."
            )
        now = self._clock()
        updated = replace(
            existing,
            state=SubscriptionState.CANCELLED,
            end_date=now,
            version=next_version(existing.version, now),
        )
        return self._commit_own(developer, existing, updated)

    # --- products a developer may subscribe to -------------------------------------------------

    def _visible_ids(self, developer: User) -> builtins.list[str]:
        """The products linked to the developer's groups (Developers, which every account is
        in, and their custom groups): one Query per group."""
        group_ids = {DEVELOPERS.id} | {g.id.lower() for g in self._groups_of(developer)}
        found: set[str] = set()
        for group_id in sorted(group_ids):
            found.update(self._products.products_of_group(group_id))
        return sorted(found)[:_PRODUCTS_SHOWN]

    def catalogue(self, developer: User) -> builtins.list[ProductOffer]:
        """The published products the developer's groups may see, by name, with what the
        developer holds of each and whether they may subscribe now."""
        held: dict[str, int] = {}
        for sub in self._subscriptions.of_owner(developer.id, None, _OWN_SHOWN, _OWN_SHOWN):
            if sub.product_id is not None and sub.state in LIVE_STATES:
                held[sub.product_id] = held.get(sub.product_id, 0) + 1
        offers = []
        for product_id in self._visible_ids(developer):
            product = self._products.get(product_id)
            if product is None or product.state is not ProductState.PUBLISHED:
                continue
            count = held.get(product.id, 0)
            reason = _why_not(product, count)
            offers.append(ProductOffer(product, count, reason is None, reason))
        return sorted(offers, key=lambda o: (o.product.display_name.lower(), o.product.id))

    def visible_product(self, developer: User, product_id: str) -> Product:
        """A published product the developer's groups may see; any other is "not found"."""
        product = self._products.get(product_id) if product_id else None
        if (
            product is None
            or product.state is not ProductState.PUBLISHED
            or product.id not in self._visible_ids(developer)
        ):
            raise ResourceNotFound("There is no product with this id that you can subscribe to.")
        return product

    def subscribe(
        self, developer: User, product_id: str, name: str, accepted_terms: bool
    ) -> Subscription:
        """A new subscription of the developer to a product they can see (``name`` checked).

        Active at once, or ``submitted`` when the product needs approval; the developer's email
        and the publishers' notice go in the same transaction. The product's limit is held by
        a per-developer counter updated under a condition in that transaction, so concurrent
        requests cannot pass it together.
        """
        product = self.visible_product(developer, product_id)
        if not product.subscription_required:
            raise StateConflict(
                f"{product.display_name} is open to everyone: it needs no subscription."
            )
        if product.terms and not accepted_terms:
            raise ValidationFailed(
                [FieldProblem("acceptTerms", "Accept the terms of use to subscribe.")]
            )
        now = self._clock()
        state = (
            SubscriptionState.SUBMITTED if product.approval_required else SubscriptionState.ACTIVE
        )
        primary = new_key()
        fresh = Subscription(
            id=_new_subscription_id(),
            scope=f"/products/{product.id}",
            display_name=name,
            state=state,
            owner_id=developer.id,
            created_date=now,
            primary_key=primary,
            secondary_key=new_key(),
            version=next_version(0, now),
            start_date=now if state is SubscriptionState.ACTIVE else None,
        )
        tx = self._store.transaction()
        self._subscriptions.stage_create(tx, fresh, product.subscriptions_limit)
        self._audit.stage(
            tx,
            "subscription.created",
            _target(fresh),
            diff({}, _fields(fresh)),
            by_user=developer.id,
        )
        self._stage_notices(tx, None, fresh, product, developer)
        tx.commit()
        return fresh


def _why_not(product: Product, held: int) -> str | None:
    """Why the developer may not subscribe to the product now, or None."""
    if not product.subscription_required:
        return "Open to everyone: no subscription needed."
    limit = product.subscriptions_limit
    if limit is not None and held >= limit:
        if limit == 0:
            return "This product takes no new subscriptions."
        return f"You have {held} of the {limit} subscriptions this product allows."
    return None


def _scope_label(sub: Subscription, products: dict[str, str]) -> str:
    if sub.product_id is not None:
        return products.get(sub.product_id, sub.product_id)
    return "All APIs" if sub.scope in {"/", "/apis"} else f"API {sub.scope.rsplit('/', 1)[-1]}"


def _mail_values(sub: Subscription, product: Product | None) -> dict[str, str]:
    """What the subscription emails say besides the developer's own details."""
    return {
        "ProdId": product.id if product else "",
        "ProdName": product.display_name if product else _scope_label(sub, {}),
        "SubStartDate": _day(sub.start_date),
        "SubTerm": "",
        "SubDeclineReason": sub.state_comment or "",
    }


def _target(sub: Subscription) -> Target:
    return Target("subscription", sub.id)


def _fields(sub: Subscription) -> dict[str, Any]:
    """What events show of a subscription: never its keys."""
    return {
        "scope": sub.scope,
        "ownerId": sub.owner_id,
        "displayName": sub.display_name,
        "state": sub.state.value,
        "stateComment": sub.state_comment,
    }


@dataclass(frozen=True)
class KeyDecision:
    """The answer of a key check, with the reason a denied key was denied."""

    allowed: bool
    reason: str
    user_id: str | None = None
    subscription_id: str | None = None


class KeyCheck:
    """At most two DynamoDB reads: the key item (with the subscription's state and scope), then
    its owner. Every change to either is visible to the very next check."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._subscriptions: Subscriptions = store.subscriptions

    def check(self, key: str, product_id: str | None, api_id: str | None) -> KeyDecision:
        record = self._subscriptions.key(key) if key else None
        if record is None:
            return KeyDecision(False, "unknown key")
        sid, owner = record.subscription_id, record.owner_id
        if record.state is not SubscriptionState.ACTIVE:
            return KeyDecision(False, "subscription not active", owner, sid)
        if not scope_covers(record.scope, product_id, api_id):
            return KeyDecision(False, "out of scope", owner, sid)
        if owner is not None:
            user = self._store.users.get(owner)
            if user is None:
                return KeyDecision(False, "owner deleted", owner, sid)
            if user.state is UserState.BLOCKED:
                return KeyDecision(False, "owner blocked", owner, sid)
            if user.state is not UserState.ACTIVE:
                return KeyDecision(False, "owner not active", owner, sid)
        return KeyDecision(True, "active subscription", owner, sid)
