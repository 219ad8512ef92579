"""Bounded list pages over rows read in key order: one request reads at most READ_BUDGET rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from chalicelib.domain.odata import Comparison, Expr, equality_value
from chalicelib.domain.paging import READ_BUDGET, Cursor, Page
from chalicelib.domain.users import (
    User,
    UserOrder,
    UserSort,
    UserState,
    email_key,
    filter_record,
    order_key,
    state_prefix,
)
from chalicelib.services.ports import Users

T = TypeVar("T")


@dataclass(frozen=True)
class ListQuery:
    """A validated list request; ``order`` (users only) reads one of the sorted indexes, the
    cursor's ``after`` then being the last key read in that order."""

    filter: Expr | None
    top: int
    cursor: Cursor
    order: UserOrder | None = None


def read_budget(query: ListQuery) -> int:
    """Rows one list request may read: enough for the page unless filtering, at most 1,000."""
    if query.filter is None:
        return min(READ_BUDGET, query.cursor.skip + query.top)
    return READ_BUDGET


def bounded_page(
    rows: Iterable[tuple[str, T | None]],
    query: ListQuery,
    budget: int,
    matches: Callable[[T], bool],
) -> Page[T]:
    """One page from ``(key, record)`` rows in key order, reading at most ``budget`` rows.

    A None record is a row that no longer applies (it counts as read). One row past the budget
    tells whether anything is left, so the last page has no nextLink. ``count`` is given when
    the whole result fits in the first page.
    """
    skip = query.cursor.skip
    items: list[T] = []
    read = 0
    last_read = query.cursor.after
    for key, record in rows:
        if read == budget or len(items) == query.top:
            return Page(items, Cursor(last_read, skip if read == budget else 0), None)
        read += 1
        last_read = key
        if record is None or not matches(record):
            continue
        if skip:
            skip -= 1
            continue
        items.append(record)
    first_page = query.cursor.after is None
    return Page(items, None, query.cursor.skip - skip + len(items) if first_page else None)


def list_users(users: Users, query: ListQuery) -> Page[User]:
    """One page of users; reads at most READ_BUDGET items, whatever the filter and skip.

    ``email eq`` is one indexed query and ``name eq`` one GetItem.
    """
    flt = query.filter
    if flt is not None and query.cursor.after is None:
        email = equality_value(flt, "email")
        name = equality_value(flt, "name")
        found: User | None = None
        if isinstance(email, str):
            found = users.find_by_email(email_key(email))
        elif isinstance(name, str):
            found = users.get(name)
        if isinstance(email, str) or isinstance(name, str):
            hits = [found] if found and flt.evaluate(filter_record(found)) else []
            hits = hits[query.cursor.skip :][: query.top]
            return Page(hits, None, len(hits))
    budget = read_budget(query)

    def matches(user: User) -> bool:
        return flt is None or flt.evaluate(filter_record(user))

    if query.order is not None:
        return _sorted_page(users, query, query.order, budget, matches)
    rows = ((u.id, u) for u in users.iterate(query.cursor.after, budget + 1, min(budget + 1, 200)))
    return bounded_page(rows, query, budget, matches)


def _chunk(limit: int, largest: int = 200) -> int:
    """A page size for reading ``limit`` items in as few Queries as possible, without the
    last one reading far past the limit (DynamoDB charges every item a Query reads)."""
    requests = -(-limit // largest)
    return -(-limit // requests)


def _sorted_page(
    users: Users, query: ListQuery, order: UserOrder, budget: int, matches: Callable[[User], bool]
) -> Page[User]:
    """A page in ``order``; a filter on one state, sorted by name or state, reads that state's
    keys only (the state index holds them together, by name)."""
    prefix = None
    wanted = equality_value(query.filter, "state") if query.filter is not None else None
    if isinstance(wanted, str) and order.sort in {UserSort.NAME, UserSort.STATE}:
        try:
            prefix = state_prefix(UserState(wanted.lower()))
        except ValueError:
            return Page([], None, 0)
        order = UserOrder(UserSort.STATE, order.descending)
        if isinstance(query.filter, Comparison):
            # The state is the whole filter, and the index's key answers it: read the page only.
            budget = min(READ_BUDGET, query.cursor.skip + query.top)
    read = users.iterate_sorted(order, query.cursor.after, budget + 1, _chunk(budget + 1), prefix)
    return bounded_page(((order_key(u, order.sort), u) for u in read), query, budget, matches)
