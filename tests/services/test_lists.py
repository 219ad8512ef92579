"""$filter and paging rules of the user and group lists (tests/api checks the HTTP edge of both)."""

import pytest

from chalicelib.api.groups import GROUP_FILTER_FIELDS
from chalicelib.domain.custom_groups import read_group_changes
from chalicelib.domain.paging import Cursor
from chalicelib.domain.users import USER_FILTER_FIELDS, UserState
from tests.services.conftest import create_user, follow, query

PEOPLE = [
    ("alan", "Alan", "Turing", "alan@example.com", "blocked"),
    ("barbara", "Barbara", "Liskov", "barbara@example.org", "active"),
    ("claude", "Claude", "Shannon", "claude@example.com", "active"),
    ("donald", "Donald", "Knuth", "don@example.org", "active"),
    ("edsger", "Edsger", "Dijkstra", "edsger@example.com", "blocked"),
]
BUILT_IN = ["administrators", "developers", "guests"]


@pytest.fixture
def people(svc):
    for uid, first, last, email, state in PEOPLE:
        create_user(svc, uid, email, firstName=first, lastName=last, state=state, note=f"n-{uid}")
    return svc


def user_ids(page):
    return [u.id for u in page.items]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("email eq 'claude@example.com'", ["claude"]),
        ("email eq 'CLAUDE@Example.com'", ["claude"]),
        ("name eq 'donald'", ["donald"]),
        ("state eq 'blocked'", ["alan", "edsger"]),
        ("endswith(email,'.org')", ["barbara", "donald"]),
        ("startswith(lastName,'S')", ["claude"]),
        ("contains(firstName,'ar')", ["barbara"]),
        ("substringof('nuth',lastName)", ["donald"]),
        ("firstName ge 'C' and firstName lt 'E'", ["claude", "donald"]),
        ("state eq 'blocked' or name eq 'barbara'", ["alan", "barbara", "edsger"]),
        (
            "(state eq 'active') and (endswith(email,'.com') or lastName eq 'Knuth')",
            ["claude", "donald"],
        ),
        ("note ne 'n-alan'", ["barbara", "claude", "donald", "edsger"]),
        ("email eq 'claude@example.com' and state eq 'blocked'", []),
        (
            "registrationDate ge 2000-01-01T00:00:00Z",
            ["alan", "barbara", "claude", "donald", "edsger"],
        ),
        ("registrationDate lt 2000-01-01", []),
    ],
)
def test_user_filters(people, expression, expected):
    page = people.accounts.list(query(USER_FILTER_FIELDS, expression))
    assert user_ids(page) == expected


def test_every_user_in_id_order_with_a_count(people):
    page = people.accounts.list(query(USER_FILTER_FIELDS))
    assert user_ids(page) == ["alan", "barbara", "claude", "donald", "edsger"]
    assert (page.count, page.next) == (5, None)
    assert people.store.users.get("alan").state is UserState.BLOCKED


def test_user_pages_follow_the_cursor_to_the_end_with_the_filter(people):
    pages = follow(people.accounts.list, query(USER_FILTER_FIELDS, "name ne 'barbara'", top=2))
    assert [[u.id for u in p] for p in pages] == [["alan", "claude"], ["donald", "edsger"]]


def test_the_cursor_carries_the_remaining_skip(people):
    first = people.accounts.list(query(USER_FILTER_FIELDS, top=2, cursor=Cursor(None, 1)))
    assert user_ids(first) == ["barbara", "claude"]
    following = people.accounts.list(query(USER_FILTER_FIELDS, top=2, cursor=first.next))
    assert user_ids(following) == ["donald", "edsger"]
    assert following.next is None


def test_empty_user_list(svc):
    page = svc.accounts.list(query(USER_FILTER_FIELDS))
    assert (page.items, page.count, page.next) == ([], 0, None)


@pytest.fixture
def catalogue(svc):
    for group_id, body in (
        ("aad", {"displayName": "Entra", "type": "external", "externalId": "aad://t/groups/1"}),
        ("beta", {"displayName": "Beta testers", "description": "Early access"}),
        ("partners", {"displayName": "Partners", "description": "Companies we work with"}),
        ("zeta", {"displayName": "Zeta"}),
    ):
        svc.groups.create(
            group_id, read_group_changes({"properties": body}, require_display_name=True)
        )
    return svc


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("name eq 'beta'", ["beta"]),
        ("name eq 'DEVELOPERS'", ["developers"]),
        ("name eq 'nobody'", []),
        ("startswith(displayName,'be')", ["beta"]),
        ("contains(description,'work')", ["partners"]),
        ("contains(description,'built-in')", BUILT_IN),
        ("externalId eq 'aad://t/groups/1'", ["aad"]),
        ("name eq 'beta' or name eq 'zeta'", ["beta", "zeta"]),
        ("displayName ge 'P' and displayName lt 'Z'", ["partners"]),
    ],
)
def test_group_filters(catalogue, expression, expected):
    page = catalogue.groups.list(query(GROUP_FILTER_FIELDS, expression))
    assert [g.group.id for g in page.items] == expected


def test_groups_merge_built_in_and_custom_in_id_order_and_page(catalogue):
    everything = ["aad", "administrators", "beta", "developers", "guests", "partners", "zeta"]
    whole = catalogue.groups.list(query(GROUP_FILTER_FIELDS))
    assert [g.group.id for g in whole.items] == everything
    assert whole.count == 7
    pages = follow(catalogue.groups.list, query(GROUP_FILTER_FIELDS, top=2))
    assert [[g.group.id for g in p] for p in pages] == [everything[i : i + 2] for i in (0, 2, 4, 6)]
    first = catalogue.groups.list(query(GROUP_FILTER_FIELDS, top=2))
    assert first.count is None  # given only when everything fits in one page
    skipped = catalogue.groups.list(query(GROUP_FILTER_FIELDS, top=3, cursor=Cursor(None, 2)))
    assert [g.group.id for g in skipped.items] == everything[2:5]
    filtered = follow(catalogue.groups.list, query(GROUP_FILTER_FIELDS, "name ne 'x'", top=1))
    assert [g.group.id for p in filtered for g in p] == everything
