"""Groups and memberships: custom and external groups, and the built-in ones the system manages."""

from __future__ import annotations

import builtins
import heapq
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Protocol, TypeVar

from chalicelib.domain.audit import diff
from chalicelib.domain.clock import Clock
from chalicelib.domain.custom_groups import (
    BUILT_IN_VERSION,
    GroupChanges,
    Membership,
    StoredGroup,
    apply_group_changes,
    group_key,
    group_record,
)
from chalicelib.domain.etag import Expected, check_expected, next_version
from chalicelib.domain.groups import BUILT_IN_GROUPS, DEVELOPERS, Group, built_in
from chalicelib.domain.odata import equality_value
from chalicelib.domain.paging import READ_BUDGET, Page
from chalicelib.domain.users import User, UserState, filter_record
from chalicelib.errors import (
    IdTaken,
    LastAdministrator,
    MethodNotAllowed,
    PreconditionFailed,
    ResourceNotFound,
    StateConflict,
)
from chalicelib.services.audit import Audit, Target, user_target
from chalicelib.services.committed import after_commit
from chalicelib.services.listing import ListQuery, bounded_page, list_users, read_budget
from chalicelib.services.ports import Store, Tx

T = TypeVar("T")
# Rows of a deleted group removed in the request that deletes it; any beyond are invisible
# (their generation is not that of any group) and are overwritten if the member is added again.
GROUP_CLEANUP_BUDGET = 10_000
# expandGroups reads one membership Query per user, so such a page holds at most this many users.
EXPAND_GROUPS_MAX_USERS = 100
_PAGE = 100
# The built-in group whose members may use the admin console; only the system adds them.
ADMINISTRATORS = BUILT_IN_GROUPS[0]


class GroupStore(Protocol):
    """What the service needs from the group repository."""

    def get(self, key: str) -> StoredGroup | None: ...
    def get_many(self, keys: Iterable[str]) -> dict[str, StoredGroup]: ...
    def stage_create(
        self, tx: Tx, group: StoredGroup, on_taken: Callable[[], Exception]
    ) -> None: ...
    def stage_replace(self, tx: Tx, old: StoredGroup, new: StoredGroup) -> None: ...
    def stage_delete(self, tx: Tx, group: StoredGroup) -> None: ...
    def iterate(
        self, after_key: str | None, budget: int, page_size: int
    ) -> Iterator[StoredGroup]: ...
    def membership(self, key: str, user_id: str) -> Membership | None: ...
    def stage_add_member(
        self, tx: Tx, membership: Membership, on_present: Callable[[], Exception]
    ) -> None: ...
    def stage_remove_member(self, tx: Tx, membership: Membership) -> None: ...
    def stage_check_member(
        self, tx: Tx, membership: Membership, on_fail: Callable[[], Exception]
    ) -> None: ...
    def stage_no_member(
        self, tx: Tx, key: str, user_id: str, on_fail: Callable[[], Exception]
    ) -> None: ...
    def members(
        self, key: str, after_user_id: str | None, budget: int, page_size: int
    ) -> Iterator[Membership]: ...
    def memberships_of(
        self, user_id: str, after_key: str | None, budget: int, page_size: int
    ) -> Iterator[Membership]: ...
    def remove_memberships(self, memberships: Iterable[Membership]) -> None: ...


class Memberships(Protocol):
    """What the account service needs: a user's groups, and leaving them all on delete."""

    def groups_of(self, user: User, limit: int = READ_BUDGET) -> builtins.list[Group]: ...
    def is_administrator(self, user: User) -> bool: ...
    def stage_not_administrator(
        self, tx: Tx, user: User, on_fail: Callable[[], Exception]
    ) -> None: ...
    def other_active_administrator(self, user: User) -> User | None: ...
    def leave_all(self, user_id: str, registered: datetime) -> None: ...


class _AlreadyMember(Exception):
    """Internal: the membership row exists and applies, so the PUT changes nothing."""


def _built_in(group: Group) -> StoredGroup:
    return StoredGroup(group, BUILT_IN_VERSION, 0)


