"""Developer sign-in, SSO, own profile and password, and password reset pages."""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Callable

from chalice import Response

from chalicelib.api import html
from chalicelib.api.auth import user_token_text
from chalicelib.api.docs import (
    TOKEN_HEADER,
    USER_TOKEN,
    errors,
    form_body,
    json_result,
    ours,
    page_responses,
    query_param,
    redirects,
    ref,
    token_query,
)
from chalicelib.api.envelope import json_response, user_entity
from chalicelib.api.errors import error_response, status_and_code
from chalicelib.api.html import csrf_ok, csrf_token, wants_json
from chalicelib.api.portal import (
    PasswordLink,
    form,
    page,
    set_password,
    show_password_form,
)
from chalicelib.api.portal_session import (
    MESSAGES,
    SESSION_COOKIE,
    current_developer,
    delegate,
    safe_next,
    see_other,
    session_cookie,
)
from chalicelib.api.routing import Call, Router
from chalicelib.bootstrap import services
from chalicelib.config import get_settings
from chalicelib.domain.delegation import Operation
from chalicelib.domain.users import User
from chalicelib.errors import NotAuthenticated, Throttled

router = Router(management=False)
RESET = "/confirm-v2/password"
SIGNIN_COOKIE = "apim_signin"
NEXT_QUERY = query_param("next", "The portal page to return to after signing in.", type="string")
_SIGNIN = "portal-signin"
FORM_EXPIRED = "This form has expired. Please sign in again."
RESET_ACCEPTED = (
    "If an account exists for this address, we sent it an email with a link to choose a new "
    "password."
)


