"""Developer-facing pages: accept an invitation; the shared parts of the link pages."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalice import Response

from chalicelib.api import html
from chalicelib.api.docs import form_body, ours, page_responses, ref, token_query
from chalicelib.api.errors import error_response
from chalicelib.api.html import PAGE_HEADERS, wants_json
from chalicelib.api.routing import Call, Router
from chalicelib.bootstrap import services
from chalicelib.config import get_settings
from chalicelib.domain.links import Link, LinkPurpose
from chalicelib.domain.users import User
from chalicelib.errors import DomainError, LinkUnusable, ValidationFailed

router = Router(management=False)
INVITATION = "/confirm/invitation"
ADVICE = "Ask the administrator who invited you to send a new invitation."


def page(name: str, route: str, status: int = 200, **values: Any) -> Response:
    """A developer page (templates/portal/), its links relative to ``route``; the signed-in
    navigation shows when ``developer`` is given (portal_session.render)."""
    values.setdefault("developer", None)
    values.setdefault("csrf", "")
    values.setdefault("home", html.relative_root(route) or "./")
    return html.render(
        "portal",
        name,
        status,
        PAGE_HEADERS,
        portal_url=get_settings().portal_url,
        root=html.relative_root(route),
        **values,
    )


def form(call: Call) -> dict[str, str]:
    """The submitted fields, from a form post or a JSON body."""
    return html.form_fields(call)


def problem(call: Call, exc: DomainError, advice: str = ADVICE) -> Response:
    """The page (or, for JSON callers, the APIM error) for a link that cannot be used."""
    if wants_json(call):
        return error_response(exc)
    status = 410 if isinstance(exc, LinkUnusable) else 404
    title = "This link has expired" if getattr(exc, "reason", "") == "expired" else "Link not valid"
    return page("problem.html", call.route, status, title=title, message=exc.message, advice=advice)


@router.route(
    "/portal.css",
    GET=ours(
        "Portal_Stylesheet",
        "The pages' stylesheet.",
        responses={
            "200": {"description": "CSS.", "content": {"text/css": {"schema": {"type": "string"}}}}
        },
    ),
)
def css(call: Call) -> Response:
    return html.stylesheet("portal", "portal.css")


@dataclass(frozen=True)
class PasswordLink:
    """A link page whose form sets a password: how to read it, consume it, and what to say."""

    template: str
    title: str
    action: str
    advice: str
    done_title: str
    open: Callable[[str], tuple[Link, User]]
    consume: Callable[[str, str | None], User]
    done: Callable[[User], str]


def password_form(call: Call, kind: PasswordLink, token: str, error: str | None = None) -> Response:
    """The form (again, with the error next to the field, when the password was refused)."""
    link, user = kind.open(token)
    return page(
        kind.template,
        call.route,
        400 if error else 200,
        title=kind.title,
        user=user,
        token=token,
        action=kind.action,
        expires=link.expires_at.strftime("%d %B %Y, %H:%M UTC"),
        error=error,
    )


def done(call: Call, user: User, title: str, message: str) -> Response:
    """What a consumed link answers: JSON callers get the user's id and state."""
    if wants_json(call):
        return Response(
            body=json.dumps({"userId": user.id, "state": user.state.value}),
            status_code=200,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
    return page("done.html", call.route, title=title, message=message)


def show_password_form(call: Call, kind: PasswordLink) -> Response:
    """GET of the link: shows the form, never consumes the token (mail scanners prefetch)."""
    try:
        return password_form(call, kind, call.query.get("token", ""))
    except DomainError as exc:
        return problem(call, exc, kind.advice)


def set_password(call: Call, kind: PasswordLink) -> Response:
    """POST of the form: the token is consumed only here, and only with an accepted password."""
    fields = form(call)
    token = fields.get("token", "")
    try:
        try:
            user = kind.consume(token, fields.get("password"))
        except ValidationFailed as exc:
            if wants_json(call):
                raise
            return password_form(call, kind, token, exc.details[0].message)
    except DomainError as exc:
        return problem(call, exc, kind.advice)
    return done(call, user, kind.done_title, kind.done(user))


INVITE_LINK = PasswordLink(
    template="invitation.html",
    title="Activate your account",
    action="invitation",
    advice=ADVICE,
    done_title="Your account is active",
    open=lambda token: services().invitations.open(token, LinkPurpose.INVITE),
    consume=lambda token, password: services().invitations.accept(token, password),
    done=lambda user: f"Welcome, {user.first_name}. Your password is set; you can now sign in.",
)


@router.route(
    INVITATION,
    GET=ours(
        "Invitation_Show",
        "Shows who is invited and a set-password form; never consumes the token.",
        params=[token_query("The invitation token from the email.")],
        responses=page_responses(statuses=("404", "410")),
    ),
)
def show_invitation(call: Call) -> Response:
    return show_password_form(call, INVITE_LINK)


@router.route(
    INVITATION,
    POST=ours(
        "Invitation_Accept",
        "Sets the password, activates the account and consumes the token.",
        body=form_body("token", "password"),
        responses=page_responses(ok_json=ref("Activation"), statuses=("400", "404", "410", "409")),
    ),
)
def accept_invitation(call: Call) -> Response:
    return set_password(call, INVITE_LINK)
