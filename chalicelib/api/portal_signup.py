"""The portal's sign-up page (as ``portalsettings/signup`` allows it) and its confirming link."""

from __future__ import annotations

import secrets
import time

from chalice import Response

from chalicelib.api import html
from chalicelib.api.docs import form_body, ours, page_responses, redirects, ref, token_query
from chalicelib.api.errors import error_response
from chalicelib.api.html import csrf_ok, csrf_token, wants_json
from chalicelib.api.portal import done, form, page, problem
from chalicelib.api.portal_session import (
    current_developer,
    delegate,
    render,
    see_other,
    session_cookie,
)
from chalicelib.api.routing import Call, Router
from chalicelib.api.signin import pad_to_floor
from chalicelib.bootstrap import services
from chalicelib.config import get_settings
from chalicelib.domain.delegation import Operation
from chalicelib.domain.links import LinkPurpose
from chalicelib.domain.portal import SignUpSettings
from chalicelib.domain.users import NAME_MAX, UserDraft, read_user_fields
from chalicelib.errors import (
    DomainError,
    FieldProblem,
    MalformedRequest,
    SignUpClosed,
    Throttled,
    ValidationFailed,
)

router = Router(management=False)
SIGNUP = "/signup"
SIGNUP_COOKIE = "apim_signup"
_PURPOSE = "portal-signup"
CONFIRM = "/confirm-v2/identities/basic/signup"
CONFIRM_COOKIE = "apim_confirm"
_CONFIRM_PURPOSE = "portal-signup-confirm"
CONFIRM_EXPIRED = "This form has expired. Please enter your password again."
SIGNUP_ADVICE = "Sign up again: we will send you a new link."
FIELDS = ("firstName", "lastName", "email", "password", "confirmPassword")
SENT = (
    "Check your email. If the address can be used for a new account, we sent it a link: your "
    "account is ready once you follow it."
)
FORM_EXPIRED = "This form has expired, so nothing was sent. Please fill it in again."
# Each field's problem in the page's words: (when empty, when malformed). The password policy's
# own sentences are already plain and are kept.
_PLAIN: dict[str, tuple[str, str | None]] = {
    "firstName": (
        "Enter your first name.",
        f"Enter a first name of at most {NAME_MAX} characters.",
    ),
    "lastName": ("Enter your last name.", f"Enter a last name of at most {NAME_MAX} characters."),
    "email": ("Enter your email address.", "Enter an email address like name@example.com."),
    "password": ("Choose a password.", None),
    "confirmPassword": ("Enter the password again.", None),
    "consent": ("You must agree to the terms of use.", None),
}


def _plain(problems: list[FieldProblem], values: dict[str, str]) -> dict[str, str]:
    """The first problem of each field, in the page's words."""
    errors: dict[str, str] = {}
    for found in problems:
        if found.target in errors:
            continue
        when_empty, malformed = _PLAIN.get(found.target, ("", None))
        if not values.get(found.target, "").strip() and when_empty:
            errors[found.target] = when_empty
        elif malformed and found.message.startswith("'"):
            errors[found.target] = malformed
        else:
            errors[found.target] = found.message
    return errors


def _form(
    call: Call,
    settings: SignUpSettings,
    status: int = 200,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    sent: bool = False,
    problem: str | None = None,
) -> Response:
    """The form, with a fresh pre-session value in a cookie of this page and the form's CSRF
    token bound to it: a form posted from another site creates nothing."""
    nonce = secrets.token_urlsafe(24)
    response = render(
        call,
        "register.html",
        None,
        status,
        title="Check your email" if sent else "Sign up",
        action="signup",
        terms=settings.terms,
        errors=errors or {},
        values=values or {},
        sent=SENT if sent else None,
        link_hours=f"{get_settings().invitation_hours:g}",
        problem=problem,
        signup_csrf=csrf_token(_PURPOSE, nonce),
    )
    response.headers["Set-Cookie"] = html.set_cookie(SIGNUP_COOKIE, nonce, call.path, 3600)
    return response