def pad_to_floor(
    started: float,
    floor_ms: int,
    now: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Answer no sooner than ``floor_ms`` after ``started``, so timing tells nothing."""
    remaining = floor_ms / 1000 - (now() - started)
    if remaining > 0:
        sleep(remaining)


def _token_header(token: str) -> str:
    return f'token="{token}",refresh="true"'


def _basic_credentials(call: Call) -> tuple[str, str] | None:
    header = call.header("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        email, sep, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (email, password) if sep else None


def _signed_in(call: Call, user: User, token: str, seconds: int, target: str = "") -> Response:
    """JSON callers get the token; a person is sent to the page they asked for (``target``,
    a checked portal path) or the portal's home, with the session cookie."""
    headers = {"ocp-apim-sas-token": _token_header(token)}
    if wants_json(call) or _basic_credentials(call):
        body = {"value": token, "userId": user.id, "expiresIn": seconds}
        return json_response(body, headers=headers)
    response = see_other(call, target)
    response.headers.update(headers)
    response.headers["Set-Cookie"] = session_cookie(token, seconds)
    return response


def _signin_form(
    call: Call, status: int = 200, email: str = "", error: str | None = None, target: str = ""
) -> Response:
    """The form, with a fresh pre-session value in a cookie of the sign-in page and the
    form's CSRF token bound to it: a form posted from another site signs nobody in."""
    nonce = secrets.token_urlsafe(24)
    response = page(
        "signin.html",
        call.route,
        status,
        title="Sign in",
        action="signin",
        email=email,
        error=error,
        message=MESSAGES.get(call.query.get("m", "")) if status == 200 else None,
        next=target,
        signin_csrf=csrf_token(_SIGNIN, nonce),
    )
    response.headers["Set-Cookie"] = html.set_cookie(SIGNIN_COOKIE, nonce, call.path, 3600)
    return response


def _form_from_this_site(call: Call, fields: dict[str, str]) -> bool:
    return csrf_ok(_SIGNIN, html.cookie(call, SIGNIN_COOKIE), fields.get("csrf", ""))


@router.route(
    "/signin",
    GET=ours(
        "SignIn_Show",
        "The sign-in form; a developer already signed in goes on to the page asked for.",
        params=[NEXT_QUERY],
        responses={**page_responses(), **redirects("Signed in already: to the page asked for.")},
    ),
)
def signin_page(call: Call) -> Response:
    """The form; a developer already signed in goes on to the page asked for."""
    target = safe_next(call.query.get("next", ""))
    if current_developer(call) is not None:
        return see_other(call, target)
    delegated = delegate(call, Operation.SIGN_IN, return_url="/" + target)
    if delegated is not None:
        return delegated
    return _signin_form(call, target=target)


@router.route(
    "/signin",
    POST=ours(
        "SignIn",
        "Signs in with email and password (JSON, form, or a Basic Authorization header): the "
        "user token in ocp-apim-sas-token and the body; a form sign-in also sets a session cookie.",
        body=form_body("email", "password", "csrf", "next"),
        responses={
            **page_responses(ok_json=ref("SignInResult"), statuses=("400", "401", "403", "429")),
            **redirects("A form sign-in: to the page asked for (next) or the portal's home."),
        },
    ),
)
def sign_in(call: Call) -> Response:
    """JSON ``{email, password}``, a form, or a Basic Authorization header."""
    credentials = _basic_credentials(call)
    target = ""
    if credentials is None:
        fields = form(call)
        if not wants_json(call):
            # Delegated, the publisher's site starts portal sessions: a form posted here
            # directly checks no password. A script's JSON or Basic sign-in gets a token and no
            # session cookie, so it stays one read fewer (issue 16's two requests).
            delegated = delegate(
                call, Operation.SIGN_IN, return_url="/" + safe_next(fields.get("next", ""))
            )
            if delegated is not None:
                return delegated
        credentials = (fields.get("email", ""), fields.get("password", ""))
        target = safe_next(fields.get("next", ""))
        # A script (JSON) cannot be made to post by another site; a form can.
        if not wants_json(call) and not _form_from_this_site(call, fields):
            return _signin_form(call, 403, credentials[0][:254], FORM_EXPIRED, target)
    email, password = credentials
    try:
        user, token, _ = services().sessions.sign_in(email, password, call.source_ip)
    except (NotAuthenticated, Throttled) as exc:
        if wants_json(call) or _basic_credentials(call):
            return error_response(exc)
        status, _ = status_and_code(exc)
        return _signin_form(call, status, email[:254], exc.message, target)
    seconds = int(get_settings().session_hours * 3600)
    return _signed_in(call, user, token, seconds, target)


@router.route(
    "/signin-sso",
    GET=ours(
        "SignIn_Sso",
        "The link of generateSsoUrl: signs the developer in, once, and starts a portal session.",
        params=[token_query("The token of the single sign-on link.")],
        responses={
            **page_responses(ok_json=ref("SignInResult"), statuses=("401",)),
            **redirects("A person: to the portal's home, signed in."),
        },
    ),
)
def sign_in_sso(call: Call) -> Response:
    """The link of ``generateSsoUrl``: signs the developer in once and starts a portal session."""
    try:
        user, token, _ = services().sessions.sign_in_sso(
            call.query.get("token", ""), call.source_ip
        )
    except NotAuthenticated as exc:
        if wants_json(call):
            return error_response(exc)
        return page(
            "problem.html",
            call.route,
            401,
            title="Sign-in link not valid",
            message=exc.message,
            advice="Sign in with your email and password, or ask for a new link.",
        )
    # A delegation site sends the developer here with APIM's returnUrl: a portal page only.
    target = safe_next(call.query.get("returnUrl", ""))
    return _signed_in(call, user, token, int(get_settings().session_hours * 3600), target)


def _me(call: Call) -> User:
    token = user_token_text(call.header("authorization"), html.cookie(call, SESSION_COOKIE))
    return services().sessions.authenticate(token, call.source_ip)


@router.route(
    "/me",
    GET=ours(
        "Me_Get",
        "The signed-in developer's own profile.",
        security=[{USER_TOKEN: []}],
        responses={
            "200": json_result("The profile.", ref("UserContract"), ETag="Entity version."),
            **errors("401"),
        },
    ),
)
def me(call: Call) -> Response:
    """The signed-in developer's own profile."""
    user = _me(call)
    return json_response(user_entity(user), etag_version=user.version)


@router.route(
    "/me/password",
    POST=ours(
        "Me_ChangePassword",
        "Changes the developer's own password (current password required); every older token "
        "dies and a fresh one is answered.",
        security=[{USER_TOKEN: []}],
        body=form_body("currentPassword", "newPassword"),
        responses={
            "200": json_result(
                "The fresh token.", ref("PasswordChanged"), ocp_apim_sas_token=TOKEN_HEADER
            ),
            **errors("400", "401", "429"),
        },
    ),
)
def change_password(call: Call) -> Response:
    """``{currentPassword, newPassword}``; answers a fresh token, every older one dies."""
    user = _me(call)
    fields = form(call)
    token = services().sessions.change_password(
        user, fields.get("currentPassword"), fields.get("newPassword"), call.source_ip
    )
    headers = {"ocp-apim-sas-token": _token_header(token)}
    return json_response({"value": token, "userId": user.id}, headers=headers)


def _reset_request_page(
    call: Call, status: int = 200, sent: str | None = None, email: str = "", error: str = ""
) -> Response:
    return page(
        "reset_request.html",
        call.route,
        status,
        title="Check your email" if sent else "Reset your password",
        action="password-reset",
        sent=sent,
        email=email,
        error=error,
    )


@router.route(
    "/password-reset",
    GET=ours("PasswordReset_Show", "The form asking for a reset link.", responses=page_responses()),
)
def reset_request_page(call: Call) -> Response:
    return _reset_request_page(call)


@router.route(
    "/password-reset",
    POST=ours(
        "PasswordReset_Request",
        "Asks for a reset link: always 202 with the same body, in about the same time, whether "
        "or not the address has an account.",
        body=form_body("email"),
        responses=page_responses(ok="202", ok_json=ref("ResetAccepted"), statuses=("400", "429")),
    ),
)
def request_reset(call: Call) -> Response:
    """202 with the same body, in about the same time, whether or not the address exists."""
    started = time.monotonic()
    email = ""
    try:
        email = form(call).get("email", "")
        services().passwords.request(email, call.source_ip)
    except Throttled as exc:
        if wants_json(call):
            raise
        # A person at the form reads a page, not the API's error body.
        refused = _reset_request_page(call, 429, email=email[:254], error=exc.message)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    finally:
        pad_to_floor(started, get_settings().reset_floor_ms)
    if wants_json(call):
        return json_response({"status": "accepted", "message": RESET_ACCEPTED}, 202)
    return _reset_request_page(call, 202, sent=RESET_ACCEPTED)


RESET_LINK = PasswordLink(
    template="reset.html",
    title="Choose a new password",
    action="password",
    advice="Ask for a new link on the sign-in page.",
    done_title="Your password is changed",
    open=lambda token: services().passwords.open(token),
    consume=lambda token, password: services().passwords.reset(token, password),
    done=lambda user: "Your new password is set. Sign in with it; other sessions were signed out.",
)


@router.route(
    RESET,
    GET=ours(
        "PasswordReset_Show_Link",
        "The reset link's page: a form to choose a new password; never consumes the token.",
        params=[token_query("The reset token from the email.")],
        responses=page_responses(statuses=("404", "410")),
    ),
)
def show_reset(call: Call) -> Response:
    return show_password_form(call, RESET_LINK)


@router.route(
    RESET,
    POST=ours(
        "PasswordReset_Confirm",
        "Sets the new password and consumes the token; other sessions are signed out.",
        body=form_body("token", "password"),
        responses=page_responses(ok_json=ref("Activation"), statuses=("400", "404", "410")),
    ),
)
def reset_password(call: Call) -> Response:
    return set_password(call, RESET_LINK)
