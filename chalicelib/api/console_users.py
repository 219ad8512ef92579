"""The console's Users page: APIM's "Developer portal > Users", step by step.

Users: a table (name, email, state, registration date, groups) with search by name or email,
a state filter and paging; ``+ Add`` and ``+ Invite`` open their forms on the same page. A
user's own page is console_user.py.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, replace
from datetime import UTC
from typing import Any
from urllib.parse import urlencode

from chalice import Response

from chalicelib.api.console import (
    Admin,
    field_errors,
    form,
    friendly,
    notice,
    page,
    q,
    render,
    see_other,
)
from chalicelib.api.html import form_values
from chalicelib.api.routing import Call, Router
from chalicelib.bootstrap import services
from chalicelib.domain.etag import Expected
from chalicelib.domain.odata import Expr
from chalicelib.domain.paging import MAX_TOP, Cursor, decode_cursor, encode_cursor
from chalicelib.domain.users import (
    Confirmation,
    User,
    UserChanges,
    UserOrder,
    UserSort,
    UserState,
    order_key,
    read_user_fields,
    search_filter,
)
from chalicelib.errors import (
    EmailTaken,
    HasSubscriptions,
    PreconditionFailed,
    ResourceNotFound,
    StateConflict,
    ValidationFailed,
)
from chalicelib.services.listing import ListQuery

router = Router(management=False, documented=False)
USERS = "/console/users"
PAGE_SIZES = (20, 50, 100)
SEARCH_MAX = 100
STATES = ("active", "blocked", "pending")
SORTS = {
    UserSort.NAME: "Name",
    UserSort.EMAIL: "Email",
    UserSort.STATE: "State",
    UserSort.REGISTERED: "Registration date",
}
DONE = {
    "deleted": "The user was deleted.",
}
FORMS = {"add": "Add user", "invite": "Invite user"}


# --- the Users page ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ListView:
    """What the Users page lists: search, state, order, page size, and where the page starts."""

    search: str
    state: str
    order: UserOrder
    size: int
    after: Cursor | None
    before: str | None
    at: int

    @property
    def kept(self) -> dict[str, str]:
        """The query of this view without its position (search, state, sort, size)."""
        kept = {"q": self.search, "state": self.state}
        if self.order != DEFAULT_ORDER:
            kept["sort"] = self.order.sort.value
            kept["dir"] = "desc" if self.order.descending else "asc"
        if self.size != PAGE_SIZES[0]:
            kept["size"] = str(self.size)
        return {k: v for k, v in kept.items() if v}

    def link(self, **changes: str) -> str:
        query = {**self.kept, **changes}
        return "users" + ("?" + urlencode(query) if query else "")

    def sort_link(self, sort: UserSort) -> str:
        """A column header's link: sort by it, or the other way when it is the sort already."""
        descending = not self.order.descending if self.order.sort is sort else False
        query = {**self.kept, "sort": sort.value, "dir": "desc" if descending else "asc"}
        return "users?" + urlencode(query)

    @property
    def filter(self) -> Expr | None:
        return search_filter(self.search, UserState(self.state) if self.state else None)


DEFAULT_ORDER = UserOrder(UserSort.NAME)


def _token(raw: str) -> Cursor | None:
    try:
        return decode_cursor(raw) if raw else None
    except ValidationFailed:
        return None


def read_view(call: Call) -> ListView:
    """The list's parameters from the URL; anything unknown falls back to the default."""
    query = call.query
    state = query.get("state", "")
    sort = query.get("sort", "")
    size = query.get("size", "")
    at = query.get("at", "")
    before = _token(query.get("before", ""))
    return ListView(
        search=query.get("q", "")[:SEARCH_MAX],
        state=state if state in STATES else "",
        order=UserOrder(
            UserSort(sort) if sort in UserSort.__members__.values() else UserSort.NAME,
            query.get("dir") == "desc",
        ),
        size=int(size) if size in {str(n) for n in PAGE_SIZES} else PAGE_SIZES[0],
        after=_token(query.get("after", "")),
        before=before.after if before is not None else None,
        at=int(at) if at.isdigit() and len(at) < 10 else 0,
    )


@dataclass(frozen=True)
class ListPage:
    """One page of the list, with its neighbours' links and its range."""

    users: list[User]
    at: int
    total: int | None
    next_link: str | None
    previous_link: str | None


def list_page(view: ListView) -> ListPage:
    """The page the view asks for: after a key (Next), before one (Previous), or the first.

    Previous reads the index the other way from the page's first key, so both directions
    cost the same; when it reaches the start with room left, the first page is read instead
    (so the first page always starts at the first user).
    """
    accounts = services().accounts
    at = view.at
    if view.before is not None:
        back = accounts.list(
            ListQuery(view.filter, view.size, Cursor(view.before), view.order.reversed())
        )
        items = list(reversed(back.items))
        if back.next is not None:
            return _with_links(view, items, max(at - len(items), 0), None, True)
        if len(items) == view.size:  # exactly the first page
            return _with_links(view, items, 0, None, False)
        view = replace(view, before=None, after=None)
    cursor = view.after or Cursor()
    page = accounts.list(ListQuery(view.filter, view.size, cursor, view.order))
    at = at if view.after is not None else 0
    return _with_links(view, page.items, at, page.next, view.after is not None, page.count)


