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
    "edited": "The changes to the group were saved.",
    "member-added": "{name} was added to the group.",
    "member-already": "{name} was already a member of this group; nothing changed.",
    "member-removed": "{name} was removed from the group.",
}
PANELS = ("delete", "edit")


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
        has_custom=any(not g.group.built_in for g in result.items) or result.next is not None,
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


def _member_message(call: Call) -> str | None:
    """The notice a redirect asked for, with the name of the account it was about."""
    template = DONE.get(call.query.get("done", ""))
    if template is None or "{name}" not in template:
        return template
    name = "The user"
    try:
        user = services().accounts.get(call.query.get("u", ""))
        name = f"{user.first_name} {user.last_name}"
    except ResourceNotFound:
        pass
    return template.format(name=name)


def _group_page(
    call: Call,
    admin: Admin,
    status: int = 200,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    panel: str | None = None,
    edit_values: dict[str, str] | None = None,
    stale: bool = False,
) -> Response:
    stored = services().groups.get(call.params["groupId"])
    members = services().groups.members(stored.group.id, ListQuery(None, PAGE_SIZE, _cursor(call)))
    next_link = "?" + urlencode({"page": encode_cursor(members.next)}) if members.next else None
    panel = panel or call.query.get("confirm") or call.query.get("panel")
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
        panel=panel if panel in PANELS and not stored.group.built_in else None,
        message=_member_message(call),
        error=stale_message("group") if stale else error,
        values=values or {},
        edit_values=edit_values
        or {
            "displayName": stored.group.display_name,
            "description": stored.group.description or "",
        },
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
    """Add a member (by email), remove a member, edit or delete the group."""
    group_id = call.params["groupId"]
    here = f"groups/{quote(group_id, safe='')}"
    action = fields.get("action", "")
    try:
        if action == "add-member":
            email = fields.get("email", "").strip()
            user_id = _user_by_email(email)
            if user_id is None:
                problem = (
                    "Enter the email address of a user."
                    if not email
                    else "No user has this email address. Check it, or add the user first."
                )
                errors = {"email": problem}
                return _group_page(call, admin, 400, values={"email": email}, errors=errors)
            _, added = services().groups.add_member(group_id, user_id)
            done = "member-added" if added else "member-already"
            return see_other(call, f"{here}?" + urlencode({"done": done, "u": user_id}))
        if action == "remove-member":
            user_id = fields.get("userId", "")
            services().groups.remove_member(group_id, user_id)
            return see_other(call, f"{here}?" + urlencode({"done": "member-removed", "u": user_id}))
        if action == "edit":
            return _edit(call, admin, group_id, fields)
        if action == "delete":
            services().groups.delete(group_id, shown_version(fields))
            return see_other(call, "groups?done=deleted")
    except PreconditionFailed:
        return _group_page(call, admin, 409, stale=True)
    except ResourceNotFound:
        raise
    except DomainError as exc:
        return _group_page(call, admin, 409, error=friendly(exc.message))
    return _group_page(call, admin, 400, error="Choose one of the page's buttons.")


def _edit(call: Call, admin: Admin, group_id: str, fields: dict[str, str]) -> Response:
    """A custom group's name and description, with the version the page showed."""
    values = {
        "displayName": fields.get("displayName", "").strip(),
        "description": fields.get("description", "").strip(),
    }
    here = f"groups/{quote(group_id, safe='')}"
    try:
        given: dict[str, str | None] = {
            "displayName": values["displayName"],
            "description": values["description"] or None,
        }
        changes = read_group_fields(given, require_display_name=True)
        services().groups.update(group_id, changes, shown_version(fields))
    except ValidationFailed as exc:
        errors = field_errors(exc.details, values)
        return _group_page(call, admin, 400, panel="edit", edit_values=values, errors=errors)
    except PreconditionFailed:
        return _group_page(call, admin, 409, panel="edit", edit_values=values, stale=True)
    return see_other(call, f"{here}?done=edited")
