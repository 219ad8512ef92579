"""ARM envelopes and JSON responses: ``{id, type, name, properties}`` and collections."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from chalice import Response

from chalicelib.config import get_settings
from chalicelib.domain.etag import etag_of
from chalicelib.domain.groups import Group
from chalicelib.domain.paging import Page, encode_cursor
from chalicelib.domain.users import User

USER_TYPE = "Microsoft.ApiManagement/service/users"
GROUP_TYPE = "Microsoft.ApiManagement/service/groups"
USER_GROUP_TYPE = "Microsoft.ApiManagement/service/users/groups"
JSON = "application/json; charset=utf-8"


def iso(value: datetime) -> str:
    """ISO 8601 with milliseconds and Z, which the Azure SDK parses."""
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def json_response(
    body: Any,
    status: int = 200,
    etag_version: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    merged: dict[str, str | list[str]] = {"Content-Type": JSON, **(headers or {})}
    if etag_version is not None:
        merged["ETag"] = etag_of(etag_version)
    return Response(body=json.dumps(body), status_code=status, headers=merged)


def empty(status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(body="", status_code=status, headers=dict(headers or {}))


def group_properties(group: Group) -> dict[str, Any]:
    return {
        "displayName": group.display_name,
        "description": group.description,
        "builtIn": group.built_in,
        "type": group.type,
        "externalId": group.external_id,
    }


def group_entity(group: Group, type_: str = GROUP_TYPE) -> dict[str, Any]:
    return {
        "id": f"{get_settings().service_path}/groups/{group.id}",
        "type": type_,
        "name": group.id,
        "properties": group_properties(group),
    }


def user_entity(user: User, groups: list[Group] | None = None) -> dict[str, Any]:
    """APIM's UserContract; the password hash never leaves the store."""
    props: dict[str, Any] = {
        "firstName": user.first_name,
        "lastName": user.last_name,
        "email": user.email,
        "state": user.state.value,
        "note": user.note,
        "registrationDate": iso(user.registration_date),
        "identities": [{"provider": i.provider, "id": i.id} for i in user.identities],
    }
    if groups is not None:
        props["groups"] = [group_properties(g) for g in groups]
    return {
        "id": f"{get_settings().service_path}/users/{user.id}",
        "type": USER_TYPE,
        "name": user.id,
        "properties": props,
    }


def collection(values: list[Any], page: Page[Any], call_link: Any) -> dict[str, Any]:
    """``{value, count, nextLink}``; nextLink is absolute, on the request's own origin."""
    body: dict[str, Any] = {"value": values}
    if page.count is not None:
        body["count"] = page.count
    if page.next is not None:
        body["nextLink"] = call_link(**{"$skiptoken": encode_cursor(page.next), "$skip": None})
    return body
