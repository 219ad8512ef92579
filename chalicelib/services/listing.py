"""Bounded list pages over rows read in key order: one request reads at most READ_BUDGET rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from chalicelib.domain.odata import Expr
from chalicelib.domain.paging import READ_BUDGET, Cursor, Page

T = TypeVar("T")


@dataclass(frozen=True)
class ListQuery:
    """A validated list request."""

    filter: Expr | None
    top: int
    cursor: Cursor


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