def _with_links(
    view: ListView,
    items: list[User],
    at: int,
    following: Cursor | None,
    has_previous: bool,
    count: int | None = None,
) -> ListPage:
    sort = view.order.sort
    next_link = None
    if items and (following is not None or view.before is not None):
        # After a Previous, the page that follows starts after its last row.
        after = following or Cursor(order_key(items[-1], sort))
        next_link = view.link(after=encode_cursor(after), at=str(at + len(items)))
    previous_link = None
    if items and has_previous:
        first = encode_cursor(Cursor(order_key(items[0], sort)))
        previous_link = view.link(before=first, at=str(at))
    total = count
    if total is None and next_link is None:
        total = at + len(items)
    return ListPage(items, at, total, next_link, previous_link)


def _users_page(
    call: Call,
    admin: Admin,
    status: int = 200,
    open_form: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    view = read_view(call)
    listed = list_page(view)
    pending_view = view.state == UserState.PENDING.value
    invitations = services().invitations.newest_of(listed.users) if pending_view else {}
    groups = {} if pending_view else services().groups.groups_of_many(listed.users)
    form_kind = open_form or call.query.get("form")
    return render(
        call,
        "users.html",
        admin,
        status,
        title="Pending invitations" if pending_view else "Users",
        nav="users",
        users=listed.users,
        listed=listed,
        view=view,
        pending_view=pending_view,
        invitations=invitations,
        groups=groups,
        states=STATES,
        sorts=SORTS,
        page_sizes=PAGE_SIZES,
        export_link="users.csv" + ("?" + urlencode(view.kept) if view.kept else ""),
        form_kind=form_kind if form_kind in FORMS else None,
        form_title=FORMS.get(form_kind or ""),
        values=values or {},
        errors=dict(errors or {}),
        message=notice(call, DONE),
        admin_id=admin.user.id,
    )


@router.route(USERS, "GET")
@page
def users_page(call: Call, admin: Admin) -> Response:
    return _users_page(call, admin)


@router.route(USERS, "POST")
@form
def add_or_invite(call: Call, admin: Admin, fields: dict[str, str]) -> Response:
    """``+ Add`` (active, optional password), ``+ Invite`` (pending, an invitation email), or
    an action on the users selected in the list (``bulk``)."""
    if "bulk" in fields:
        return bulk(call, admin, fields)
    kind = fields.get("kind", "")
    if kind not in FORMS:
        kind = "add"
    given: dict[str, Any] = {
        "email": fields.get("email", "").strip(),
        "firstName": fields.get("firstName", "").strip(),
        "lastName": fields.get("lastName", "").strip(),
    }
    if fields.get("note", "").strip():
        given["note"] = fields["note"].strip()
    if kind == "add" and fields.get("password"):
        given["password"] = fields["password"]
    if kind == "invite":
        given["confirmation"] = Confirmation.INVITE.value
    values = {k: v for k, v in given.items() if k != "password"}
    try:
        draft = read_user_fields(given)
        # The portal's users get generated ids, as in APIM; the email is what people know.
        user, _ = services().accounts.create_or_replace(secrets.token_hex(12), draft, None)
    except ValidationFailed as exc:
        return _users_page(call, admin, 400, kind, values, field_errors(exc.details, values))
    except EmailTaken:
        taken = {"email": "Another account already uses this email address."}
        return _users_page(call, admin, 409, kind, values, taken)
    done = "invited" if kind == "invite" else "added"
    return see_other(call, f"users/{q(user.id)}?done={done}")


# --- bulk: block, activate or delete several users, after one confirmation ----------------------

BULK = {"block": "Block", "activate": "Activate", "delete": "Delete"}
BULK_MAX = max(PAGE_SIZES)


@dataclass(frozen=True)
class BulkRow:
    """One selected user: what will happen to it, or why nothing will."""

    user: User
    skipped: str | None


def _bulk_rows(action: str, users: list[User], admin: Admin) -> list[BulkRow]:
    rows = []
    for user in users:
        skipped = None
        if action in {"block", "delete"} and user.id == admin.user.id:
            skipped = "your own account"
        elif action == "block" and user.state is UserState.BLOCKED:
            skipped = "already blocked"
        elif action == "activate" and user.state is not UserState.BLOCKED:
            skipped = f"{user.state.value}, not blocked"
        rows.append(BulkRow(user, skipped))
    return rows


def _selected(call: Call, name: str) -> list[str]:
    return list(dict.fromkeys(v for v in form_values(call, name) if v))[:BULK_MAX]


def bulk(call: Call, admin: Admin, fields: dict[str, str]) -> Response:
    """The selection from the Users page: one confirmation listing them, then each in turn."""
    action = fields.get("bulk", "")
    if action not in BULK:
        return see_other(call, "users")
    if fields.get("confirm") == "yes":
        return _bulk_apply(call, admin, action, fields)
    ids = _selected(call, "u")
    found = services().accounts.get_many(ids)
    users = [found[i] for i in ids if i in found]
    if not users:
        return _bulk_page(call, admin, action, [], error="Select at least one user first.")
    return _bulk_page(call, admin, action, _bulk_rows(action, users, admin))


def _bulk_page(
    call: Call,
    admin: Admin,
    action: str,
    rows: list[BulkRow],
    *,
    error: str | None = None,
    results: list[tuple[User, str | None]] | None = None,
) -> Response:
    return render(
        call,
        "bulk.html",
        admin,
        400 if error else 200,
        title=f"{BULK[action]} users",
        nav="users",
        action=action,
        verb=BULK[action],
        rows=rows,
        applicable=[r for r in rows if r.skipped is None],
        error=error,
        results=results,
        done=sum(1 for _, problem in results or [] if problem is None),
    )


_BULK_DONE = {"block": "blocked", "activate": "activated", "delete": "deleted"}


def _bulk_apply(call: Call, admin: Admin, action: str, fields: dict[str, str]) -> Response:
    """Each confirmed user with the version the confirmation showed; every outcome listed."""
    versions: dict[str, Expected] = {}
    for entry in _selected(call, "t"):
        user_id, _, version = entry.rpartition(":")
        if user_id and version.isdigit() and int(version) < 2**63:
            versions[user_id] = Expected(int(version))
    found = services().accounts.get_many(versions)
    results: list[tuple[User, str | None]] = []
    for user_id, expected in versions.items():
        user = found.get(user_id)
        if user is None:
            continue
        [row] = _bulk_rows(action, [user], admin)
        if row.skipped is not None:
            results.append((user, f"Not {_BULK_DONE[action]}: {row.skipped}."))
            continue
        try:
            if action == "delete":
                services().accounts.delete(
                    user.id,
                    expected,
                    delete_subscriptions=fields.get("deleteSubscriptions") == "on",
                )
            else:
                state = UserState.BLOCKED if action == "block" else UserState.ACTIVE
                services().accounts.update(user.id, UserChanges(state=state), expected)
        except PreconditionFailed:
            results.append(
                (user, "Not changed: someone changed this user after the confirmation opened.")
            )
        except HasSubscriptions:
            results.append(
                (
                    user,
                    "Not deleted: the account has subscriptions; tick “Also delete their "
                    "subscriptions” to delete them too.",
                )
            )
        except (StateConflict, ResourceNotFound) as exc:
            results.append((user, "Not changed: " + friendly(exc.message)))
        else:
            results.append((user, None))
    return _bulk_page(call, admin, action, [], results=results)


# --- export: the list as CSV --------------------------------------------------------------------

EXPORT_MAX_ROWS = 10_000
# Each request of the export reads at most READ_BUDGET items; a search that matches few users
# stops after this many of them, so one export reads at most 20,000 items.
EXPORT_MAX_REQUESTS = 20
EXPORT_COLUMNS = ("First name", "Last name", "Email", "State", "Registration date", "Note", "Id")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|")


def safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one that could start a formula gets a leading '."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def export_rows(
    view: ListView, max_rows: int = EXPORT_MAX_ROWS, chunk: int = MAX_TOP
) -> tuple[list[list[str]], bool]:
    """The view's users in its order, ``chunk`` a request: (rows, cut short)."""
    rows: list[list[str]] = []
    cursor = Cursor()
    for _ in range(EXPORT_MAX_REQUESTS):
        want = min(chunk, max_rows - len(rows))
        page = services().accounts.list(ListQuery(view.filter, want, cursor, view.order))
        rows.extend(
            [
                u.first_name,
                u.last_name,
                u.email,
                u.state.value,
                u.registration_date.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                u.note or "",
                u.id,
            ]
            for u in page.items
        )
        if page.next is None:
            return rows, False
        if len(rows) >= max_rows:
            return rows, True
        cursor = page.next
    return rows, True


@router.route(USERS + ".csv", "GET")
@page
def export(call: Call, admin: Admin) -> Response:
    """The current search, state and order as CSV (UTF-8 with a BOM, for spreadsheets)."""
    view = read_view(call)
    rows, cut = export_rows(view)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    name = f"users-first-{EXPORT_MAX_ROWS}.csv" if cut else "users.csv"
    return Response(
        body=out.getvalue(),
        status_code=200,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
