"""Users: APIM's User, UserGroup and UserIdentities operations."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chalice import Response

from chalicelib.api.docs import USER_ID, apim, json_result, ours, ref
from chalicelib.api.envelope import (
    USER_GROUP_TYPE,
    collection,
    empty,
    group_entity,
    iso,
    json_response,
    user_entity,
)
from chalicelib.api.groups import GROUP_FILTER_FIELDS
from chalicelib.api.lists import list_query
from chalicelib.api.routing import ARM_PREFIX, Call, Router
from chalicelib.bootstrap import services
from chalicelib.domain.users import USER_FILTER_FIELDS, read_changes, read_draft
from chalicelib.services.groups import EXPAND_GROUPS_MAX_USERS
from chalicelib.services.invitations import InvitationView

router = Router(ARM_PREFIX)
USER = "/users/{userId}"


@router.route(
    "/users",
    GET=apim("User_ListByService"),
)
def list_users(call: Call) -> Response:
    expand = call.flag("expandGroups")
    query = list_query(call, USER_FILTER_FIELDS)
    if expand:
        # One membership Query per user, so expanded pages are shorter (a nextLink follows).
        query = replace(query, top=min(query.top, EXPAND_GROUPS_MAX_USERS))
    page = services().accounts.list(query)
    groups = services().groups.groups_of_many(page.items) if expand else {}
    values = [user_entity(u, groups[u.id] if expand else None) for u in page.items]
    return json_response(collection(values, page, call.link))


@router.route(
    USER,
    GET=apim("User_Get"),
    HEAD=apim("User_GetEntityTag"),
)
def get_user(call: Call) -> Response:
    user = services().accounts.get(call.id_param("userId"))
    return json_response(user_entity(user), etag_version=user.version)


@router.route(
    USER,
    PUT=apim("User_CreateOrUpdate"),
)
def put_user(call: Call) -> Response:
    user_id = call.id_param("userId")
    notify = call.flag("notify")
    draft = read_draft(call.json())
    user, created = services().accounts.create_or_replace(user_id, draft, call.if_match(), notify)
    return json_response(user_entity(user), 201 if created else 200, user.version)


@router.route(
    USER,
    PATCH=apim("User_Update"),
)
def patch_user(call: Call) -> Response:
    user_id = call.id_param("userId")
    expected = call.require_if_match()
    user = services().accounts.update(user_id, read_changes(call.json()), expected)
    return json_response(user_entity(user), etag_version=user.version)


@router.route(
    USER,
    DELETE=apim(
        "User_Delete", drop=("202",), note="the delete is done when we answer: always 204."
    ),
)
def delete_user(call: Call) -> Response:
    remove = call.flag("deleteSubscriptions")
    notify = call.flag("notify")
    services().accounts.delete(call.id_param("userId"), call.require_if_match(), notify, remove)
    return empty(204)


@router.route(
    USER + "/groups",
    GET=apim("UserGroup_List"),
)
def list_user_groups(call: Call) -> Response:
    query = list_query(call, GROUP_FILTER_FIELDS)
    page = services().groups.user_groups(call.id_param("userId"), query)
    values = [group_entity(g.group, USER_GROUP_TYPE) for g in page.items]
    return json_response(collection(values, page, call.link))


@router.route(
    USER + "/identities",
    GET=apim("UserIdentities_List"),
)
def list_identities(call: Call) -> Response:
    user = services().accounts.get(call.id_param("userId"))
    values = [{"provider": i.provider, "id": i.id} for i in user.identities]
    return json_response({"value": values, "count": len(values)})


def _invitation(view: InvitationView) -> dict[str, Any]:
    link, delivery = view.link, view.delivery
    return {
        "id": link.link_id,
        "purpose": link.purpose.value,
        "state": view.state.value,
        "sentDate": iso(link.created_at),
        "expirationDate": iso(link.expires_at),
        "endDate": iso(link.ended_at) if link.ended_at else None,
        "delivery": {
            "state": delivery.state.value,
            "attempts": delivery.attempts,
            "sentDate": iso(delivery.sent_at) if delivery.sent_at else None,
            "lastError": delivery.last_error,
        }
        if delivery
        else None,
    }


@router.route(
    USER + "/invitations",
    GET=ours(
        "UserInvitations_List",
        "A user's invitation and sign-up links, newest first, with their email delivery.",
        management=True,
        params=[USER_ID],
        responses={"200": json_result("The links.", ref("InvitationCollection"))},
    ),
)
def list_invitations(call: Call) -> Response:
    """Extension: the user's invitations, newest first, with their email delivery."""
    views = services().invitations.list(call.id_param("userId"))
    return json_response({"value": [_invitation(v) for v in views], "count": len(views)})


@router.route(
    USER + "/invitations/resend",
    POST=ours(
        "UserInvitations_Resend",
        "A new invitation link with a new expiry; the old link stops working.",
        management=True,
        params=[USER_ID],
        responses={"200": json_result("The new link.", ref("InvitationContract"))},
    ),
)
def resend_invitation(call: Call) -> Response:
    """Extension: a new link with a new expiry; the old one stops working."""
    view = services().invitations.resend(call.id_param("userId"))
    return json_response(_invitation(view))


@router.route(
    USER + "/invitations/revoke",
    POST=ours(
        "UserInvitations_Revoke",
        "The pending links stop working; the account stays pending.",
        management=True,
        params=[USER_ID],
        responses={"200": json_result("The revoked links.", ref("InvitationCollection"))},
    ),
)
def revoke_invitation(call: Call) -> Response:
    """Extension: the pending link stops working; the account stays pending."""
    views = services().invitations.revoke(call.id_param("userId"))
    return json_response({"value": [_invitation(v) for v in views], "count": len(views)})
