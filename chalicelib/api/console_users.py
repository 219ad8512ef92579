"""The console's Users page: APIM's "Developer portal > Users", step by step.

Users: a table (name, email, state, registration date, groups) with search by name or email,
a state filter and paging; ``+ Add`` and ``+ Invite`` open their forms on the same page. A
user's own page is console_user.py.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from chalice import Response

from chalicelib.api.console import (
    Admin,
    field_errors,
    form,
    notice,
    page,
    q,
    render,
    see_other,
)
from chalicelib.api.routing import Call, Router
from chalicelib.bootstrap import services
from chalicelib.domain.paging import Cursor, decode_cursor, encode_cursor
from chalicelib.domain.users import (
    Confirmation,
    UserState,
    read_user_fields,
    search_filter,
)
from chalicelib.errors import EmailTaken, ValidationFailed
from chalicelib.services.listing import ListQuery

router = Router(management=False, documented=False)
USERS = "/console/users"
PAGE_SIZE = 20
SEARCH_MAX = 100
STATES = ("active", "blocked", "pending")
DONE = {
    "deleted": "The user was deleted.",
}
FORMS = {"add": "Add user", "invite": "Invite user"}


# --- the Users page ----------------------------------------------------------------------------


def _users_page(
    call: Call,
    admin: Admin,
    status: int = 200,
    open_form: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    search = call.query.get("q", "")[:SEARCH_MAX]
    state = call.query.get("state", "")
    state = state if state in STATES else ""
    page_token = call.query.get("page", "")
    cursor = Cursor()
    if page_token:
        try:
            cursor = decode_cursor(page_token)
        except ValidationFailed:
            page_token = ""
    errors = dict(errors or {})
    flt = search_filter(search, UserState(state) if state else None)
    result = services().accounts.list(ListQuery(flt, PAGE_SIZE, cursor))
    groups = services().groups.groups_of_many(result.items)
    kept = {k: v for k, v in (("q", search), ("state", state)) if v}
    next_link = (
        "?" + urlencode({**kept, "page": encode_cursor(result.next)}) if result.next else None
    )
    first_link = "?" + urlencode(kept) if page_token else None
    form_kind = open_form or call.query.get("form")
    return render(
        call,
        "users.html",
        admin,
        status,
        title="Users",
        nav="users",
        users=result.items,
        groups=groups,
        search=search,
        state=state,
        states=STATES,
        next_link=next_link,
        first_link=first_link,
        form_kind=form_kind if form_kind in FORMS else None,
        form_title=FORMS.get(form_kind or ""),
        values=values or {},
        errors=errors,
        message=notice(call, DONE),
    )


@router.route(USERS, "GET")
@page
def users_page(call: Call, admin: Admin) -> Response:
    return _users_page(call, admin)


@router.route(USERS, "POST")
@form
def add_or_invite(call: Call, admin: Admin, fields: dict[str, str]) -> Response:
    """``+ Add`` (active, optional password) or ``+ Invite`` (pending, an invitation email)."""
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