def _closed(call: Call) -> Response:
    if wants_json(call):
        return error_response(
            SignUpClosed("Sign-up is closed: accounts are made by the administrators.")
        )
    return render(
        call,
        "problem.html",
        None,
        404,
        title="Sign-up is closed",
        message="This portal does not take new accounts by sign-up.",
        advice="Ask the administrators for an invitation, or sign in if you have an account.",
    )


def _away(call: Call) -> Response | None:
    """Where a visitor goes instead of the form: the publisher's site when sign-up is
    delegated, the home when signed in already."""
    delegated = delegate(call, Operation.SIGN_UP, return_url="/")
    if delegated is not None:
        return delegated
    if current_developer(call) is not None:
        return see_other(call, "")
    return None


def _open(call: Call) -> tuple[SignUpSettings, Response | None]:
    """The sign-up settings, and the answer instead of the form when there is one: delegated,
    signed in already, or sign-up closed."""
    away = _away(call)
    settings = services().signup.settings()
    if away is None and not settings.enabled:
        away = _closed(call)
    return settings, away


SIGNUP_ANSWERS = {
    **page_responses(statuses=("400", "403", "404", "429")),
    **redirects("Signed in already: to the home; delegated: to the publisher's site."),
}


@router.route(
    SIGNUP,
    GET=ours(
        "Portal_SignUp_Show",
        "The sign-up form, with the terms of service when the settings show them; 404 when "
        "sign-up is closed.",
        responses=SIGNUP_ANSWERS,
    ),
)
def signup_page(call: Call) -> Response:
    settings, elsewhere = _open(call)
    return elsewhere or _form(call, settings)


