"""In-memory fakes of the store, the repositories and the mailer, and services built on them.

Each fake repository has the methods of its DynamoDB twin in chalicelib/store/ (the Protocols of
chalicelib/services/ports.py, ``GroupStore``, ``TemplateStore``, ``AuditStore``, and what the
subscription services call) with the same answers: the same order, the same limits, the same
domain errors. tests/contract_store/ runs one set of assertions against both.

``FakeTx`` is all-or-nothing like DynamoDB's TransactWriteItems: every condition is evaluated
against the state before the commit; if any fails, nothing is written and the domain error of the
first failed write (in the order the real transaction sends them: deletes, puts, updates) is
raised. Like DynamoDB, it refuses two writes of one item in a transaction, and more than 100 writes
(moto takes any number, so a service that outgrows DynamoDB fails here first).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.bootstrap import Services as BootstrapServices
from chalicelib.config import Settings, get_settings
from chalicelib.domain.audit import AuditEvent
from chalicelib.domain.custom_groups import Membership, StoredGroup
from chalicelib.domain.email_templates import StoredTemplate
from chalicelib.domain.links import Link, LinkPurpose, LinkState
from chalicelib.domain.messages import Delivery, Message, MessageTaken
from chalicelib.domain.portal import (
    MAX_RECIPIENTS,
    NotificationName,
    Recipient,
    RecipientGone,
    RecipientTaken,
    Setting,
    SettingName,
    recipient_limit,
)
from chalicelib.domain.subscriptions import (
    LIVE_STATES,
    Product,
    Subscription,
    SubscriptionState,
    key_hash,
)
from chalicelib.domain.users import User, UserOrder, order_key
from chalicelib.errors import (
    EmailTaken,
    HasSubscriptions,
    IdTaken,
    LimitReached,
    LinkUnusable,
    PreconditionFailed,
    ResourceNotFound,
    StateConflict,
)
from chalicelib.mail.sender import MailFailed, OutgoingEmail
from tests.support import MovableClock, VirtualTimer

# DynamoDB's limit of writes in one TransactWriteItems (moto has none).
MAX_TX_ITEMS = 100
_ORDER = {"check": 0, "delete": 1, "put": 2, "update": 3}

Condition = Callable[[Any], bool]
OnFail = Callable[[], Exception] | None


class ConditionFailed(Exception):
    """A write whose condition failed and that names no domain error (DynamoDB's
    ConditionalCheckFailed / TransactionCanceled, which the real store lets through)."""


class TxRefused(Exception):
    """A transaction DynamoDB would refuse outright (too many items, one item twice)."""


def absent(current: Any) -> bool:
    return current is None


@dataclass
class _Write:
    kind: str
    table: dict[Any, Any]
    key: Any
    value: Any  # the new record (put), a function of the current one (update), None (delete)
    condition: Condition | None
    on_fail: OnFail


class FakeTx:
    """Writes collected by the fake repositories, committed all or nothing."""

    def __init__(self) -> None:
        self._writes: list[_Write] = []

    def add(
        self,
        kind: str,
        table: dict[Any, Any],
        key: Any,
        value: Any,
        condition: Condition | None,
        on_fail: OnFail,
    ) -> None:
        self._writes.append(_Write(kind, table, key, value, condition, on_fail))

    def __len__(self) -> int:
        return len(self._writes)

    def commit(self) -> None:
        if not self._writes:
            return
        if len(self._writes) > MAX_TX_ITEMS:
            raise TxRefused(f"{len(self._writes)} writes in one transaction (at most 100)")
        items = [(id(w.table), w.key) for w in self._writes]
        if len(set(items)) != len(items):
            raise TxRefused("Transaction request cannot include multiple operations on one item")
        ordered = sorted(self._writes, key=lambda w: _ORDER[w.kind])
        failed = [
            w for w in ordered if w.condition is not None and not w.condition(w.table.get(w.key))
        ]
        if failed:
            for write in failed:
                if write.on_fail is not None:
                    raise write.on_fail()
            raise ConditionFailed("The conditional request failed")
        for write in ordered:
            if write.kind == "check":
                continue
            if write.kind == "delete":
                write.table.pop(write.key, None)
            elif write.kind == "put":
                write.table[write.key] = write.value
            else:
                write.table[write.key] = write.value(write.table.get(write.key))


def _stage(tx: Any) -> FakeTx:
    assert isinstance(tx, FakeTx), f"a fake repository was given {type(tx).__name__}"
    return tx


def _after(rows: Iterable[Any], budget: int) -> Iterator[Any]:
    for n, row in enumerate(rows):
        if n == budget:
            return
        yield row


# --- users and links ---------------------------------------------------------------------------


def _user_changed() -> Exception:
    return PreconditionFailed("The user was changed or deleted meanwhile; read it again.")


def _version_is(version: int) -> Condition:
    return lambda current: current is not None and current.version == version


class FakeUsers:
    """Users by id, and email locks by normalized address."""

    def __init__(self) -> None:
        self.rows: dict[str, User] = {}
        self.email_locks: dict[str, str] = {}

    def get(self, user_id: str) -> User | None:
        return self.rows.get(user_id)

    def require(self, user_id: str) -> User:
        user = self.get(user_id)
        if user is None:
            raise ResourceNotFound(f"User not found: '{user_id}'.")
        return user

    def stage_create(self, tx: Any, user: User) -> None:
        _stage(tx).add("put", self.rows, user.id, user, absent, lambda: IdTaken(user.id))
        _stage(tx).add(
            "put",
            self.email_locks,
            user.email_key,
            user.id,
            absent,
            lambda: EmailTaken(f"Email '{user.email}' is already in use."),
        )

    def stage_replace(
        self, tx: Any, old: User, new: User, on_fail: Callable[[], Exception] | None = None
    ) -> None:
        _stage(tx).add(
            "put",
            self.rows,
            new.id,
            new,
            lambda current: (
                current is not None
                and current.version == old.version
                and current.reset_link == old.reset_link
            ),
            on_fail or _user_changed,
        )
        if new.email_key != old.email_key:
            _stage(tx).add(
                "put",
                self.email_locks,
                new.email_key,
                new.id,
                absent,
                lambda: EmailTaken(f"Email '{new.email}' is already in use."),
            )
            _stage(tx).add(
                "delete",
                self.email_locks,
                old.email_key,
                None,
                lambda owner: owner == old.id,
                _user_changed,
            )

    def stage_check(self, tx: Any, user: User, on_fail: Callable[[], Exception]) -> None:
        _stage(tx).add("check", self.rows, user.id, None, _version_is(user.version), on_fail)

    def fill_order_keys(self) -> int:
        return 0  # the fake orders by keys computed on each read: none is ever missing

    def stage_record_reset(self, tx: Any, user: User, link_id: str) -> None:
        _stage(tx).add(
            "update",
            self.rows,
            user.id,
            lambda current: replace(current, reset_link=link_id),
            lambda current: current is not None and current.reset_link == user.reset_link,
            _user_changed,
        )

    def stage_delete(self, tx: Any, user: User) -> None:
        _stage(tx).add("delete", self.rows, user.id, None, _version_is(user.version), _user_changed)
        _stage(tx).add(
            "delete",
            self.email_locks,
            user.email_key,
            None,
            lambda owner: owner == user.id,
            _user_changed,
        )

    def get_many(self, user_ids: Iterable[str]) -> dict[str, User]:
        return {i: self.rows[i] for i in sorted(set(user_ids)) if i in self.rows}

    def find_by_email(self, email_key: str) -> User | None:
        return next((u for _, u in sorted(self.rows.items()) if u.email_key == email_key), None)

    def iterate(self, after_id: str | None, budget: int, page_size: int) -> Iterator[User]:
        rows = (u for i, u in sorted(self.rows.items()) if after_id is None or i > after_id)
        return _after(rows, budget)

    def iterate_sorted(
        self,
        order: UserOrder,
        after: str | None,
        budget: int,
        page_size: int,
        prefix: str | None = None,
    ) -> Iterator[User]:
        # Python orders str by code point, as DynamoDB orders a string key by its UTF-8 bytes.
        keyed = sorted(
            ((order_key(u, order.sort), u) for u in self.rows.values()),
            key=lambda pair: pair[0],
            reverse=order.descending,
        )
        rows = (
            user
            for key, user in keyed
            if (prefix is None or key.startswith(prefix))
            and (after is None or (key < after if order.descending else key > after))
        )
        return _after(rows, budget)


def _link_gone() -> Exception:
    return LinkUnusable("This link has already been used, revoked or replaced.")


class FakeLinks:
    """Links by (user id, link id)."""

    def __init__(self, users: FakeUsers | None = None) -> None:
        self.rows: dict[tuple[str, str], Link] = {}
        self._users = users or FakeUsers()

    @staticmethod
    def _pending_with(link: Link) -> Condition:
        return lambda current: (
            current is not None
            and current.state is LinkState.PENDING
            and current.token_hash == link.token_hash
        )

    def stage_put(self, tx: Any, link: Link) -> None:
        _stage(tx).add("put", self.rows, (link.user_id, link.link_id), link, absent, None)

    def stage_end(self, tx: Any, link: Link, state: LinkState, now: datetime) -> None:
        _stage(tx).add(
            "update",
            self.rows,
            (link.user_id, link.link_id),
            lambda current: replace(current, state=state, ended_at=now),
            # Accepting needs the presented token to be the link's; revoking or expiring does not.
            self._pending_with(link)
            if state is LinkState.ACCEPTED
            else lambda current: current is not None and current.state is LinkState.PENDING,
            _link_gone,
        )

    def stage_rotate(self, tx: Any, link: Link, new_hash: str) -> None:
        _stage(tx).add(
            "update",
            self.rows,
            (link.user_id, link.link_id),
            lambda current: replace(current, token_hash=new_hash),
            self._pending_with(link),
            _link_gone,
        )

    def find_by_token(self, token_hash: str) -> Link | None:
        return next((x for x in self.rows.values() if x.token_hash == token_hash), None)

    def get(self, user_id: str, link_id: str) -> Link | None:
        return self.rows.get((user_id, link_id))

    def with_user(self, user_id: str, link_id: str) -> tuple[Link | None, User | None]:
        return self.rows.get((user_id, link_id)), self._users.get(user_id)

    def for_user(self, user_id: str, purposes: set[LinkPurpose], limit: int = 100) -> list[Link]:
        """Newest first."""
        mine = sorted(
            (x for (uid, _), x in self.rows.items() if uid == user_id and x.purpose in purposes),
            key=lambda x: x.link_id,
            reverse=True,
        )
        return mine[:limit]

    def due(self, now: datetime, limit: int) -> Iterator[Link]:
        """Pending links past their expiry, oldest expiry first."""
        due = sorted(
            (x for x in self.rows.values() if x.state is LinkState.PENDING and x.expires_at <= now),
            key=lambda x: (x.expires_at, x.user_id, x.link_id),
        )
        return _after(due, limit)


# --- outbox and counters -----------------------------------------------------------------------


class FakeOutbox:
    """Messages by id; every state change is conditional on the attempt count."""

    def __init__(self) -> None:
        self.rows: dict[str, Message] = {}
        self._announced: set[str] = set()  # the messages a read has returned

    def read(self) -> list[dict[str, Any]]:
        """The outbox's stream, as the relay's follower reads it (the app's in-process tests on
        the fakes): an INSERT record for each message stored since the last read, in the order
        they were stored, with the message as it is then."""
        found = []
        for message_id, message in self.rows.items():
            if message_id not in self._announced:
                self._announced.add(message_id)
                sequence = str(len(self._announced))
                found.append(
                    {
                        "eventName": "INSERT",
                        "dynamodb": {"SequenceNumber": sequence, "NewImage": message},
                    }
                )
        return found

    def stage_put(self, tx: Any, message: Message) -> None:
        # Like the real item: a new message has no send time and no error yet.
        stored = replace(message, sent_at=None, last_error=None)
        _stage(tx).add("put", self.rows, message.id, stored, absent, None)

    def get(self, message_id: str) -> Message | None:
        return self.rows.get(message_id)

    def get_many(self, message_ids: list[str]) -> dict[str, Message]:
        return {i: self.rows[i] for i in message_ids if i in self.rows}

    def _update(self, message: Message, **changes: Any) -> bool:
        current = self.rows.get(message.id)
        if (
            current is None
            or current.state is not Delivery.QUEUED
            or current.attempts != message.attempts
        ):
            return False
        self.rows[message.id] = replace(current, **changes)
        return True

    def stage_claim(self, tx: Any, message: Message, until: datetime) -> None:
        _stage(tx).add(
            "update",
            self.rows,
            message.id,
            lambda current: replace(current, attempts=current.attempts + 1, next_attempt_at=until),
            lambda current: (
                current is not None
                and current.state is Delivery.QUEUED
                and current.attempts == message.attempts
            ),
            lambda: MessageTaken(f"message {message.id} was claimed by another sender"),
        )

    def message_in(self, record: Any) -> Message | None:
        """The message an INSERT record of ``read`` announces."""
        if record.get("eventName") != "INSERT":
            return None
        image = (record.get("dynamodb") or {}).get("NewImage")
        return image if isinstance(image, Message) else None

    def mark_sent(self, message: Message, now: datetime) -> bool:
        return self._update(message, state=Delivery.SENT, sent_at=now, last_error=None)

    def mark_retry(self, message: Message, error: str, at: datetime) -> bool:
        return self._update(message, last_error=error[:500], next_attempt_at=at)

    def mark_ended(self, message: Message, state: Delivery, error: str, now: datetime) -> bool:
        return self._update(message, state=state, last_error=error[:500])

    def due(self, now: datetime, limit: int) -> Iterator[Message]:
        due = sorted(
            (
                m
                for m in self.rows.values()
                if m.state is Delivery.QUEUED and m.next_attempt_at <= now
            ),
            key=lambda m: (m.next_attempt_at, m.id),
        )
        return _after(due, limit)


class FakeCounters:
    def __init__(self) -> None:
        self.rows: dict[str, int] = {}

    def add(self, key: str, window_end: datetime) -> int:
        self.rows[key] = self.rows.get(key, 0) + 1
        return self.rows[key]

    def read(self, keys: list[str]) -> dict[str, int]:
        return {k: self.rows.get(k, 0) for k in keys}


# --- products and subscriptions ----------------------------------------------------------------


def _product_changed() -> Exception:
    return PreconditionFailed("The product was changed or deleted meanwhile; read it again.")


class FakeProducts:
    """Products by id, and the groups that may see them by (product id, group key)."""

    def __init__(self) -> None:
        self.rows: dict[str, Product] = {}
        self.groups: dict[tuple[str, str], str] = {}

    def get(self, product_id: str) -> Product | None:
        return self.rows.get(product_id)

    def stage_create(self, tx: Any, product: Product) -> None:
        _stage(tx).add("put", self.rows, product.id, product, absent, lambda: IdTaken(product.id))

    def stage_replace(self, tx: Any, old: Product, new: Product) -> None:
        _stage(tx).add("put", self.rows, new.id, new, _version_is(old.version), _product_changed)

    def stage_delete(self, tx: Any, product: Product) -> None:
        _stage(tx).add(
            "delete", self.rows, product.id, None, _version_is(product.version), _product_changed
        )
        for group_id in self.group_ids(product.id):
            _stage(tx).add("delete", self.groups, (product.id, group_id.lower()), None, None, None)

    def iterate(self, after: str | None, budget: int, page_size: int) -> Iterator[Product]:
        rows = (p for i, p in sorted(self.rows.items()) if after is None or i > after)
        return _after(rows, budget)

    def group_ids(self, product_id: str) -> list[str]:
        return [g for (pid, _), g in sorted(self.groups.items()) if pid == product_id]

    def has_group(self, product_id: str, group_id: str) -> bool:
        return (product_id, group_id.lower()) in self.groups

    def link_group(self, product_id: str, group_id: str) -> bool:
        key = (product_id, group_id.lower())
        if key in self.groups:
            return False
        self.groups[key] = group_id
        return True

    def unlink_group(self, product_id: str, group_id: str) -> None:
        self.groups.pop((product_id, group_id.lower()), None)

    def products_of_group(self, group_id: str) -> list[str]:
        return sorted(pid for pid, key in self.groups if key == group_id.lower())


@dataclass(frozen=True)
class FakeKeyRecord:
    """What one read of a key tells a check (the fields of the store's KeyRecord)."""

    subscription_id: str
    slot: str
    owner_id: str | None
    scope: str
    state: SubscriptionState


def _subscription_changed() -> Exception:
    return PreconditionFailed("The subscription was changed or deleted meanwhile; read it again.")


def _key_taken() -> Exception:
    return StateConflict("That key is already used by a subscription; choose another.")


def _limit_reached() -> Exception:
    return LimitReached("The user already has the most subscriptions this product allows.")


def _counted(sub: Subscription) -> tuple[str, str] | None:
    if sub.owner_id and sub.product_id and sub.state in LIVE_STATES:
        return sub.owner_id, sub.product_id
    return None


class FakeSubscriptions:
    """Subscriptions, their keys by hash, and live-subscription counters per user and product."""

    def __init__(self) -> None:
        self.rows: dict[str, Subscription] = {}
        self.keys: dict[str, FakeKeyRecord] = {}
        self.live: dict[tuple[str, str], int] = {}

    def get(self, sid: str) -> Subscription | None:
        return self.rows.get(sid)

    def key(self, key: str) -> FakeKeyRecord | None:
        return self.keys.get(key_hash(key))

    def _key_records(self, sub: Subscription) -> dict[str, FakeKeyRecord]:
        return {
            key_hash(value): FakeKeyRecord(sub.id, slot, sub.owner_id, sub.scope, sub.state)
            for slot, value in (("primary", sub.primary_key), ("secondary", sub.secondary_key))
        }

    def _stage_keys(self, tx: FakeTx, old: Subscription | None, new: Subscription | None) -> None:
        before = self._key_records(old) if old else {}
        after = self._key_records(new) if new else {}
        for digest in before:
            if digest not in after:
                tx.add("delete", self.keys, digest, None, None, None)
        for digest, record in after.items():
            if digest in before:
                tx.add("put", self.keys, digest, record, None, None)
            else:
                tx.add("put", self.keys, digest, record, absent, _key_taken)

    def _stage_counters(
        self, tx: FakeTx, old: Subscription | None, new: Subscription | None, limit: int | None
    ) -> None:
        before = _counted(old) if old else None
        after = _counted(new) if new else None
        if before == after:
            return
        if before:
            tx.add("update", self.live, before, lambda n: (n or 0) - 1, None, None)
        if after:
            condition = None if limit is None else (lambda n: (n or 0) < limit)
            tx.add("update", self.live, after, lambda n: (n or 0) + 1, condition, _limit_reached)

    def stage_create(self, tx: Any, sub: Subscription, limit: int | None) -> None:
        _stage(tx).add("put", self.rows, sub.id, sub, absent, lambda: IdTaken(sub.id))
        self._stage_keys(tx, None, sub)
        self._stage_counters(tx, None, sub, limit)

    def stage_replace(
        self, tx: Any, old: Subscription, new: Subscription, limit: int | None
    ) -> None:
        _stage(tx).add(
            "put", self.rows, new.id, new, _version_is(old.version), _subscription_changed
        )
        self._stage_keys(tx, old, new)
        self._stage_counters(tx, old, new, limit)

    def stage_delete(self, tx: Any, sub: Subscription) -> None:
        _stage(tx).add(
            "delete", self.rows, sub.id, None, _version_is(sub.version), _subscription_changed
        )
        self._stage_keys(tx, sub, None)
        self._stage_counters(tx, sub, None, None)

    def stage_forget_owner(self, tx: Any, owner_id: str, owns_none: bool) -> None:
        """The store's count of an owner's subscriptions, checked as the rows themselves."""
        _stage(tx).add(
            "check",
            {},
            ("owner", owner_id),
            None,
            lambda _: not owns_none or all(s.owner_id != owner_id for s in self.rows.values()),
            lambda: HasSubscriptions(f"User '{owner_id}' may own subscriptions."),
        )

    def iterate(self, after: str | None, budget: int, page_size: int) -> Iterator[Subscription]:
        rows = (s for i, s in sorted(self.rows.items()) if after is None or i > after)
        return _after(rows, budget)

    def of_owner(
        self, owner_id: str, after: str | None, budget: int, page_size: int
    ) -> Iterator[Subscription]:
        rows = (
            s
            for i, s in sorted(self.rows.items())
            if s.owner_id == owner_id and (after is None or i > after)
        )
        return _after(rows, budget)

    def of_product(self, product_id: str, limit: int) -> list[Subscription]:
        return [s for _, s in sorted(self.rows.items()) if s.product_id == product_id][:limit]

    def exists_for_owner(self, owner_id: str) -> bool:
        return any(s.owner_id == owner_id for s in self.rows.values())


# --- audit, groups, templates ------------------------------------------------------------------


class FakeAudit:
    """Events by (stream, event id); ``changes`` are kept as the JSON the real item holds."""

    def __init__(self, retention: timedelta = timedelta(days=400)) -> None:
        self.rows: dict[tuple[str, str], AuditEvent] = {}
        self._retention = retention

    def purge_at(self, event: AuditEvent) -> datetime:
        """When DynamoDB's TTL may collect the event (the real item's ``purge_at``)."""
        return event.time + self._retention

    def _stored(self, event: AuditEvent) -> AuditEvent:
        changes = json.loads(json.dumps(event.changes, default=str)) if event.changes else {}
        return replace(event, changes=changes)

    def stage_put(self, tx: Any, event: AuditEvent) -> None:
        _stage(tx).add("put", self.rows, (event.stream, event.id), self._stored(event), None, None)

    def put(self, event: AuditEvent) -> None:
        self.rows[event.stream, event.id] = self._stored(event)

    def stream(
        self, stream: str, before: str | None, budget: int, page_size: int
    ) -> Iterator[AuditEvent]:
        rows = (
            e
            for (s, i), e in sorted(self.rows.items(), reverse=True)
            if s == stream and (before is None or i < before)
        )
        return _after(rows, budget)

    def month(
        self, month: str, before: str | None, budget: int, page_size: int
    ) -> Iterator[AuditEvent]:
        rows = (
            e
            for e in sorted(self.rows.values(), key=lambda e: e.id, reverse=True)
            if e.time.strftime("%Y-%m") == month and (before is None or e.id < before)
        )
        return _after(rows, budget)


def _group_changed() -> Exception:
    return PreconditionFailed("The group was changed or deleted meanwhile; read it again.")


class FakeGroups:
    """Custom groups by key, memberships by (group key, user id): a GroupStore."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredGroup] = {}
        self.members_rows: dict[tuple[str, str], Membership] = {}

    def get(self, key: str) -> StoredGroup | None:
        return self.rows.get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, StoredGroup]:
        return {k: self.rows[k] for k in sorted(set(keys)) if k in self.rows}

    def stage_create(self, tx: Any, group: StoredGroup, on_taken: Callable[[], Exception]) -> None:
        _stage(tx).add("put", self.rows, group.key, group, absent, on_taken)

    def stage_replace(self, tx: Any, old: StoredGroup, new: StoredGroup) -> None:
        _stage(tx).add("put", self.rows, new.key, new, _version_is(old.version), _group_changed)

    def stage_delete(self, tx: Any, group: StoredGroup) -> None:
        _stage(tx).add(
            "delete", self.rows, group.key, None, _version_is(group.version), _group_changed
        )

    def iterate(self, after_key: str | None, budget: int, page_size: int) -> Iterator[StoredGroup]:
        rows = (g for k, g in sorted(self.rows.items()) if after_key is None or k > after_key)
        return _after(rows, budget)

    def membership(self, key: str, user_id: str) -> Membership | None:
        return self.members_rows.get((key, user_id))

    def stage_add_member(
        self, tx: Any, membership: Membership, on_present: Callable[[], Exception]
    ) -> None:
        def replaceable(current: Membership | None) -> bool:
            return (
                current is None
                or current.generation != membership.generation
                or current.user_since != membership.user_since
            )

        key = (membership.group_key, membership.user_id)
        _stage(tx).add("put", self.members_rows, key, membership, replaceable, on_present)

    def stage_remove_member(self, tx: Any, membership: Membership) -> None:
        key = (membership.group_key, membership.user_id)
        _stage(tx).add("delete", self.members_rows, key, None, None, None)

    def stage_check_member(
        self, tx: Any, membership: Membership, on_fail: Callable[[], Exception]
    ) -> None:
        def unchanged(current: Membership | None) -> bool:
            return (
                current is not None
                and current.generation == membership.generation
                and current.user_since == membership.user_since
            )

        key = (membership.group_key, membership.user_id)
        _stage(tx).add("check", self.members_rows, key, None, unchanged, on_fail)

    def stage_no_member(self, tx: Any, key: str, user_id: str, on_fail: Any) -> None:
        _stage(tx).add("check", self.members_rows, (key, user_id), None, absent, on_fail)

    def members(
        self, key: str, after_user_id: str | None, budget: int, page_size: int
    ) -> Iterator[Membership]:
        rows = (
            m
            for (k, uid), m in sorted(self.members_rows.items())
            if k == key and uid > (after_user_id or "")
        )
        return _after(rows, budget)

    def memberships_of(
        self, user_id: str, after_key: str | None, budget: int, page_size: int
    ) -> Iterator[Membership]:
        rows = (
            m
            for (k, uid), m in sorted(self.members_rows.items())
            if uid == user_id and (after_key is None or k > after_key)
        )
        return _after(rows, budget)

    def remove_memberships(self, memberships: Iterable[Membership]) -> None:
        for m in memberships:
            self.members_rows.pop((m.group_key, m.user_id), None)


def _template_changed() -> Exception:
    return PreconditionFailed("The template was changed meanwhile; read it again.")


class FakeTemplates:
    """Customized templates by name: a TemplateStore."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredTemplate] = {}

    def get(self, name: str) -> StoredTemplate | None:
        return self.rows.get(name)

    def get_many(self, names: Iterable[str]) -> dict[str, StoredTemplate]:
        return {n: self.rows[n] for n in sorted(set(names)) if n in self.rows}

    def stage_put(self, tx: Any, new: StoredTemplate, old: StoredTemplate | None) -> None:
        condition = absent if old is None else _version_is(old.version)
        _stage(tx).add("put", self.rows, new.name, new, condition, _template_changed)

    def stage_delete(self, tx: Any, old: StoredTemplate) -> None:
        _stage(tx).add(
            "delete", self.rows, old.name, None, _version_is(old.version), _template_changed
        )


def _setting_changed() -> Exception:
    return PreconditionFailed("The settings were changed meanwhile; read them again.")


class FakePortal:
    """Portal settings by name and notification recipients: a PortalStore."""

    def __init__(self) -> None:
        self.settings_rows: dict[SettingName, Setting] = {}
        self.recipient_rows: dict[tuple[str, str, str], Recipient] = {}
        self.counts: dict[str, int] = {}

    def setting(self, name: SettingName) -> Setting | None:
        return self.settings_rows.get(name)

    def settings(self) -> dict[SettingName, Setting]:
        return dict(self.settings_rows)

    def stage_put_setting(
        self, tx: Any, new: Setting, old_version: int | None, now: datetime
    ) -> None:
        from chalicelib.store.portal import setting_name_of

        condition = absent if old_version is None else _version_is(old_version)
        _stage(tx).add(
            "put", self.settings_rows, setting_name_of(new), new, condition, _setting_changed
        )

    @staticmethod
    def _key(recipient: Recipient) -> tuple[str, str, str]:
        return (recipient.notification.value, recipient.kind.value, recipient.key)

    def recipients(self, notification: NotificationName | None = None) -> list[Recipient]:
        # DynamoDB's order: by sort key (notification, kind, key).
        return [
            r
            for k, r in sorted(self.recipient_rows.items())
            if notification is None or r.notification is notification
        ]

    def has_recipient(self, recipient: Recipient) -> bool:
        return self._key(recipient) in self.recipient_rows

    def stage_add_recipient(self, tx: Any, recipient: Recipient) -> None:
        name = recipient.notification.value
        _stage(tx).add(
            "put",
            self.recipient_rows,
            self._key(recipient),
            recipient,
            absent,
            lambda: RecipientTaken(recipient.key),
        )
        _stage(tx).add(
            "update",
            self.counts,
            name,
            lambda current: (current or 0) + 1,
            lambda current: (current or 0) < MAX_RECIPIENTS,
            recipient_limit,
        )

    def stage_remove_recipient(self, tx: Any, recipient: Recipient) -> None:
        _stage(tx).add(
            "delete",
            self.recipient_rows,
            self._key(recipient),
            None,
            lambda current: current is not None,
            lambda: RecipientGone(recipient.key),
        )
        _stage(tx).add(
            "update", self.counts, recipient.notification.value, lambda c: (c or 0) - 1, None, None
        )


class FakeStore:
    """The Store of the services: every fake repository, and transactions across them."""

    def __init__(self, audit_retention: timedelta = timedelta(days=400)) -> None:
        self.users = FakeUsers()
        self.links = FakeLinks(self.users)
        self.outbox = FakeOutbox()
        self.counters = FakeCounters()
        self.products = FakeProducts()
        self.subscriptions = FakeSubscriptions()
        self.audit = FakeAudit(audit_retention)
        self.portal = FakePortal()

    def transaction(self) -> FakeTx:
        return FakeTx()

    def dump(self) -> str:
        """Everything stored, as text (a Scan of every table)."""
        return repr([vars(repository) for repository in vars(self).values()])


# --- the mailer --------------------------------------------------------------------------------


@dataclass
class SentMail:
    """One message the fake mailer took, with the helpers tests read links with."""

    to: str
    subject: str
    html: str
    text: str

    def link(self, path: str) -> str:
        """The first link in the text part that goes to ``path``."""
        for url in re.findall(r"https?://\S+", self.text):
            if path in url:
                return url.rstrip(".,)>")
        raise AssertionError(f"no link to {path} in: {self.text}")

    def token(self, path: str) -> str:
        from urllib.parse import parse_qs, urlsplit

        return parse_qs(urlsplit(self.link(path)).query)["token"][0]


class FakeMailer:
    """A Mailer that keeps what it is given, or fails with ``failing`` while that is set."""

    def __init__(self) -> None:
        self.sent: list[SentMail] = []
        self.failing: MailFailed | None = None
        self.attempts = 0

    def send(self, email: OutgoingEmail) -> str:
        self.attempts += 1
        if self.failing is not None:
            raise self.failing
        self.sent.append(SentMail(email.to, email.subject, email.html, email.text))
        return f"fake-{len(self.sent)}"

    def to(self, address: str) -> list[SentMail]:
        return [m for m in self.sent if address in m.to]


# --- services on fakes -------------------------------------------------------------------------


KEYS = ["test-primary-key", "test-secondary-key"]


class Services(BootstrapServices):
    """Every service, built by the composition root (chalicelib/bootstrap.py), on fakes."""

    def __init__(
        self,
        settings: Settings,
        clock: MovableClock,
        store: FakeStore,
        group_store: FakeGroups,
        template_store: FakeTemplates,
        mailer: FakeMailer,
    ) -> None:
        super().__init__(settings, clock, mailer, timer=VirtualTimer())
        self.fake_mailer = mailer
        self.group_store = group_store
        self.template_store = template_store
        # The composition root's own members, replaced by the fakes (cached_property slots).
        self.__dict__.update(
            store=store,
            group_repository=group_store,
            template_repository=template_store,
            management_keys=lambda: KEYS,
        )


def services(**settings: Any) -> Services:
    """Services on fresh fakes; ``settings`` replace fields of the test settings."""
    base = replace(get_settings(), **settings)
    return Services(
        settings=base,
        clock=MovableClock(),
        store=FakeStore(timedelta(days=base.audit_retention_days)),
        group_store=FakeGroups(),
        template_store=FakeTemplates(),
        mailer=FakeMailer(),
    )
