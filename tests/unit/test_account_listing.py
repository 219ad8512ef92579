"""Listing reads a bounded number of items per request, whatever the filter, skip or table size."""

from datetime import UTC, datetime

from chalicelib.domain.odata import parse_filter
from chalicelib.domain.paging import READ_BUDGET, Cursor
from chalicelib.domain.users import USER_FILTER_FIELDS, Identity, User, UserState
from chalicelib.services.listing import ListQuery, list_users

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class CountingUsers:
    """An in-memory stand-in for the repository that counts the items it hands out."""

    def __init__(self, count: int, rare_every: int) -> None:
        self.rows = [
            User(
                id=f"u{i:06d}",
                email=f"u{i}@example.com",
                first_name="Rare" if i % rare_every == 0 else "Common",
                last_name="X",
                state=UserState.ACTIVE,
                note=None,
                registration_date=NOW,
                identities=(Identity("Basic", f"u{i}@example.com"),),
                version=1,
            )
            for i in range(count)
        ]
        self.read = 0
        self.lookups = 0

    def iterate(self, after_id, budget, page_size):
        rows = [r for r in self.rows if after_id is None or r.id > after_id][:budget]
        for row in rows:
            self.read += 1
            yield row

    def find_by_email(self, key):
        self.lookups += 1
        return next((r for r in self.rows if r.email == key), None)

    def get(self, user_id):
        self.lookups += 1
        return next((r for r in self.rows if r.id == user_id), None)


class Listing:
    def __init__(self, users):
        self.users = users

    def list(self, q):
        return list_users(self.users, q)


def service(users):
    return Listing(users)


def query(text, top=100, cursor=None):
    flt = parse_filter(text, USER_FILTER_FIELDS) if text else None
    return ListQuery(flt, top, cursor or Cursor())


def test_a_sparse_filter_pages_within_the_budget_and_finds_everything():
    users = CountingUsers(5000, rare_every=700)
    accounts = service(users)
    found, requests, cursor = [], 0, Cursor()
    while True:
        users.read = 0
        page = accounts.list(query("firstName eq 'Rare'", cursor=cursor))
        requests += 1
        assert users.read <= READ_BUDGET + 1  # the budget plus one item that tells if more exist
        found += [u.id for u in page.items]
        if page.next is None:
            break
        cursor = page.next
    assert found == [f"u{i:06d}" for i in range(0, 5000, 700)]
    assert requests == 5


def test_a_large_skip_is_spread_over_pages_without_losing_its_place():
    users = CountingUsers(3000, rare_every=1)
    accounts = service(users)
    cursor, items = Cursor(None, 2500), []
    while True:
        users.read = 0
        page = accounts.list(query("", top=3, cursor=cursor))
        assert users.read <= READ_BUDGET + 1  # the budget plus one item that tells if more exist
        if page.items:
            items = [u.id for u in page.items]
            break
        cursor = page.next
    assert items == ["u002500", "u002501", "u002502"]


def test_unfiltered_page_reads_one_more_than_it_returns():
    users = CountingUsers(500, rare_every=1)
    page = service(users).list(query("", top=100))
    assert len(page.items) == 100
    assert users.read == 101
    assert page.next == Cursor("u000099", 0)


def test_email_equality_is_one_lookup_not_a_walk():
    users = CountingUsers(5000, rare_every=1)
    page = service(users).list(query("email eq 'U4321@example.com' and lastName eq 'X'"))
    assert [u.id for u in page.items] == ["u004321"]
    assert users.read == 0
    assert users.lookups == 1
