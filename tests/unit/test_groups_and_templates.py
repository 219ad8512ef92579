"""Group and template rules, and bounded reads of members and groups, without AWS."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.custom_groups import (
    Membership,
    StoredGroup,
    apply_group_changes,
    group_id_problem,
    read_group_changes,
)
from chalicelib.domain.email_templates import pascal_name, read_template_changes
from chalicelib.domain.groups import DEVELOPERS, Group
from chalicelib.domain.odata import parse_filter
from chalicelib.domain.paging import READ_BUDGET, Cursor
from chalicelib.domain.users import USER_FILTER_FIELDS, Identity, User, UserState
from chalicelib.errors import ValidationFailed
from chalicelib.mail.templates import template_parameters
from chalicelib.services.groups import GroupService
from chalicelib.services.listing import ListQuery, bounded_page
from chalicelib.services.templates import template_problems

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class RecordedEvents:
    """An audit store that keeps what it is given (the staged events are not committed here)."""

    def __init__(self):
        self.events = []

    def stage_put(self, tx, event):
        self.events.append(event)

    def put(self, event):
        self.events.append(event)


def recorded():
    from chalicelib.services.audit import Audit

    return Audit(RecordedEvents(), lambda: NOW)


def targets(exc_info):
    return [d.target for d in exc_info.value.details]


# --- group rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [("partners", True), ("a b", True), ("g" * 256, True), ("", False), ("g" * 257, False)]
    + [(f"a{c}b", False) for c in "*#&+:<>?/\\\x00\n"]
    + [(" lead", False), ("trail ", False)],
)
def test_group_ids(value, ok):
    assert (group_id_problem(value) is None) is ok


def test_a_new_group_is_custom_and_keeps_the_id_it_was_created_with():
    changes = read_group_changes({"properties": {"displayName": "P"}}, require_display_name=True)
    group = apply_group_changes("Partners", None, changes)
    assert group == Group("Partners", "P", None, False, "custom", None)


def test_changes_keep_what_they_do_not_send_and_may_clear_the_description():
    current = Group("p", "P", "old", False, "custom", None)
    kept = apply_group_changes(
        "p", current, read_group_changes({"properties": {}}, require_display_name=False)
    )
    assert kept == current
    cleared = apply_group_changes(
        "p",
        current,
        read_group_changes({"properties": {"description": None}}, require_display_name=False),
    )
    assert cleared.description is None


def test_type_and_external_id_must_agree():
    external = read_group_changes(
        {"properties": {"displayName": "E", "type": "External", "externalId": "aad://t/groups/1"}},
        require_display_name=True,
    )
    assert apply_group_changes("e", None, external).type == "external"
    with pytest.raises(ValidationFailed) as no_id:
        apply_group_changes(
            "e",
            None,
            read_group_changes(
                {"properties": {"displayName": "E", "type": "external"}}, require_display_name=True
            ),
        )
    assert targets(no_id) == ["externalId"]


def test_every_bad_group_field_is_reported_at_once():
    with pytest.raises(ValidationFailed) as bad:
        read_group_changes(
            {"properties": {"displayName": "", "description": 5, "type": "system"}},
            require_display_name=True,
        )
    assert targets(bad) == ["displayName", "description", "type"]


def test_a_membership_applies_only_to_the_group_and_account_it_was_made_for():
    group = StoredGroup(Group("p", "P", None, False, "custom"), version=7, generation=5)
    user = make_user("ada")
    row = Membership("p", "p", "ada", 5, user.registration_date, NOW)
    assert row.applies_to(group, user)
    assert not row.applies_to(StoredGroup(group.group, 9, 9), user)
    reborn = make_user("ada", registered=NOW + timedelta(days=1))
    assert not row.applies_to(group, reborn)


# --- template rules ----------------------------------------------------------------------------


def test_pascal_names():
    assert pascal_name("inviteUserNotificationMessage") == "InviteUserNotificationMessage"


def test_template_parameters_take_apims_names_in_any_case():
    known = template_parameters("accountClosedDeveloper")
    changes = read_template_changes(
        {"properties": {"parameters": [{"name": "DEVFIRSTNAME"}]}}, known
    )
    assert [p.name for p in changes.parameters] == ["DevFirstName"]


@pytest.mark.parametrize(
    ("name", "subject", "html", "target", "words"),
    [
        ("inviteUserNotificationMessage", "S", "<p>{{ ConfirmUrl }}{% if %}</p>", "body", "Syntax"),
        ("inviteUserNotificationMessage", "S {{ X }}", "<p>{{ ConfirmUrl }}</p>", "subject", "X"),
        ("inviteUserNotificationMessage", "S", "<p>Hello</p>", "body", "ConfirmUrl"),
        ("accountClosedDeveloper", "S", "<p>{{ ''.__class__ }}</p>", "body", "not allowed"),
        ("accountClosedDeveloper", "S", "<p>$Unknown</p>", "body", "Unknown"),
        ("accountClosedDeveloper", "S", "x" * (100 * 1024), "body", "100 KB"),
    ],
)
def test_template_problems_name_their_field(name, subject, html, target, words):
    from chalicelib.mail.render import text_from_html

    problems = template_problems(name, subject, html, text_from_html(html))
    assert problems
    assert all(p.target == target for p in problems), problems
    assert any(words in p.message for p in problems), problems


def test_a_valid_apim_template_has_no_problems():
    html = '<p>Dear $DevFirstName,</p><p><a href="$ConfirmUrl">Accept</a></p>'
    from chalicelib.mail.render import text_from_html

    assert (
        template_problems("inviteUserNotificationMessage", "Hi", html, text_from_html(html)) == []
    )


# --- bounded reads -----------------------------------------------------------------------------


def make_user(user_id, first="Common", registered=NOW):
    return User(
        id=user_id,
        email=f"{user_id}@example.com",
        first_name=first,
        last_name="X",
        state=UserState.ACTIVE,
        note=None,
        registration_date=registered,
        identities=(Identity("Basic", f"{user_id}@example.com"),),
        version=1,
    )


class FakeUsers:
    def __init__(self, users, batches=None):
        self.by_id = {u.id: u for u in users}
        self.batches = batches if batches is not None else []

    def get_many(self, ids):
        ids = list(ids)
        self.batches.append(len(ids))
        return {i: self.by_id[i] for i in ids if i in self.by_id}

    def get(self, user_id):
        return self.by_id.get(user_id)

    def require(self, user_id):
        return self.by_id[user_id]


@dataclass
class FakeStore:
    users: FakeUsers


@dataclass
class CountingGroups:
    """An in-memory group repository that counts the rows it hands out."""

    groups: dict[str, StoredGroup]
    rows: list[Membership]
    users: dict[str, User]
    read: int = 0
    batches: list[int] = field(default_factory=list)

    def get(self, key):
        return self.groups.get(key)

    def get_many(self, keys):
        keys = list(keys)
        self.batches.append(len(keys))
        return {k: self.groups[k] for k in keys if k in self.groups}

    def members(self, key, after_user_id, budget, page_size):
        rows = sorted(
            (r for r in self.rows if r.group_key == key and r.user_id > (after_user_id or "")),
            key=lambda r: r.user_id,
        )
        for row in rows[:budget]:
            self.read += 1
            yield row

    def memberships_of(self, user_id, after_key, budget, page_size):
        rows = sorted(
            (r for r in self.rows if r.user_id == user_id and r.group_key > (after_key or "")),
            key=lambda r: r.group_key,
        )
        for row in rows[:budget]:
            self.read += 1
            yield row


def big_group(count, rare_every):
    group = StoredGroup(Group("big", "Big", None, False, "custom"), 1, 1)
    users = [
        make_user(f"u{i:06d}", "Rare" if i % rare_every == 0 else "Common") for i in range(count)
    ]
    rows = [Membership("big", "big", u.id, 1, NOW, NOW) for u in users]
    repo = CountingGroups({"big": group}, rows, {u.id: u for u in users})
    store = FakeStore(FakeUsers(users, repo.batches))
    return GroupService(store, repo, lambda: NOW, audit=recorded()), repo


def query(text="", top=100, cursor=None):
    flt = parse_filter(text, USER_FILTER_FIELDS) if text else None
    return ListQuery(flt, top, cursor or Cursor())


def test_a_sparse_member_filter_pages_within_the_budget_and_finds_everything():
    service, repo = big_group(5000, rare_every=700)
    found, cursor, requests = [], Cursor(), 0
    while True:
        repo.read = 0
        page = service.members("big", query("firstName eq 'Rare'", cursor=cursor))
        requests += 1
        assert repo.read <= READ_BUDGET + 1
        assert max(repo.batches) <= 100  # BatchGetItem's limit
        found += [u.id for u in page.items]
        if page.next is None:
            break
        cursor = page.next
    assert found == [f"u{i:06d}" for i in range(0, 5000, 700)]
    assert requests == 5


def test_an_unfiltered_member_page_reads_one_more_row_than_it_returns():
    service, repo = big_group(500, rare_every=1)
    page = service.members("big", query(top=10))
    assert [u.id for u in page.items] == [f"u{i:06d}" for i in range(10)]
    assert repo.read == 11
    assert page.next == Cursor("u000009", 0)


def test_rows_that_no_longer_apply_count_against_the_budget_but_are_not_shown():
    service, repo = big_group(30, rare_every=1)
    stale = {f"u{i:06d}" for i in range(0, 30, 2)}
    repo.rows = [
        Membership(r.group_key, r.group_id, r.user_id, 0 if r.user_id in stale else 1, NOW, NOW)
        for r in repo.rows
    ]
    page = service.members("big", query())
    assert [u.id for u in page.items] == [f"u{i:06d}" for i in range(1, 30, 2)]
    assert page.count == 15


def test_a_users_groups_put_developers_in_id_order_among_the_custom_ones():
    groups = {
        key: StoredGroup(Group(key, key.title(), None, False, "custom"), 1, 1)
        for key in ("alpha", "zeta")
    }
    user = make_user("ada")
    rows = [Membership(k, k, "ada", 1, NOW, NOW) for k in groups]
    repo = CountingGroups(groups, rows, {"ada": user})
    service = GroupService(FakeStore(FakeUsers([user])), repo, lambda: NOW, audit=recorded())
    page = service.user_groups("ada", query())
    assert [g.group.id for g in page.items] == ["alpha", DEVELOPERS.id, "zeta"]
    second = service.user_groups("ada", query(top=1, cursor=Cursor("alpha", 0)))
    assert [g.group.id for g in second.items] == [DEVELOPERS.id]


def test_bounded_page_counts_only_on_a_complete_first_page():
    rows = [(f"k{i}", i) for i in range(5)]
    whole = bounded_page(iter(rows), ListQuery(None, 10, Cursor()), 10, lambda _: True)
    assert (whole.items, whole.next, whole.count) == ([0, 1, 2, 3, 4], None, 5)
    first = bounded_page(iter(rows), ListQuery(None, 2, Cursor()), 2, lambda _: True)
    assert (first.items, first.next, first.count) == ([0, 1], Cursor("k1", 0), None)
