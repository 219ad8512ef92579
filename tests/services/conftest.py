"""The services' rules on in-memory fakes (tests/fakes.py): no AWS, no HTTP, a clock to move.

Services are built as chalicelib/bootstrap.py builds them, on the fake store and mailer;
tests/contract_store/ checks that the fakes answer like DynamoDB. What the HTTP edge adds (status
codes, bodies, headers) stays tested in tests/api/.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.odata import parse_filter
from chalicelib.domain.paging import Cursor
from chalicelib.domain.users import User, read_draft
from chalicelib.services.listing import ListQuery
from tests.fakes import Services, services


@pytest.fixture
def svc() -> Services:
    return services()


def create_user(svc: Services, user_id: str, email: str | None = None, **props: Any) -> User:
    """What ``PUT /users/{id}`` does with this body (``notify`` aside)."""
    body = {
        "email": email or f"{user_id}@example.com",
        "firstName": props.pop("firstName", "Ada"),
        "lastName": props.pop("lastName", "Lovelace"),
        **props,
    }
    user, created = svc.accounts.create_or_replace(user_id, read_draft({"properties": body}), None)
    assert created
    return user


def query(fields: Any, text: str = "", top: int = 100, cursor: Cursor | None = None) -> ListQuery:
    """What ``$filter``, ``$top`` and ``$skiptoken`` become (api/lists.py)."""
    return ListQuery(parse_filter(text, fields) if text else None, top, cursor or Cursor())


def follow(list_page: Any, first: ListQuery) -> list[list[Any]]:
    """Every page of a list, following ``next`` as nextLink does."""
    pages, q = [], first
    while True:
        page = list_page(q)
        pages.append(page.items)
        if page.next is None:
            return pages
        q = ListQuery(q.filter, q.top, page.next)
