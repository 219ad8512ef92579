"""Groups: the built-in ones, read-only until custom groups arrive."""

from __future__ import annotations

from chalice import Response

from chalicelib.api.envelope import collection, group_entity, json_response
from chalicelib.api.lists import list_query
from chalicelib.api.routing import ARM_PREFIX, Call, Router
from chalicelib.domain.groups import BUILT_IN_GROUPS, Group, built_in
from chalicelib.domain.odata import ALL_FUNCTIONS, ALL_OPS, EQ_ONLY, FieldSpec
from chalicelib.domain.paging import Page
from chalicelib.errors import ResourceNotFound

router = Router(ARM_PREFIX)
GROUP_FILTER_FIELDS = {
    "name": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "displayName": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "description": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "externalId": FieldSpec("string", EQ_ONLY, frozenset()),
}


def _record(group: Group) -> dict[str, object]:
    return {
        "name": group.id,
        "displayName": group.display_name,
        "description": group.description,
        "externalId": group.external_id,
    }


def _group(call: Call) -> Group:
    group = built_in(call.params["groupId"])
    if group is None:
        raise ResourceNotFound(f"Group not found: '{call.params['groupId']}'.")
    return group


@router.route("/groups", "GET")
def list_groups(call: Call) -> Response:
    query = list_query(call, GROUP_FILTER_FIELDS)
    matches = [
        g for g in BUILT_IN_GROUPS if query.filter is None or query.filter.evaluate(_record(g))
    ]
    chosen = matches[query.cursor.skip :][: query.top]
    page: Page[Group] = Page(chosen, None, len(matches))
    return json_response(collection([group_entity(g) for g in chosen], page, call.link))


@router.route("/groups/{groupId}", "GET", "HEAD")
def get_group(call: Call) -> Response:
    # Built-in groups never change, so their ETag is a constant version.
    return json_response(group_entity(_group(call)), etag_version=1)
