"""The console's Groups page: the groups, ``+ Add`` a custom group, a group's members."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

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
from chalicelib.domain.custom_groups import GROUP_ID_MAX, group_id_problem, read_group_fields
from chalicelib.domain.paging import Cursor, decode_cursor, encode_cursor
from chalicelib.domain.users import EMAIL_MAX, email_is
from chalicelib.errors import (
    DomainError,
    FieldProblem,
    IdTaken,
    PreconditionFailed,
    ResourceNotFound,
    ValidationFailed,
)
from chalicelib.services.listing import ListQuery

router = Router(management=False, documented=False)
GROUPS = "/console/groups"
GROUP = GROUPS + "/{groupId}"
PAGE_SIZE = 50
DONE = {
    "added": "The group was added.",
    "deleted": "The group was deleted.",
    "member-added": "The user was added to the group.",
    "member-removed": "The user was removed from the group.",
}


def derived_id(name: str) -> str:
    """A group id from its name: lower case, words joined by hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:GROUP_ID_MAX]


def _cursor(call: Call) -> Cursor:
    token = call.query.get("page", "")
    try:
        return decode_cursor(token) if token else Cursor()
    except ValidationFailed:
        return Cursor()


def _groups_page(
    call: Call,
    admin: Admin,
    status: int = 200,
    show_form: bool = False,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    result = services().groups.list(ListQuery(None, PAGE_SIZE, _cursor(call)))
    next_link = "?" + urlencode({"page": encode_cursor(result.next)}) if result.next else None
    return render(
        call,
        "groups.html",
        admin,
        status,
        title="Groups",
        nav="groups",
        groups=result.items,
        next_link=next_link,
        show_form=show_form or call.query.get("form") == "add",
        values=values or {},
        errors=errors or {},
        message=notice(call, DONE),
    )


@router.route(GROUPS, "GET")
@page
def groups_page(call: Call, admin: Admin) -> Response:
    return _groups_page(call, admin)


@router.route(GROUPS, "POST")
@form
def add_group(call: Call, admin: Admin, fields: dict[str, str]) -> Response:
    """A custom group; an id already taken is refused here rather than replaced."""
    name = fields.get("displayName", "").strip()
    given_id = fields.get("groupId", "").strip()
    group_id = given_id or derived_id(name)
    values = {
        "displayName": name,
        "groupId": given_id,
        "description": fields.get("description", "").strip(),
    }
    given = {"displayName": name}
    if values["description"]:
        given["description"] = values["description"]
    problems = []
    if not name:
        problems.append(FieldProblem("displayName", "Give the group a name."))
    elif not group_id:
        problems.append(
            FieldProblem("groupId", "Choose an id: the name has no letters or digits to use.")
        )
    elif problem := group_id_problem(group_id):
        problems.append(problem)
    else:
        try:
            changes = read_group_fields(given, require_display_name=True)
            services().groups.create(group_id, changes)
        except ValidationFailed as exc:
            problems = exc.details
        except IdTaken:
            problems.append(FieldProblem("groupId", f"A group with the id '{group_id}' exists."))
    if problems:
        return _groups_page(call, admin, 400, True, values, field_errors(problems))
    return see_other(call, f"groups/{quote(group_id, safe='')}?done=added")


def _group_page(
    call: Call,
    admin: Admin,
    status: int = 200,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    confirm: bool = False,
) -> Response:
    stored = services().groups.get(call.params["groupId"])
    members = services().groups.members(stored.group.id, ListQuery(None, PAGE_SIZE, _cursor(call)))
    next_link = "?" + urlencode({"page": encode_cursor(members.next)}) if members.next else None
    return render(
        call,
        "group.html",
        admin,
        status,
        title=stored.group.display_name,
        nav="groups",
        group=stored.group,
        version=str(stored.version),
        members=members.items,
        next_link=next_link,
        confirm=(confirm or call.query.get("confirm") == "delete") and not stored.group.built_in,
        message=notice(call, DONE),
        error=error,
        values=values or {},
        errors=errors or {},
    )


@router.route(GROUP, "GET")
@page
def group_page(call: Call, admin: Admin) -> Response:
    return _group_page(call, admin)


def _user_by_email(email: str) -> str | None:
    if not email or len(email) > EMAIL_MAX:
        return None
    query = ListQuery(email_is(email), 1, Cursor())
    found = services().accounts.list(query).items
    return found[0].id if found else None


@router.route(GROUP, "POST")
@form
def group_action(call: Call, admin: Admin, fields: dict[str, str]) -> Response:
    """Add a member (by email), remove a member, delete the group."""
    group_id = call.params["groupId"]
    here = f"groups/{quote(group_id, safe='')}"
    action = fields.get("action", "")
    try:
        if action == "add-member":
            email = fields.get("email", "").strip()
            user_id = _user_by_email(email)
            if user_id is None:
                errors = {"email": "No user has this email address."}
                return _group_page(call, admin, 400, values={"email": email}, errors=errors)
            services().groups.add_member(group_id, user_id)
            return see_other(call, f"{here}?done=member-added")
        if action == "remove-member":
            services().groups.remove_member(group_id, fields.get("userId", ""))
            return see_other(call, f"{here}?done=member-removed")
        if action == "delete":
            services().groups.delete(group_id, shown_version(fields))
            return see_other(call, "groups?done=deleted")
    except PreconditionFailed:
        return _group_page(call, admin, 409, error=stale_message("group"))
    except ResourceNotFound:
        raise
    except DomainError as exc:
        return _group_page(call, admin, 409, error=friendly(exc.message))
    return _group_page(call, admin, 400, error="Choose one of the page's buttons.")
