"""Developer-facing pages: accept an invitation, confirm a sign-up."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from chalice import Response

from chalicelib import wiring
from chalicelib.api.errors import error_response
from chalicelib.api.pages import page, stylesheet
from chalicelib.api.routing import Call, Router
from chalicelib.domain.links import LinkPurpose
from chalicelib.domain.users import User
from chalicelib.errors import DomainError, LinkUnusable, MalformedRequest, ValidationFailed

router = Router(management=False)
INVITATION = "/confirm/invitation"
SIGNUP = "/confirm-v2/identities/basic/signup"
ADVICE = "Ask the administrator who invited you to send a new invitation."


def wants_json(call: Call) -> bool:
    content = (call.header("content-type") or "").lower()
    accept = (call.header("accept") or "").lower()
    return "json" in content or ("application/json" in accept and "text/html" not in accept)


def form(call: Call) -> dict[str, str]:
    """The submitted fields, from a form post or a JSON body."""
    if "json" in (call.header("content-type") or "").lower():
        body = call.json()
        if not isinstance(body, dict):
            raise MalformedRequest("The body must be a JSON object.")
        return {k: v for k, v in body.items() if isinstance(v, str)}
    try:
        fields = parse_qs(call.raw_body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise MalformedRequest("The form is not valid UTF-8.") from None
    return {k: v[0] for k, v in fields.items()}


def problem(call: Call, exc: DomainError, advice: str = ADVICE) -> Response:
    """The page (or, for JSON callers, the APIM error) for a link that cannot be used."""
    if wants_json(call):
        return error_response(exc)
    status = 410 if isinstance(exc, LinkUnusable) else 404
    title = "This link has expired" if getattr(exc, "reason", "") == "expired" else "Link not valid"
    return page("problem.html", call.route, status, title=title, message=exc.message, advice=advice)


@router.route("/portal.css", "GET")
def css(call: Call) -> Response:
    return stylesheet()


def invitation_form(call: Call, token: str, error: str | None = None) -> Response:
    link, user = wiring.invitations().open(token, LinkPurpose.INVITE)
    return page(
        "invitation.html",
        call.route,
        400 if error else 200,
        title="Activate your account",
        user=user,
        token=token,
        action="invitation",
        expires=link.expires_at.strftime("%d %B %Y, %H:%M UTC"),
        error=error,
    )


def activated(call: Call, user: User, message: str) -> Response:
    if wants_json(call):
        return Response(
            body=json.dumps({"userId": user.id, "state": user.state.value}),
            status_code=200,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
    return page("done.html", call.route, title="Your account is active", message=message)


@router.route(INVITATION, "GET")
def show_invitation(call: Call) -> Response:
    try:
        return invitation_form(call, call.query.get("token", ""))
    except DomainError as exc:
        return problem(call, exc)


@router.route(INVITATION, "POST")
def accept_invitation(call: Call) -> Response:
    fields = form(call)
    token = fields.get("token", "")
    try:
        try:
            user = wiring.invitations().accept(token, fields.get("password"))
        except ValidationFailed as exc:
            if wants_json(call):
                raise
            return invitation_form(call, token, exc.details[0].message)
    except DomainError as exc:
        return problem(call, exc)
    return activated(
        call, user, f"Welcome, {user.first_name}. Your password is set; you can now sign in."
    )


@router.route(SIGNUP, "GET")
def show_signup(call: Call) -> Response:
    token = call.query.get("token", "")
    try:
        _, user = wiring.invitations().open(token, LinkPurpose.SIGNUP)
    except DomainError as exc:
        return problem(call, exc)
    return page(
        "signup.html",
        call.route,
        title="Confirm your account",
        user=user,
        token=token,
        action="signup",
    )


@router.route(SIGNUP, "POST")
def confirm_signup(call: Call) -> Response:
    try:
        user = wiring.invitations().confirm_signup(form(call).get("token", ""))
    except DomainError as exc:
        return problem(call, exc)
    return activated(call, user, f"Thank you, {user.first_name}. Your email address is confirmed.")
