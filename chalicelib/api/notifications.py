"""Publisher notifications: the Notification, recipientUsers and recipientEmails operations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Response

from chalicelib.api.docs import apim
from chalicelib.api.envelope import empty, json_response
from chalicelib.api.routing import ARM_PREFIX, Call, Handler, Router
from chalicelib.bootstrap import services
from chalicelib.config import get_settings
from chalicelib.domain.portal import (
    NotificationName,
    Recipient,
    RecipientKind,
    notification_name,
)
from chalicelib.errors import ResourceNotFound
from chalicelib.services.portal import NotificationView

router = Router(ARM_PREFIX)
NOTIFICATION = "/notifications/{notificationName}"
NOTIFICATION_TYPE = "Microsoft.ApiManagement/service/notifications"
USER_RECIPIENT_TYPE = "Microsoft.ApiManagement/service/notifications/recipientUsers"
EMAIL_RECIPIENT_TYPE = "Microsoft.ApiManagement/service/notifications/recipientEmails"


def notification_entity(view: NotificationView) -> dict[str, Any]:
    """APIM's NotificationContract; recipients as resource ids, as APIM's examples show them."""
    base = get_settings().service_path
    return {
        "id": f"{base}/notifications/{view.name.value}",
        "type": NOTIFICATION_TYPE,
        "name": view.name.value,
        "properties": {
            "title": view.title,
            "description": view.description,
            "recipients": {
                "users": [f"{base}/users/{u}" for u in view.users],
                "emails": [f"{base}/recipientEmails/{e}" for e in view.emails],
            },
        },
    }


def recipient_entity(recipient: Recipient) -> dict[str, Any]:
    base = get_settings().service_path
    path = f"{base}/notifications/{recipient.notification.value}"
    if recipient.kind is RecipientKind.USER:
        return {
            "id": f"{path}/recipientUsers/{recipient.value}",
            "type": USER_RECIPIENT_TYPE,
            "name": recipient.value,
            "properties": {"userId": f"{base}/users/{recipient.value}"},
        }
    return {
        "id": f"{path}/recipientEmails/{recipient.value}",
        "type": EMAIL_RECIPIENT_TYPE,
        "name": recipient.value,
        "properties": {"email": recipient.value},
    }


def _name(call: Call) -> NotificationName:
    given = call.params["notificationName"]
    name = notification_name(given)
    if name is None:
        raise ResourceNotFound(f"Notification not found: '{given}'.")
    return name


def _recipients(call: Call, kind: RecipientKind) -> Response:
    found = services().portal.recipients(_name(call), kind)
    # APIM's recipient lists are not paged (nor are they in the SDK); each is bounded.
    return json_response({"value": [recipient_entity(r) for r in found], "count": len(found)})


@router.route("/notifications", GET=apim("Notification_ListByService"))
def list_notifications(call: Call) -> Response:
    """The seven notifications, always: one page whatever $top asks (they are few and fixed)."""
    views = services().portal.notifications()
    return json_response({"value": [notification_entity(v) for v in views], "count": len(views)})


@router.route(NOTIFICATION, GET=apim("Notification_Get"))
def get_notification(call: Call) -> Response:
    return json_response(notification_entity(services().portal.notification(_name(call))))


@router.route(NOTIFICATION, PUT=apim("Notification_CreateOrUpdate"))
def put_notification(call: Call) -> Response:
    """APIM's PUT has no body: every notification exists; it answers the notification."""
    return json_response(notification_entity(services().portal.notification(_name(call))))


@router.route(
    NOTIFICATION + "/recipientUsers",
    GET=apim("NotificationRecipientUser_ListByNotification"),
)
def list_user_recipients(call: Call) -> Response:
    return _recipients(call, RecipientKind.USER)


@router.route(
    NOTIFICATION + "/recipientEmails",
    GET=apim("NotificationRecipientEmail_ListByNotification"),
)
def list_email_recipients(call: Call) -> Response:
    return _recipients(call, RecipientKind.EMAIL)


def _user_recipient(call: Call) -> Recipient:
    return services().portal.user_recipient(_name(call), call.id_param("userId"))


def _email_recipient(call: Call) -> Recipient:
    return services().portal.email_recipient(_name(call), call.params["email"])


def _recipient_answer(read: Callable[[Call], Recipient]) -> Handler:
    """PUT, HEAD and DELETE of one recipient, by the request's method."""

    def answer(call: Call) -> Response:
        recipient = read(call)
        portal = services().portal
        if call.method == "PUT":
            return json_response(recipient_entity(recipient), 201 if portal.add(recipient) else 200)
        if call.method == "DELETE":
            return empty(200 if portal.remove(recipient) else 204)
        if portal.has(recipient):
            return empty(204)
        raise ResourceNotFound("The recipient is not subscribed to this notification.")

    return answer


for _path, _operations, _read in (
    ("/recipientUsers/{userId}", "NotificationRecipientUser", _user_recipient),
    ("/recipientEmails/{email}", "NotificationRecipientEmail", _email_recipient),
):
    router.route(
        NOTIFICATION + _path,
        PUT=apim(f"{_operations}_CreateOrUpdate"),
        HEAD=apim(f"{_operations}_CheckEntityExists"),
        DELETE=apim(f"{_operations}_Delete"),
    )(_recipient_answer(_read))
