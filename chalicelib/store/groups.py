"""The group repository: custom groups and their memberships in one table, rows to dataclasses."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from chalicelib.domain.custom_groups import Membership, StoredGroup
from chalicelib.domain.groups import Group
from chalicelib.domain.tx import Tx
from chalicelib.errors import PreconditionFailed
from chalicelib.store.models import GROUP_LIST_PARTITION, GroupItem
from chalicelib.store.tx import dynamodb_errors, writes

# store/users.py owns the row <-> User mapping; members are read in batches here because the
# user repository has no batch read yet.

GROUP_SK = "#group"
MEMBER_PREFIX = "user#"
# DynamoDB's limit of keys per BatchGetItem.
BATCH_GET_MAX = 100


def _pk(key: str) -> str:
    return f"group#{key}"


def _member_sk(user_id: str) -> str:
    return MEMBER_PREFIX + user_id


def _to_group(item: GroupItem) -> StoredGroup:
    return StoredGroup(
        group=Group(
            id=item.group_id,
            display_name=item.display_name or "",
            description=item.description,
            built_in=False,
            type=item.group_type or "custom",
            external_id=item.external_id,
        ),
        version=int(item.version or 0),
        generation=int(item.generation),
    )


def _group_item(stored: StoredGroup) -> GroupItem:
    group = stored.group
    return GroupItem(
        pk=_pk(stored.key),
        sk=GROUP_SK,
        sort_key=stored.key,
        group_id=group.id,
        generation=stored.generation,
        kind=GROUP_LIST_PARTITION,
        display_name=group.display_name,
        description=group.description,
        group_type=group.type,
        external_id=group.external_id,
        version=stored.version,
    )


def _to_membership(item: GroupItem) -> Membership:
    assert item.member is not None and item.user_since is not None
    return Membership(
        group_key=item.sort_key,
        group_id=item.group_id,
        user_id=item.member,
        generation=int(item.generation),
        user_since=item.user_since,
        added_at=item.added_at or item.user_since,
    )


def _membership_item(membership: Membership) -> GroupItem:
    return GroupItem(
        pk=_pk(membership.group_key),
        sk=_member_sk(membership.user_id),
        sort_key=membership.group_key,
        group_id=membership.group_id,
        generation=membership.generation,
        member=membership.user_id,
        user_since=membership.user_since,
        added_at=membership.added_at,
    )


def _changed_meanwhile() -> Exception:
    return PreconditionFailed("The group was changed or deleted meanwhile; read it again.")


def _chunks(values: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class GroupRepository:
    """Custom groups (``sk = #group``) and memberships (``sk = user#<id>``), keyed by group."""

    def get(self, key: str) -> StoredGroup | None:
        with dynamodb_errors():
            try:
                return _to_group(GroupItem.get(_pk(key), GROUP_SK, consistent_read=True))
            except GroupItem.DoesNotExist:
                return None

    def get_many(self, keys: Iterable[str]) -> dict[str, StoredGroup]:
        """BatchGet, 100 keys a request; missing groups are absent from the result."""
        found: dict[str, StoredGroup] = {}
        wanted = sorted(set(keys))
        with dynamodb_errors():
            for chunk in _chunks(wanted, BATCH_GET_MAX):
                for item in GroupItem.batch_get([(_pk(k), GROUP_SK) for k in chunk]):
                    group = _to_group(item)
                    found[group.key] = group
        return found

    def stage_create(self, tx: Tx, group: StoredGroup, on_taken: Callable[[], Exception]) -> None:
        writes(tx).put(_group_item(group), GroupItem.pk.does_not_exist(), on_taken)

    def stage_replace(self, tx: Tx, old: StoredGroup, new: StoredGroup) -> None:
        """Overwrite ``old`` if nobody changed it since it was read."""
        writes(tx).put(_group_item(new), GroupItem.version == old.version, _changed_meanwhile)

    def stage_delete(self, tx: Tx, group: StoredGroup) -> None:
        writes(tx).delete(
            _group_item(group), GroupItem.version == group.version, _changed_meanwhile
        )

    def iterate(self, after_key: str | None, budget: int, page_size: int) -> Iterator[StoredGroup]:
        """Custom groups in key order after ``after_key``, reading at most ``budget`` items."""
        condition = GroupItem.sort_key > after_key if after_key is not None else None
        with dynamodb_errors():
            for item in GroupItem.list_index.query(
                GROUP_LIST_PARTITION, condition, limit=budget, page_size=page_size
            ):
                yield _to_group(item)

    def membership(self, key: str, user_id: str) -> Membership | None:
        with dynamodb_errors():
            try:
                item = GroupItem.get(_pk(key), _member_sk(user_id), consistent_read=True)
            except GroupItem.DoesNotExist:
                return None
        return _to_membership(item)

    def stage_add_member(
        self, tx: Tx, membership: Membership, on_present: Callable[[], Exception]
    ) -> None:
        """Add, or replace a row left over from a former group or account of the same id."""
        condition = (
            GroupItem.pk.does_not_exist()
            | (GroupItem.generation != membership.generation)
            | (GroupItem.user_since != membership.user_since)
        )
        writes(tx).put(_membership_item(membership), condition, on_present)

    def stage_remove_member(self, tx: Tx, membership: Membership) -> None:
        writes(tx).delete(_membership_item(membership), None, None)

    def stage_check_member(
        self, tx: Tx, membership: Membership, on_fail: Callable[[], Exception]
    ) -> None:
        """Fail the caller's transaction unless the membership row is still there, as read."""
        condition = (GroupItem.generation == membership.generation) & (
            GroupItem.user_since == membership.user_since
        )
        writes(tx).check(_membership_item(membership), condition, on_fail)

    def stage_no_member(
        self, tx: Tx, key: str, user_id: str, on_fail: Callable[[], Exception]
    ) -> None:
        """Fail the caller's transaction if ``user_id`` has a row in the group ``key``."""
        writes(tx).check(
            GroupItem(pk=_pk(key), sk=_member_sk(user_id)), GroupItem.pk.does_not_exist(), on_fail
        )

    def members(
        self, key: str, after_user_id: str | None, budget: int, page_size: int
    ) -> Iterator[Membership]:
        """A group's membership rows in user-id order: one Query on the group's partition.

        Every member sorts after ``user#`` and the group item (``#group``) before it.
        """
        condition = GroupItem.sk > _member_sk(after_user_id or "")
        with dynamodb_errors():
            for item in GroupItem.query(
                _pk(key), condition, consistent_read=True, limit=budget, page_size=page_size
            ):
                yield _to_membership(item)

    def memberships_of(
        self, user_id: str, after_key: str | None, budget: int, page_size: int
    ) -> Iterator[Membership]:
        """A user's membership rows in group-key order: one Query on the member index."""
        condition = GroupItem.sort_key > after_key if after_key is not None else None
        with dynamodb_errors():
            for item in GroupItem.member_index.query(
                user_id, condition, limit=budget, page_size=page_size
            ):
                yield _to_membership(item)

    def remove_memberships(self, memberships: Iterable[Membership]) -> None:
        """Delete rows outside any transaction (clean-up after a group or account is gone)."""
        with dynamodb_errors(), GroupItem.batch_write() as batch:
            for membership in memberships:
                batch.delete(_membership_item(membership))
