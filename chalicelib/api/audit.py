"""Extension routes: a user's audit events, and the whole audit trail."""

from __future__ import annotations

from typing import Any

from chalice import Response

from chalicelib.api.docs import LIST_PARAMS, USER_ID, json_result, ours, ref
from chalicelib.api.envelope import collection, iso, json_response
from chalicelib.api.lists import list_query
from chalicelib.api.routing import ARM_PREFIX, Call, Router
from chalicelib.bootstrap import services
from chalicelib.config import get_settings
from chalicelib.domain.audit import AuditEvent
from chalicelib.services.audit import AUDIT_FILTER_FIELDS

router = Router(ARM_PREFIX)


def event_body(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": iso(event.time),
        "action": event.action,
        "actor": {"id": event.actor, "kind": event.actor_kind, "address": event.address or None},
        "target": {"type": event.target_type, "id": event.target_id, "email": event.target_email},
        "changes": event.changes,
        "requestId": event.request_id or None,
    }


@router.route(
    "/users/{userId}/events",
    GET=ours(
        "UserEvents_List",
        "A user's audit events, newest first ($filter on action, actor, targetId, targetType, "
        "time).",
        management=True,
        params=[USER_ID, *LIST_PARAMS],
        responses={"200": json_result("The events.", ref("AuditEventCollection"))},
    ),
)
def user_events(call: Call) -> Response:
    """Newest first; each page is one Query."""
    user_id = call.id_param("userId")
    page = services().audit.user_events(user_id, list_query(call, AUDIT_FILTER_FIELDS))
    return json_response(collection([event_body(e) for e in page.items], page, call.link))


@router.route(
    "/auditEvents",
    GET=ours(
        "AuditEvents_List",
        "The whole audit trail, newest first ($filter on action, actor, targetId, targetType, "
        "time: 'time ge ... and time le ...').",
        management=True,
        params=LIST_PARAMS,
        responses={"200": json_result("The events.", ref("AuditEventCollection"))},
    ),
)
def audit_events(call: Call) -> Response:
    """``$filter`` on action, actor, targetId, targetType and time (``time ge ... and time le``)."""
    query = list_query(call, AUDIT_FILTER_FIELDS)
    page = services().audit.events(query, get_settings().audit_retention_days)
    return json_response(collection([event_body(e) for e in page.items], page, call.link))
