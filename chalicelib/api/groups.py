"""Groups: APIM's Group and GroupUser operations."""

from __future__ import annotations

from chalice import Response

from chalicelib.api.docs import apim
from chalicelib.api.envelope import collection, empty, group_entity, json_response, user_entity
from chalicelib.api.lists import list_query
from chalicelib.api.routing import ARM_PREFIX, Call, Router
from chalicelib.bootstrap import services
from chalicelib.domain.custom_groups import group_id_problem, read_group_changes
from chalicelib.domain.odata import ALL_FUNCTIONS, ALL_OPS, EQ_ONLY, FieldSpec
from chalicelib.domain.users import USER_FILTER_FIELDS, id_problem
from chalicelib.errors import ResourceNotFound, ValidationFailed

router = Router(ARM_PREFIX)
GROUP = "/groups/{groupId}"
MEMBER = GROUP + "/users/{userId}"
GROUP_FILTER_FIELDS = {
    "name": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "displayName": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "description": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "externalId": FieldSpec("string", EQ_ONLY, frozenset()),
}


def _group_id(call: Call) -> str:
    group_id = call.params["groupId"]
    problem = group_id_problem(group_id)
    if problem:
        raise ValidationFailed([problem])
    return group_id


def _member_ids(call: Call) -> tuple[str, str]:
    group_id, user_id = call.params["groupId"], call.params["userId"]
    problems = [p for p in (group_id_problem(group_id), id_problem(user_id, "userId")) if p]
    if problems:
        raise ValidationFailed(problems)
    return group_id, user_id


@router.route(
    "/groups",
    GET=apim("Group_ListByService"),
)
def list_groups(call: Call) -> Response:
    page = services().groups.list(list_query(call, GROUP_FILTER_FIELDS))
    values = [group_entity(g.group) for g in page.items]
    return json_response(collection(values, page, call.link))


@router.route(
    GROUP,
    GET=apim("Group_Get"),
    HEAD=apim("Group_GetEntityTag"),
)
def get_group(call: Call) -> Response:
    stored = services().groups.get(_group_id(call))
    return json_response(group_entity(stored.group), etag_version=stored.version)


@router.route(
    GROUP,
    PUT=apim("Group_CreateOrUpdate"),
)
def put_group(call: Call) -> Response:
    group_id = _group_id(call)
    changes = read_group_changes(call.json(), require_display_name=True)
    stored, created = services().groups.create_or_replace(group_id, changes, call.if_match())
    return json_response(group_entity(stored.group), 201 if created else 200, stored.version)


@router.route(
    GROUP,
    PATCH=apim("Group_Update"),
)
def patch_group(call: Call) -> Response:
    group_id = _group_id(call)
    expected = call.require_if_match()
    changes = read_group_changes(call.json(), require_display_name=False)
    stored = services().groups.update(group_id, changes, expected)
    return json_response(group_entity(stored.group), etag_version=stored.version)


@router.route(
    GROUP,
    DELETE=apim("Group_Delete"),
)
def delete_group(call: Call) -> Response:
    services().groups.delete(_group_id(call), call.require_if_match())
    return empty(204)


@router.route(
    GROUP + "/users",
    GET=apim("GroupUser_List"),
)
def list_members(call: Call) -> Response:
    group_id = _group_id(call)
    page = services().groups.members(group_id, list_query(call, USER_FILTER_FIELDS))
    return json_response(collection([user_entity(u) for u in page.items], page, call.link))


@router.route(
    MEMBER,
    PUT=apim("GroupUser_Create"),
)
def add_member(call: Call) -> Response:
    user, added = services().groups.add_member(*_member_ids(call))
    return json_response(user_entity(user), 201 if added else 200)


@router.route(
    MEMBER,
    DELETE=apim("GroupUser_Delete"),
)
def remove_member(call: Call) -> Response:
    services().groups.remove_member(*_member_ids(call))
    return empty(204)


@router.route(
    MEMBER,
    HEAD=apim("GroupUser_CheckEntityExists"),
)
def check_member(call: Call) -> Response:
    group_id, user_id = _member_ids(call)
    if not services().groups.is_member(group_id, user_id):
        raise ResourceNotFound(f"User '{user_id}' is not a member of group '{group_id}'.")
    return empty(204)