def _read_only(group: Group) -> MethodNotAllowed:
    return MethodNotAllowed(f"'{group.id}' is a built-in group; it cannot be changed or deleted.")


def _system_membership(group: Group) -> MethodNotAllowed:
    who = (
        "every account is a member"
        if group is DEVELOPERS
        else "accounts cannot be added to it or removed from it"
    )
    return MethodNotAllowed(
        f"The membership of the built-in group '{group.id}' is managed by the system: {who}."
    )


def _group_matches(query: ListQuery) -> Callable[[StoredGroup], bool]:
    flt = query.filter
    return lambda g: flt is None or flt.evaluate(group_record(g.group))


class GroupService:
    """The Group and GroupUser use cases."""

    def __init__(self, store: Store, groups: GroupStore, clock: Clock, *, audit: Audit) -> None:
        self._audit = audit
        self._store = store
        self._users = store.users
        self._groups = groups
        self._clock = clock

    # --- groups ----------------------------------------------------------------------------

    def _find(self, group_id: str) -> StoredGroup | None:
        system = built_in(group_id)
        return _built_in(system) if system else self._groups.get(group_key(group_id))

    def exists(self, group_id: str) -> bool:
        return self._find(group_id) is not None

    def get(self, group_id: str) -> StoredGroup:
        found = self._find(group_id)
        if found is None:
            raise ResourceNotFound(f"Group not found: '{group_id}'.")
        return found

    def _require_custom(self, group_id: str) -> StoredGroup:
        found = self._groups.get(group_key(group_id))
        if found is None:
            raise ResourceNotFound(f"Group not found: '{group_id}'.")
        return found

    def list(self, query: ListQuery) -> Page[StoredGroup]:
        """Built-in and custom groups in id order; ``name eq`` is one GetItem."""
        matches = _group_matches(query)
        if query.filter is not None and query.cursor.after is None:
            name = equality_value(query.filter, "name")
            if isinstance(name, str):
                found = self._find(name)
                hits = [found] if found and matches(found) else []
                hits = hits[query.cursor.skip :][: query.top]
                return Page(hits, None, len(hits))
        budget = read_budget(query)
        after = query.cursor.after
        system = (_built_in(g) for g in BUILT_IN_GROUPS if after is None or g.id > after)
        custom = self._groups.iterate(after, budget + 1, min(budget + 1, _PAGE))
        merged = heapq.merge(system, custom, key=lambda g: g.key)
        return bounded_page(((g.key, g) for g in merged), query, budget, matches)

    def create_or_replace(
        self, group_id: str, changes: GroupChanges, expected: Expected | None
    ) -> tuple[StoredGroup, bool]:
        """PUT: create (True) or replace (False); fields a replace omits are kept."""
        system = built_in(group_id)
        if system:
            raise _read_only(system)
        key = group_key(group_id)
        # A create that loses a race becomes a replace, and a replace whose group vanished
        # meanwhile becomes a create again; three rounds settle any realistic race.
        for _ in range(3):
            now = self._clock()
            if expected is None:
                try:
                    return self.create(group_id, changes), True
                except IdTaken:
                    pass
            existing = self._groups.get(key)
            if existing is None:
                if expected is not None:
                    raise PreconditionFailed(
                        f"Group '{group_id}' does not exist; If-Match cannot match."
                    )
                continue
            check_expected(expected, existing.version)
            updated = StoredGroup(
                apply_group_changes(group_id, existing.group, changes),
                next_version(existing.version, now),
                existing.generation,
            )
            tx = self._store.transaction()
            self._groups.stage_replace(tx, existing, updated)
            self._stage_changed(tx, existing, updated)
            tx.commit()
            return updated, False
        raise PreconditionFailed(f"Group '{group_id}' kept changing; read it again.")

    def create(self, group_id: str, changes: GroupChanges) -> StoredGroup:
        """A new custom group; IdTaken when the id is in use (never a replace)."""
        system = built_in(group_id)
        if system:
            raise IdTaken(group_id)
        version = next_version(0, self._clock())
        fresh = StoredGroup(apply_group_changes(group_id, None, changes), version, version)
        tx = self._store.transaction()
        self._groups.stage_create(tx, fresh, lambda: IdTaken(group_id))
        self._audit.stage(tx, "group.created", _target(fresh), diff({}, _fields(fresh.group)))
        tx.commit()
        return fresh

    def update(self, group_id: str, changes: GroupChanges, expected: Expected) -> StoredGroup:
        """PATCH: change the fields sent."""
        system = built_in(group_id)
        if system:
            raise _read_only(system)
        existing = self._require_custom(group_id)
        expected.check(existing.version)
        updated = StoredGroup(
            apply_group_changes(group_id, existing.group, changes),
            next_version(existing.version, self._clock()),
            existing.generation,
        )
        tx = self._store.transaction()
        self._groups.stage_replace(tx, existing, updated)
        self._stage_changed(tx, existing, updated)
        tx.commit()
        return updated

    def delete(self, group_id: str, expected: Expected) -> None:
        """DELETE: the group goes at once, then its membership rows."""
        system = built_in(group_id)
        if system:
            raise _read_only(system)
        existing = self._require_custom(group_id)
        expected.check(existing.version)
        tx = self._store.transaction()
        self._groups.stage_delete(tx, existing)
        self._audit.stage(tx, "group.deleted", _target(existing), diff(_fields(existing.group), {}))
        tx.commit()

        # From here on no row of this generation applies to anything (the group is gone).
        # Rows of a newer generation belong to a group created again meanwhile: kept.
        def clean_up() -> None:
            rows = self._groups.members(existing.key, None, GROUP_CLEANUP_BUDGET, 1000)
            self._groups.remove_memberships(m for m in rows if m.generation <= existing.generation)

        after_commit(clean_up, "removing the group's membership rows")

    def _stage_changed(self, tx: Tx, old: StoredGroup, new: StoredGroup) -> None:
        self._audit.stage(
            tx, "group.changed", _target(new), diff(_fields(old.group), _fields(new.group))
        )

    # --- memberships -----------------------------------------------------------------------

    def _custom_for_membership(self, group_id: str) -> StoredGroup:
        system = built_in(group_id)
        if system:
            raise _system_membership(system)
        return self._require_custom(group_id)

    def add_member(self, group_id: str, user_id: str) -> tuple[User, bool]:
        """PUT membership: (user, True) when added, (user, False) when already a member."""
        group = self._custom_for_membership(group_id)
        user = self._users.require(user_id)
        return user, self._add(group, user)

    def _add(self, group: StoredGroup, user: User) -> bool:
        """Store the membership with its event; False when it was there already."""
        membership = Membership(
            group_key=group.key,
            group_id=group.group.id,
            user_id=user.id,
            generation=group.generation,
            user_since=user.registration_date,
            added_at=self._clock(),
        )
        tx = self._store.transaction()
        self._groups.stage_add_member(tx, membership, _AlreadyMember)
        self._audit.stage(tx, "group.member_added", user_target(user), _membership(group))
        try:
            tx.commit()
        except _AlreadyMember:
            return False
        return True

    def remove_member(self, group_id: str, user_id: str) -> None:
        """DELETE membership; removing someone who is not a member changes nothing."""
        self._remove(self._custom_for_membership(group_id), self._users.require(user_id))

    def _remove(self, group: StoredGroup, user: User) -> None:
        membership = self._groups.membership(group.key, user.id)
        if membership is None:
            return
        tx = self._store.transaction()
        self._groups.stage_remove_member(tx, membership)
        self._audit.stage(tx, "group.member_removed", user_target(user), _membership(group))
        tx.commit()

    def is_member(self, group_id: str, user_id: str) -> bool:
        """HEAD membership: Developers holds every account, Administrators the system's admins."""
        system = built_in(group_id)
        if system is ADMINISTRATORS:
            user = self._users.get(user_id)
            return user is not None and self.is_administrator(user)
        if system:
            return system is DEVELOPERS and self._users.get(user_id) is not None
        group = self._require_custom(group_id)
        membership = self._groups.membership(group.key, user_id)
        if membership is None:
            return False
        user = self._users.get(user_id)
        return user is not None and membership.applies_to(group, user)

    def members(self, group_id: str, query: ListQuery) -> Page[User]:
        """A group's users in id order: one Query on the group's partition, users in batches."""
        system = built_in(group_id)
        if system is DEVELOPERS:
            return list_users(self._users, query)
        if system and system is not ADMINISTRATORS:
            return Page([], None, 0)
        group = _built_in(system) if system else self._require_custom(group_id)
        budget = read_budget(query)
        rows = self._groups.members(
            group.key, query.cursor.after, budget + 1, min(budget + 1, _PAGE)
        )
        flt = query.filter
        return bounded_page(
            self._member_rows(group, rows, min(budget + 1, _PAGE)),
            query,
            budget,
            lambda u: flt is None or flt.evaluate(filter_record(u)),
        )

    def _member_rows(
        self, group: StoredGroup, rows: Iterator[Membership], chunk: int
    ) -> Iterator[tuple[str, User | None]]:
        for batch in _batches(rows, chunk):
            users = self._users.get_many(m.user_id for m in batch)
            for m in batch:
                user = users.get(m.user_id)
                current = user is not None and m.applies_to(group, user)
                yield m.user_id, user if current else None

    def user_groups(self, user_id: str, query: ListQuery) -> Page[StoredGroup]:
        """A user's groups in id order: Developers, then one Query on the member index."""
        user = self._users.require(user_id)
        budget = read_budget(query)
        after = query.cursor.after
        system = (_built_in(DEVELOPERS),) if after is None or DEVELOPERS.id > after else ()
        rows = self._groups.memberships_of(user.id, after, budget + 1, min(budget + 1, _PAGE))
        custom = self._groups_of_rows(user, rows, min(budget + 1, _PAGE))
        merged = heapq.merge(((g.key, g) for g in system), custom, key=lambda row: row[0])
        return bounded_page(merged, query, budget, _group_matches(query))

    def _groups_of_rows(
        self, user: User, rows: Iterator[Membership], chunk: int
    ) -> Iterator[tuple[str, StoredGroup | None]]:
        for batch in _batches(rows, chunk):
            groups = _with_administrators(self._groups.get_many(m.group_key for m in batch))
            for m in batch:
                group = groups.get(m.group_key)
                current = group is not None and m.applies_to(group, user)
                yield m.group_key, group if current else None

    def groups_of(self, user: User, limit: int = READ_BUDGET) -> builtins.list[Group]:
        """Every group of one account in id order, reading at most ``limit`` rows."""
        rows = self._groups.memberships_of(user.id, None, limit, min(limit, _PAGE))
        custom = [g.group for _, g in self._groups_of_rows(user, rows, _PAGE) if g is not None]
        return _in_id_order(custom)

    def groups_of_many(self, users: builtins.list[User]) -> dict[str, builtins.list[Group]]:
        """expandGroups: one membership Query per user, then their groups in BatchGets."""
        rows = {
            u.id: list(self._groups.memberships_of(u.id, None, READ_BUDGET, _PAGE)) for u in users
        }
        groups = self._groups.get_many(m.group_key for ms in rows.values() for m in ms)
        groups = _with_administrators(groups)
        expanded: dict[str, builtins.list[Group]] = {}
        for user in users:
            custom = [
                groups[m.group_key].group
                for m in rows[user.id]
                if m.group_key in groups and m.applies_to(groups[m.group_key], user)
            ]
            expanded[user.id] = _in_id_order(custom)
        return expanded

    # --- administrators: the system's membership (the CLI), never the API's ------------------

    def add_administrator(self, user_id: str) -> bool:
        """Put an account in the built-in Administrators group: True when added.

        Only the system calls this (``apim-users create-admin``); the API's PUT of a membership
        in a built-in group stays 405. The row is stored like a custom membership, so deleting
        the account removes it, and it never applies to a later account with the same id.
        """
        return self._add(_built_in(ADMINISTRATORS), self._users.require(user_id))

    def remove_administrator(self, user_id: str) -> None:
        """Take an account out of Administrators (the system's; the API's DELETE stays 405).

        Refused for the last active administrator, as blocking or deleting it is: nobody could
        use the console any more. The other administrator found is checked unchanged in the same
        transaction, so two racing removals cannot both succeed.
        """
        group = _built_in(ADMINISTRATORS)
        user = self._users.require(user_id)
        membership = self._groups.membership(group.key, user.id)
        if membership is None or not membership.applies_to(group, user):
            return
        tx = self._store.transaction()
        if user.state is UserState.ACTIVE:
            other = self.other_active_administrator(user)
            row = None if other is None else self._groups.membership(group.key, other.id)
            if other is None or row is None:
                raise LastAdministrator(
                    f"{user.first_name} {user.last_name} is the last active administrator, so "
                    "the account stays one: nobody could use the console any more. Make another "
                    "administrator first (apim-users create-admin)."
                )

            # Both the other account and its membership: two administrators removing each other
            # at once change only membership rows, which the account's version does not see.
            def raced() -> Exception:
                return StateConflict(
                    "Another administrator's account changed at the same moment; try again."
                )

            self._users.stage_check(tx, other, raced)
            self._groups.stage_check_member(tx, row, raced)
        self._groups.stage_remove_member(tx, membership)
        self._audit.stage(tx, "group.member_removed", user_target(user), _membership(group))
        tx.commit()

    def is_administrator(self, user: User) -> bool:
        """One consistent GetItem: is this account (not a former one of its id) an admin?"""
        group = _built_in(ADMINISTRATORS)
        membership = self._groups.membership(group.key, user.id)
        return membership is not None and membership.applies_to(group, user)

    def stage_not_administrator(self, tx: Tx, user: User, on_fail: Callable[[], Exception]) -> None:
        """Fail the caller's transaction if the account has an Administrators row (checked in
        the transaction: no read). A row left by a former account of the same id fails it too;
        the caller then reads whether the row applies."""
        self._groups.stage_no_member(tx, _built_in(ADMINISTRATORS).key, user.id, on_fail)

    def other_active_administrator(self, user: User) -> User | None:
        """An active administrator other than ``user``, or None (at most READ_BUDGET rows read).

        One Query of the Administrators rows, then their accounts in batches, stopping at the
        first one found.
        """
        group = _built_in(ADMINISTRATORS)
        rows = self._groups.members(group.key, None, READ_BUDGET, _PAGE)
        for _, other in self._member_rows(group, rows, _PAGE):
            if other is not None and other.id != user.id and other.state is UserState.ACTIVE:
                return other
        return None

    def leave_all(self, user_id: str, registered: datetime) -> None:
        """Remove a deleted account's membership rows (the relay's task, after the delete).

        Until then no listing shows the account (members are read with their accounts, and a
        row names the registration date of the account it was made for); rows of a later
        account with the same id stay.
        """
        rows = self._groups.memberships_of(user_id, None, GROUP_CLEANUP_BUDGET, _PAGE)
        self._groups.remove_memberships(m for m in rows if m.user_since == registered)


def _with_administrators(groups: dict[str, StoredGroup]) -> dict[str, StoredGroup]:
    """Stored groups plus Administrators, whose membership rows name a group never stored."""
    return {**groups, ADMINISTRATORS.id: _built_in(ADMINISTRATORS)}


def _in_id_order(custom: builtins.list[Group]) -> builtins.list[Group]:
    """Developers among the custom groups, in the order ``GET /users/{id}/groups`` uses."""
    return sorted([DEVELOPERS, *custom], key=lambda g: group_key(g.id))


def _batches(rows: Iterator[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _target(stored: StoredGroup) -> Target:
    return Target("group", stored.group.id)


def _fields(group: Group) -> dict[str, object]:
    return {
        "displayName": group.display_name,
        "description": group.description,
        "type": group.type,
        "externalId": group.external_id,
    }


def _membership(group: StoredGroup) -> dict[str, dict[str, object]]:
    return {"group": {"old": None, "new": group.group.id}}
