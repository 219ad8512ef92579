"""The user repository: rows to dataclasses, DynamoDB failures to domain errors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import GlobalSecondaryIndex

from chalicelib.domain.tx import Tx
from chalicelib.domain.users import Identity, User, UserOrder, UserSort, UserState, order_key
from chalicelib.errors import EmailTaken, IdTaken, PreconditionFailed, ResourceNotFound
from chalicelib.store.models import LIST_PARTITION, EmailLockItem, IdentityMap, UserItem
from chalicelib.store.subscriptions import owner_count_item
from chalicelib.store.tx import dynamodb_errors, is_condition_failure, writes


def to_user(item: UserItem) -> User:
    """The account an item holds (also read by the link repository's combined read)."""
    return User(
        id=item.id,
        email=item.email,
        first_name=item.first_name,
        last_name=item.last_name,
        state=UserState(item.state),
        note=item.note,
        registration_date=item.registration_date,
        identities=tuple(Identity(i.provider, i.id) for i in item.identities or []),
        version=int(item.version),
        password_hash=item.password_hash,
        token_epoch=item.token_epoch or "",
        reset_link=item.reset_link or "",
    )


def _to_item(user: User) -> UserItem:
    return UserItem(
        id=user.id,
        kind=LIST_PARTITION,
        email=user.email,
        email_key=user.email_key,
        first_name=user.first_name,
        last_name=user.last_name,
        state=user.state.value,
        note=user.note,
        registration_date=user.registration_date,
        identities=[IdentityMap(provider=i.provider, id=i.id) for i in user.identities],
        version=user.version,
        password_hash=user.password_hash,
        token_epoch=user.token_epoch or None,
        reset_link=user.reset_link or None,
        sort_name=order_key(user, UserSort.NAME),
        sort_state=order_key(user, UserSort.STATE),
        sort_registered=order_key(user, UserSort.REGISTERED),
    )


# The index of each order, and its range key attribute.
_ORDER_INDEXES: dict[UserSort, tuple[GlobalSecondaryIndex[UserItem], UnicodeAttribute]] = {
    UserSort.NAME: (UserItem.name_order, UserItem.sort_name),
    UserSort.EMAIL: (UserItem.email_order, UserItem.email_key),
    UserSort.STATE: (UserItem.state_order, UserItem.sort_state),
    UserSort.REGISTERED: (UserItem.registered_order, UserItem.sort_registered),
}
# Above every character a key can hold: the end of a key prefix.
_AFTER_ALL = "\U0010ffff"


def _unchanged(user: User) -> Condition:
    """Still as read: its version, and its reset link (recorded without a new version)."""
    version: Condition = UserItem.version == user.version
    reset: Condition = (
        UserItem.reset_link == user.reset_link
        if user.reset_link
        else UserItem.reset_link.does_not_exist()
    )
    both: Condition = version & reset
    return both


def _changed_meanwhile() -> Exception:
    return PreconditionFailed("The user was changed or deleted meanwhile; read it again.")


class UserRepository:
    """Users and their email locks in DynamoDB."""

    def get(self, user_id: str) -> User | None:
        with dynamodb_errors():
            try:
                return to_user(UserItem.get(user_id, consistent_read=True))
            except UserItem.DoesNotExist:
                return None

    def require(self, user_id: str) -> User:
        user = self.get(user_id)
        if user is None:
            raise ResourceNotFound(f"User not found: '{user_id}'.")
        return user

    def stage_create(self, tx: Tx, user: User) -> None:
        """Write the user and claim its email, in the caller's transaction."""
        writes(tx).put(_to_item(user), UserItem.id.does_not_exist(), lambda: IdTaken(user.id))
        writes(tx).put(
            EmailLockItem(email_key=user.email_key, user_id=user.id),
            EmailLockItem.email_key.does_not_exist(),
            lambda: EmailTaken(f"Email '{user.email}' is already in use."),
        )
        # Its subscriptions' count starts at 0 (deleting the account checks it).
        writes(tx).put(owner_count_item(user.id), None, None)

    def stage_replace(
        self, tx: Tx, old: User, new: User, on_fail: Callable[[], Exception] | None = None
    ) -> None:
        """Overwrite ``old`` if nobody changed it since it was read; moves the email lock."""
        writes(tx).put(_to_item(new), _unchanged(old), on_fail or _changed_meanwhile)
        if new.email_key != old.email_key:
            writes(tx).put(
                EmailLockItem(email_key=new.email_key, user_id=new.id),
                EmailLockItem.email_key.does_not_exist(),
                lambda: EmailTaken(f"Email '{new.email}' is already in use."),
            )
            writes(tx).delete(
                EmailLockItem(email_key=old.email_key),
                EmailLockItem.user_id == old.id,
                _changed_meanwhile,
            )

    def stage_record_reset(self, tx: Tx, user: User, link_id: str) -> None:
        """Make ``link_id`` the account's one usable reset link, killing the one before.

        No new version (the account's fields do not change, so an admin's ETag stays good); a
        replace that read the user before this commits fails on the reset link instead.
        """
        previous = (
            UserItem.reset_link == user.reset_link
            if user.reset_link
            else UserItem.reset_link.does_not_exist()
        )
        writes(tx).update(
            UserItem(id=user.id),
            [UserItem.reset_link.set(link_id)],
            UserItem.id.exists() & previous,
            _changed_meanwhile,
        )

    def stage_check(self, tx: Tx, user: User, on_fail: Callable[[], Exception]) -> None:
        """Fail the caller's transaction unless ``user`` is still as read (its version)."""
        writes(tx).check(UserItem(id=user.id), UserItem.version == user.version, on_fail)

    def stage_delete(self, tx: Tx, user: User) -> None:
        """Remove the user and free its email, if nobody changed it since it was read."""
        writes(tx).delete(_to_item(user), UserItem.version == user.version, _changed_meanwhile)
        writes(tx).delete(
            EmailLockItem(email_key=user.email_key),
            EmailLockItem.user_id == user.id,
            _changed_meanwhile,
        )

    def get_many(self, user_ids: Iterable[str]) -> dict[str, User]:
        """BatchGetItem (PynamoDB sends 100 keys a request); missing users are absent."""
        with dynamodb_errors():
            return {i.id: to_user(i) for i in UserItem.batch_get(sorted(set(user_ids)))}

    def find_by_email(self, email_key: str) -> User | None:
        """One Query on the email index."""
        with dynamodb_errors():
            for item in UserItem.email_index.query(email_key, limit=1):
                return to_user(item)
        return None

    def fill_order_keys(self) -> int:
        """Write the sorted indexes' keys on every account stored without them; the number done.

        Accounts written before the sorted lists existed have no keys, so no sorted page shows
        them. One Query of the id-ordered list index (every account, no Scan: the functions'
        policies grant none) keeping those missing a key, then one conditional update each: an
        account changed meanwhile got its keys from that write, and is left alone.
        """
        missing = (
            UserItem.sort_name.does_not_exist()
            | UserItem.sort_state.does_not_exist()
            | UserItem.sort_registered.does_not_exist()
        )
        filled = 0
        with dynamodb_errors():
            for item in UserItem.list_index.query(LIST_PARTITION, filter_condition=missing):
                user = to_user(item)
                try:
                    item.update(
                        actions=[
                            UserItem.sort_name.set(order_key(user, UserSort.NAME)),
                            UserItem.sort_state.set(order_key(user, UserSort.STATE)),
                            UserItem.sort_registered.set(order_key(user, UserSort.REGISTERED)),
                        ],
                        condition=UserItem.version == user.version,
                    )
                except PynamoDBException as exc:
                    if not is_condition_failure(exc):
                        raise
                    continue
                filled += 1
        return filled

    def iterate(self, after_id: str | None, budget: int, page_size: int) -> Iterator[User]:
        """Users in id order after ``after_id``, reading at most ``budget`` items."""
        condition = UserItem.id > after_id if after_id is not None else None
        with dynamodb_errors():
            for item in UserItem.list_index.query(
                LIST_PARTITION, condition, limit=budget, page_size=page_size
            ):
                yield to_user(item)

    def iterate_sorted(
        self,
        order: UserOrder,
        after: str | None,
        budget: int,
        page_size: int,
        prefix: str | None = None,
    ) -> Iterator[User]:
        """Users in ``order`` after the key ``after`` (exclusive), reading at most ``budget``.

        One Query on the order's index. ``prefix`` keeps to keys that start with it (one state
        of the state index); DynamoDB takes one condition on a range key, so a prefix with a
        start is a ``between`` that includes the start, whose row is then skipped.
        """
        index, attribute = _ORDER_INDEXES[order.sort]
        forward = not order.descending
        condition: Condition | None = None
        if prefix is not None and after is not None:
            low, high = (after, prefix + _AFTER_ALL) if forward else (prefix, after)
            condition = attribute.between(low, high)
        elif prefix is not None:
            condition = attribute.startswith(prefix)
        elif after is not None:
            condition = attribute > after if forward else attribute < after
        skip_start = prefix is not None and after is not None
        with dynamodb_errors():
            for item in index.query(
                LIST_PARTITION,
                condition,
                scan_index_forward=forward,
                limit=budget + (1 if skip_start else 0),
                page_size=page_size,
            ):
                user = to_user(item)
                if skip_start and order_key(user, order.sort) == after:
                    continue
                yield user
