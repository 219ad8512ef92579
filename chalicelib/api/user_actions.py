"""User actions of APIM's contract: reset email, user token, SSO link."""

from __future__ import annotations

from chalice import Response

from chalicelib.api.docs import apim
from chalicelib.api.envelope import empty, json_response
from chalicelib.api.routing import ARM_PREFIX, Call, Router
from chalicelib.bootstrap import services
from chalicelib.domain.users import AppType
from chalicelib.errors import FieldProblem, ValidationFailed

router = Router(ARM_PREFIX)
USER = "/users/{userId}"


def _app_type(call: Call) -> None:
    raw = call.query.get("appType")
    if raw is not None and raw not in {t.value for t in AppType}:
        raise ValidationFailed(
            [FieldProblem("appType", "'appType' must be portal or developerPortal.")]
        )


@router.route(
    USER + "/confirmations/password/send",
    POST=apim("UserConfirmationPassword_Send"),
)
def send_password_reset(call: Call) -> Response:
    """204 and an email with a one-time link to choose a new password."""
    _app_type(call)
    services().passwords.send_by_admin(call.id_param("userId"))
    return empty(204)


@router.route(
    USER + "/token",
    POST=apim("User_GetSharedAccessToken"),
)
def user_token(call: Call) -> Response:
    """APIM's User_GetSharedAccessToken: ``{"value": "<compact token>"}``."""
    body = call.json()
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise ValidationFailed([FieldProblem("properties", "The body must have 'properties'.")])
    token = services().sessions.issue(
        call.id_param("userId"), props.get("keyType"), props.get("expiry")
    )
    return json_response({"value": token})


@router.route(
    USER + "/generateSsoUrl",
    POST=apim("User_GenerateSsoUrl"),
)
def sso_url(call: Call) -> Response:
    """A link that signs the developer in to the portal, valid for 10 minutes."""
    return json_response({"value": services().sessions.sso_url(call.id_param("userId"))})
