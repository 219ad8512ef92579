"""The console's Users page and user page: APIM's "Developer portal > Users", step by step.

Users: a table (name, email, state, registration date, groups) with search by name or email,
a state filter and paging; ``+ Add`` and ``+ Invite`` open their forms on the same page. A user's
page has the top bar (Block or Activate, Reset password, Delete), the user's groups, invitations
and recent audit events. Every change calls the service the management API calls; forms carry
the user's version, so a page opened before someone else's change refuses to overwrite it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
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
    render,
    see_other,
    shown_version,
    stale_message,
)
from chalicelib.api.routing import Call, Router
from chalicelib.bootstrap import services
from chalicelib.domain.custom_groups import StoredGroup
from chalicelib.domain.paging import Cursor, decode_cursor, encode_cursor
from chalicelib.domain.users import (
    Confirmation,
    User,
    UserChanges,
    UserState,
    read_user_fields,
    search_filter,
)
from chalicelib.errors import (
    DomainError,
    EmailTaken,
    FieldProblem,
    PreconditionFailed,
    ResourceNotFound,
    StateConflict,
    ValidationFailed,
)
from chalicelib.services.listing import ListQuery

router = Router(management=False, documented=False)
USERS = "/console/users"
USER = USERS + "/{userId}"
PAGE_SIZE = 20
SEARCH_MAX = 100
STATES = ("active", "blocked", "pending")
AUDIT_EVENTS = 10
DONE = {
    "added": "The user was added. It is active and a member of the Developers group.",
    "invited": "The invitation was sent. The user is pending until they accept it.",
    "blocked": "The user is blocked: they cannot sign in or call APIs.",
    "activated": "The user is active again.",
    "reset": "A password reset email was sent to the user.",
    "deleted": "The user was deleted.",
    "group-added": "The user was added to the group.",
    "group-removed": "The user was removed from the group.",
    "resent": "A new invitation was sent; the previous link no longer works.",
    "revoked": "The invitation was revoked; the user stays pending.",
}
FORMS = {"add": "Add user", "invite": "Invite user"}

# One button of a user's page: (call, user id, form fields) -> the response.
Action = Callable[[Call, str, dict[str, str]], Response]


def _user_id(call: Call) -> str:
    return call.params["userId"]


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
        return _users_page(call, admin, 400, kind, values, field_errors(exc.details))
    except EmailTaken:
        taken = {"email": "Another account already uses this email address."}
        return _users_page(call, admin, 409, kind, values, taken)
    done = "invited" if kind == "invite" else "added"
    return see_other(call, f"users/{_q(user.id)}?done={done}")


def _q(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


# --- a user's page -----------------------------------------------------------------------------


def _custom_groups() -> list[StoredGroup]:
    listed = services().groups.list(ListQuery(None, 100, Cursor()))
    return [g for g in listed.items if not g.group.built_in]


def _subscription_count(user_id: str) -> tuple[int, bool]:
    owned = services().subscriptions.of_user(user_id, ListQuery(None, 100, Cursor()))
    return len(owned.items), owned.next is not None


def _events(user_id: str) -> list[Any]:
    """The user's newest audit events (the audit trail's own query, one read)."""
    return services().audit.for_user(user_id, AUDIT_EVENTS)


def _actors(events: list[Any]) -> dict[str, str]:
    """Who acted, by email where the actor is an account (one read per distinct account)."""
    names: dict[str, str] = {}
    for event in events:
        if event.actor in names or event.actor_kind not in {"user", "administrator"}:
            continue
        try:
            names[event.actor] = services().accounts.get(event.actor).email
        except ResourceNotFound:
            names[event.actor] = event.actor
    return names


def _user_page(
    call: Call,
    admin: Admin,
    user: User | None = None,
    status: int = 200,
    *,
    confirm: str | None = None,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    stale: bool = False,
) -> Response:
    user = user or services().accounts.get(_user_id(call))
    groups = services().accounts.groups_of(user.id)
    member_of = {g.id.lower() for g in groups}
    addable = [g.group for g in _custom_groups() if g.group.id.lower() not in member_of]
    confirm = confirm or call.query.get("confirm")
    subscriptions, more = _subscription_count(user.id) if confirm == "delete" else (0, False)
    events = _events(user.id)
    return render(
        call,
        "user.html",
        admin,
        status,
        title=f"{user.first_name} {user.last_name}",
        nav="users",
        user=user,
        version=str(user.version),
        groups=groups,
        addable=addable,
        invitations=services().invitations.list(user.id),
        events=events,
        actors=_actors(events),
        confirm=confirm if confirm in {"reset", "delete"} else None,
        subscriptions=subscriptions,
        more_subscriptions=more,
        message=notice(call, DONE),
        error=stale_message("user") if stale else error,
        errors=errors or {},
        pending=UserState.PENDING,
        blocked=UserState.BLOCKED,
    )


@router.route(USER, "GET")
@page
def user_page(call: Call, admin: Admin) -> Response:
    return _user_page(call, admin)


@router.route(USER, "POST")
@form
def user_action(call: Call, admin: Admin, fields: dict[str, str]) -> Response:
    """The top bar, groups and invitations of a user's page; one action per POST."""
    action = fields.get("action", "")
    handler = _ACTIONS.get(action)
    if handler is None:
        return _user_page(call, admin, status=400, error="Choose one of the page's buttons.")
    user_id = _user_id(call)
    try:
        return handler(call, user_id, fields)
    except PreconditionFailed:
        return _user_page(call, admin, status=409, stale=True)
    except StateConflict as exc:
        if action == "delete":
            errors = {"deleteSubscriptions": friendly(exc.message)}
            return _user_page(call, admin, status=409, confirm="delete", errors=errors)
        return _user_page(call, admin, status=409, error=friendly(exc.message))
    except ValidationFailed as exc:
        first = exc.details[0].message if exc.details else exc.message
        return _user_page(call, admin, status=400, error=friendly(first))
    except DomainError as exc:
        if action in {"add-group", "remove-group"}:
            return _user_page(call, admin, status=409, error=friendly(exc.message))
        raise