@router.route(
    SIGNUP,
    POST=ours(
        "Portal_SignUp",
        "Creates a pending account and mails confirmSignUpIdentityDefault; the same page "
        "whether or not the address is registered. Consent is required when the terms ask it.",
        body=form_body("csrf", *FIELDS, "consent", required=["csrf"]),
        responses={**SIGNUP_ANSWERS, "202": page_responses(ok="202")["202"]},
    ),
)
def sign_up(call: Call) -> Response:
    settings, elsewhere = _open(call)
    if elsewhere is not None:
        return elsewhere
    try:
        fields = html.form_fields(call)
    except MalformedRequest:
        fields = {}
    values = {k: fields.get(k, "")[:300] for k in FIELDS}
    shown = {k: values[k].strip() for k in ("firstName", "lastName", "email")}
    # A script (JSON) cannot be made to post by another site, and gets APIM's errors; a form
    # can, so it carries the page's token.
    as_json = wants_json(call)
    if not as_json and not csrf_ok(
        _PURPOSE, html.cookie(call, SIGNUP_COOKIE), fields.get("csrf", "")
    ):
        return _form(call, settings, 403, values=shown, problem=FORM_EXPIRED)
    started = time.monotonic()
    try:
        consented = fields.get("consent") == "yes"
        terms = settings.terms
        asked = terms.enabled and terms.consent_required and not consented
        draft = _draft(values, [FieldProblem("consent", "required")] if asked else [])
        services().signup.sign_up(draft, consented, call.source_ip)
    except (ValidationFailed, Throttled) as exc:
        if as_json:
            return error_response(exc)
        if isinstance(exc, ValidationFailed):
            return _form(call, settings, 400, errors=_plain(exc.details, values), values=shown)
        response = _form(call, settings, 429, values=shown, problem=exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except SignUpClosed:
        return _closed(call)
    finally:
        pad_to_floor(started, get_settings().reset_floor_ms)
    return _form(call, settings, 202, sent=True)


def _draft(values: dict[str, str], problems: list[FieldProblem]) -> UserDraft:
    """The account asked for; every field's problem at once (ValidationFailed)."""
    given = {k: values[k].strip() for k in ("firstName", "lastName", "email")}
    problems = [*(FieldProblem(k, "required") for k, v in given.items() if not v), *problems]
    if not values["password"]:
        problems.append(FieldProblem("password", "required"))
    elif values["password"] != values["confirmPassword"]:
        problems.append(FieldProblem("confirmPassword", "The two passwords are not the same."))
    props = {k: v for k, v in given.items() if v}
    if values["password"]:
        props["password"] = values["password"]
    try:
        draft = read_user_fields(props)
    except ValidationFailed as exc:
        raise ValidationFailed([*exc.details, *problems]) from None
    if problems:
        raise ValidationFailed(problems)
    return draft


def _confirm_form(call: Call, token: str, status: int = 200, error: str | None = None) -> Response:
    """The confirmation form: the password chosen at sign-up, with a fresh pre-session value
    in a cookie of this page and the form's CSRF token bound to it (a form posted from another
    site cannot sign anybody in to an account of its own)."""
    link, user = services().invitations.open(token, LinkPurpose.SIGNUP)
    nonce = secrets.token_urlsafe(24)
    response = page(
        "signup.html",
        call.route,
        status,
        title="Confirm your account",
        user=user,
        token=token,
        action="signup",
        expires=link.expires_at.strftime("%d %B %Y, %H:%M UTC"),
        errors={"password": error} if error else {},
        signup_csrf=csrf_token(_CONFIRM_PURPOSE, nonce),
    )
    response.headers["Set-Cookie"] = html.set_cookie(CONFIRM_COOKIE, nonce, call.path, 3600)
    return response


@router.route(
    CONFIRM,
    GET=ours(
        "SignUp_Show",
        "Shows the confirmation form of a self-registered address, which asks for the password "
        "chosen at sign-up; never consumes the token.",
        params=[token_query("The sign-up token from the email.")],
        responses=page_responses(statuses=("404", "410")),
    ),
)
def show_confirmation(call: Call) -> Response:
    try:
        return _confirm_form(call, call.query.get("token", ""))
    except DomainError as exc:
        return problem(call, exc, SIGNUP_ADVICE)


@router.route(
    CONFIRM,
    POST=ours(
        "SignUp_Confirm",
        "With the password chosen at sign-up: activates the account, consumes the token and "
        "signs the developer in (a form: 303 to the home with the session cookie). A wrong "
        "password changes nothing and counts as a failed sign-in.",
        body=form_body("token", "password", "csrf"),
        responses={
            **page_responses(
                ok_json=ref("Activation"), statuses=("400", "403", "404", "410", "409", "429")
            ),
            **redirects("A form: to the portal's home, signed in."),
        },
    ),
)
def confirm_signup(call: Call) -> Response:
    fields = form(call)
    token = fields.get("token", "")
    as_json = wants_json(call)
    try:
        # A script (JSON) cannot be made to post by another site; a form can.
        if not as_json and not csrf_ok(
            _CONFIRM_PURPOSE, html.cookie(call, CONFIRM_COOKIE), fields.get("csrf", "")
        ):
            return _confirm_form(call, token, 403, CONFIRM_EXPIRED)
        try:
            user, session = services().sessions.confirm_sign_up(
                token, fields.get("password"), call.source_ip
            )
        except ValidationFailed as exc:
            if as_json:
                raise
            return _confirm_form(call, token, 400, exc.details[0].message)
        except Throttled as exc:
            if as_json:
                raise
            response = _confirm_form(call, token, 429, exc.message)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
    except DomainError as exc:
        return problem(call, exc, SIGNUP_ADVICE)
    if as_json:
        message = f"Thank you, {user.first_name}. Your email address is confirmed."
        return done(call, user, "Your account is active", message)
    response = see_other(call, "")
    seconds = int(get_settings().session_hours * 3600)
    response.headers["Set-Cookie"] = session_cookie(session, seconds)
    return response
