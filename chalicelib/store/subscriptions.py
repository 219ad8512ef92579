"""The subscription repository: subscriptions, their keys by hash, and per-user limit counters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from chalicelib.domain.subscriptions import (
    LIVE_STATES,
    Subscription,
    SubscriptionState,
    key_hash,
)
from chalicelib.domain.tx import Tx
from chalicelib.errors import (
    HasSubscriptions,
    IdTaken,
    LimitReached,
    PreconditionFailed,
    StateConflict,
)
from chalicelib.store.models import KeyItem, SubscriptionItem
from chalicelib.store.tx import dynamodb_errors, writes

KIND = "subscription"


@dataclass(frozen=True)
class KeyRecord:
    """What one GetItem on a key tells a check."""

    subscription_id: str
    slot: str
    owner_id: str | None
    scope: str
    state: SubscriptionState


def _to_subscription(item: SubscriptionItem) -> Subscription:
    return Subscription(
        id=item.sid,
        scope=item.scope or "/",
        display_name=item.display_name or "",
        state=SubscriptionState(item.state),
        owner_id=item.owner_id,
        created_date=item.created_date,
        primary_key=item.primary_key or "",
        secondary_key=item.secondary_key or "",
        version=int(item.version or 0),
        state_comment=item.state_comment,
        allow_tracing=bool(item.allow_tracing),
        start_date=item.start_date,
        expiration_date=item.expiration_date,
        end_date=item.end_date,
        notification_date=item.notification_date,
    )


def _to_item(sub: Subscription) -> SubscriptionItem:
    return SubscriptionItem(
        sid=sub.id,
        kind=KIND,
        owner_id=sub.owner_id,
        scope=sub.scope,
        product_id=sub.product_id,
        display_name=sub.display_name,
        state=sub.state.value,
        state_comment=sub.state_comment,
        allow_tracing=sub.allow_tracing,
        created_date=sub.created_date,
        start_date=sub.start_date,
        expiration_date=sub.expiration_date,
        end_date=sub.end_date,
        notification_date=sub.notification_date,
        primary_key=sub.primary_key,
        secondary_key=sub.secondary_key,
        version=sub.version,
    )


def _key_items(sub: Subscription) -> dict[str, KeyItem]:
    return {
        key_hash(key): KeyItem(
            key_hash=key_hash(key),
            sid=sub.id,
            slot=slot,
            owner_id=sub.owner_id,
            scope=sub.scope,
            state=sub.state.value,
        )
        for slot, key in (("primary", sub.primary_key), ("secondary", sub.secondary_key))
    }


def _limit_item(owner_id: str, product_id: str) -> SubscriptionItem:
    # '#' cannot appear in subscription ids, so counters never collide with subscriptions.
    return SubscriptionItem(sid=f"#limit#{owner_id}#{product_id}")


def owner_count_item(owner_id: str) -> SubscriptionItem:
    """How many subscriptions an account owns, whatever their state: written as 0 with the
    account, so that deleting it checks "owns none" inside its transaction, without a Query."""
    return SubscriptionItem(sid=f"#owner#{owner_id}", live=0)


def _counted(sub: Subscription) -> tuple[str, str] | None:
    if sub.owner_id and sub.product_id and sub.state in LIVE_STATES:
        return sub.owner_id, sub.product_id
    return None


def _changed() -> Exception:
    return PreconditionFailed("The subscription was changed or deleted meanwhile; read it again.")


def _key_taken() -> Exception:
    return StateConflict("That key is already used by a subscription; choose another.")


def _limit_reached() -> Exception:
    return LimitReached("The user already has the most subscriptions this product allows.")


class SubscriptionRepository:
    """Every change rewrites the key items in the same transaction, so a check sees it at once."""

    def get(self, sid: str) -> Subscription | None:
        with dynamodb_errors():
            try:
                item = SubscriptionItem.get(sid, consistent_read=True)
            except SubscriptionItem.DoesNotExist:
                return None
        return _to_subscription(item) if item.kind == KIND else None

    def key(self, key: str) -> KeyRecord | None:
        """One strongly consistent GetItem."""
        with dynamodb_errors():
            try:
                item = KeyItem.get(key_hash(key), consistent_read=True)
            except KeyItem.DoesNotExist:
                return None
        return KeyRecord(
            item.sid, item.slot, item.owner_id, item.scope, SubscriptionState(item.state)
        )

    def _stage_counters(
        self, tx: Tx, old: Subscription | None, new: Subscription | None, limit: int | None
    ) -> None:
        owner_before = old.owner_id if old else None
        owner_after = new.owner_id if new else None
        if owner_before != owner_after:
            for owner, step in ((owner_before, -1), (owner_after, 1)):
                if owner:
                    writes(tx).update(
                        owner_count_item(owner), [SubscriptionItem.live.add(step)], None, None
                    )
        before = _counted(old) if old else None
        after = _counted(new) if new else None
        if before == after:
            return
        if before:
            writes(tx).update(_limit_item(*before), [SubscriptionItem.live.add(-1)], None, None)
        if after:
            condition = None
            if limit is not None and limit > 0:
                condition = SubscriptionItem.live.does_not_exist() | (SubscriptionItem.live < limit)
            elif limit is not None:
                # A limit of 0 allows none: a missing counter must fail too, and
                # ``live < 0`` is false both for a counter at 0 and for no counter at all.
                condition = SubscriptionItem.live < 0
            writes(tx).update(
                _limit_item(*after), [SubscriptionItem.live.add(1)], condition, _limit_reached
            )

    def _stage_keys(self, tx: Tx, old: Subscription | None, new: Subscription | None) -> None:
        before = _key_items(old) if old else {}
        after = _key_items(new) if new else {}
        for digest, item in before.items():
            if digest not in after:
                writes(tx).delete(item, None, None)
        for digest, item in after.items():
            condition = None if digest in before else KeyItem.key_hash.does_not_exist()
            writes(tx).put(item, condition, None if digest in before else _key_taken)

    def stage_create(self, tx: Tx, sub: Subscription, limit: int | None) -> None:
        writes(tx).put(
            _to_item(sub), SubscriptionItem.sid.does_not_exist(), lambda: IdTaken(sub.id)
        )
        self._stage_keys(tx, None, sub)
        self._stage_counters(tx, None, sub, limit)

    def stage_replace(
        self, tx: Tx, old: Subscription, new: Subscription, limit: int | None
    ) -> None:
        writes(tx).put(_to_item(new), SubscriptionItem.version == old.version, _changed)
        self._stage_keys(tx, old, new)
        self._stage_counters(tx, old, new, limit)

    def stage_delete(self, tx: Tx, sub: Subscription) -> None:
        writes(tx).delete(_to_item(sub), SubscriptionItem.version == sub.version, _changed)
        self._stage_keys(tx, sub, None)
        self._stage_counters(tx, sub, None, None)

    def stage_forget_owner(self, tx: Tx, owner_id: str, owns_none: bool) -> None:
        """Remove an account's count with the account; with ``owns_none``, only if it is 0.

        The check fails also when there is no count (an account created before counts were
        kept): HasSubscriptions then, and the caller asks the owner index instead.
        """
        condition = SubscriptionItem.live == 0 if owns_none else None
        writes(tx).delete(
            owner_count_item(owner_id),
            condition,
            lambda: HasSubscriptions(f"User '{owner_id}' may own subscriptions."),
        )

    def iterate(self, after: str | None, budget: int, page_size: int) -> Iterator[Subscription]:
        condition = SubscriptionItem.sid > after if after is not None else None
        with dynamodb_errors():
            for item in SubscriptionItem.list_index.query(
                KIND, condition, limit=budget, page_size=page_size
            ):
                yield _to_subscription(item)

    def of_owner(
        self, owner_id: str, after: str | None, budget: int, page_size: int
    ) -> Iterator[Subscription]:
        condition = SubscriptionItem.sid > after if after is not None else None
        with dynamodb_errors():
            for item in SubscriptionItem.owner_index.query(
                owner_id, condition, limit=budget, page_size=page_size
            ):
                yield _to_subscription(item)

    def of_product(self, product_id: str, limit: int) -> list[Subscription]:
        with dynamodb_errors():
            return [
                _to_subscription(i)
                for i in SubscriptionItem.product_index.query(product_id, limit=limit)
            ]

    def exists_for_owner(self, owner_id: str) -> bool:
        with dynamodb_errors():
            return any(True for _ in SubscriptionItem.owner_index.query(owner_id, limit=1))