def _set_state(state: UserState, done: str) -> Action:
    def act(call: Call, user_id: str, fields: dict[str, str]) -> Response:
        changes = UserChanges(state=state)
        services().accounts.update(user_id, changes, shown_version(fields))
        return see_other(call, f"users/{_q(user_id)}?done={done}")

    return act


def _reset(call: Call, user_id: str, fields: dict[str, str]) -> Response:
    # The reset email has no If-Match of its own; the page's version still guards it.
    services().passwords.send_by_admin(user_id, shown_version(fields))
    return see_other(call, f"users/{_q(user_id)}?done=reset")


def _delete(call: Call, user_id: str, fields: dict[str, str]) -> Response:
    services().accounts.delete(
        user_id,
        shown_version(fields),
        notify=fields.get("notify") == "on",
        delete_subscriptions=fields.get("deleteSubscriptions") == "on",
    )
    return see_other(call, "users?done=deleted")


def _add_group(call: Call, user_id: str, fields: dict[str, str]) -> Response:
    group_id = fields.get("group", "")
    if not group_id:
        raise ValidationFailed([FieldProblem("group", "Choose a group to add the user to.")])
    services().groups.add_member(group_id, user_id)
    return see_other(call, f"users/{_q(user_id)}?done=group-added")


def _remove_group(call: Call, user_id: str, fields: dict[str, str]) -> Response:
    services().groups.remove_member(fields.get("group", ""), user_id)
    return see_other(call, f"users/{_q(user_id)}?done=group-removed")


def _resend(call: Call, user_id: str, fields: dict[str, str]) -> Response:
    services().invitations.resend(user_id)
    return see_other(call, f"users/{_q(user_id)}?done=resent")


def _revoke(call: Call, user_id: str, fields: dict[str, str]) -> Response:
    services().invitations.revoke(user_id)
    return see_other(call, f"users/{_q(user_id)}?done=revoked")


_ACTIONS: dict[str, Action] = {
    "block": _set_state(UserState.BLOCKED, "blocked"),
    "activate": _set_state(UserState.ACTIVE, "activated"),
    "reset": _reset,
    "delete": _delete,
    "add-group": _add_group,
    "remove-group": _remove_group,
    "resend": _resend,
    "revoke": _revoke,
}
