"""The developer's profile pages: names, email change (confirmed by link), password, closing."""

from __future__ import annotations

from datetime import datetime

from chalice import Response

from chalicelib.api.docs import form_body, ours, page_responses, redirects, ref, token_query
from chalicelib.api.portal import done, form, page, problem
from chalicelib.api.portal_session import (
    Developer,
    cleared_cookie,
    delegate,
    developer_form,
    developer_page,
    render,
    see_other,
    session_cookie,
)
from chalicelib.api.routing import Call, Router
from chalicelib.bootstrap import services
from chalicelib.config import get_settings
from chalicelib.domain.delegation import Operation
from chalicelib.domain.etag import NEVER, Expected
from chalicelib.domain.users import NAME_MAX, User, read_user_changes
from chalicelib.errors import (
    DomainError,
    EmailTaken,
    FieldProblem,
    PreconditionFailed,
    StateConflict,
    Throttled,
    ValidationFailed,
)

router = Router(management=False)
PROFILE = "/portal/profile"
EMAIL_CONFIRM = "/confirm-v2/identities/basic/email"
EMAIL_ADVICE = "Ask for a new link from your profile in the developer portal."
DONE = {
    "names": "Your name is saved.",
    "email": (
        "We sent a link to your new address. Your email address changes when you follow it; "
        "until then, sign in with the current one."
    ),
    "password": "Your password is changed. Other sessions were signed out.",
}
# What each field's problems say on the page: (when empty, otherwise). The services' own
# sentences (a password the policy refuses, a name with control characters) are kept.
_PLAIN: dict[str, tuple[str, str | None]] = {
    "firstName": (
        "Enter your first name.",
        f"Enter a first name of at most {NAME_MAX} characters.",
    ),
    "lastName": ("Enter your last name.", f"Enter a last name of at most {NAME_MAX} characters."),
    "email": ("Enter your new email address.", "Enter an email address like name@example.com."),
    "currentPassword": ("Enter your current password.", None),
    "newPassword": ("Enter a new password.", None),
    "confirmPassword": ("Enter the new password again.", None),
}
_LABELS = {"newPassword": "New password", "currentPassword": "Current password"}


def _plain(problems: list[FieldProblem], values: dict[str, str]) -> dict[str, str]:
    """The first problem of each field, in the page's words."""
    errors: dict[str, str] = {}
    for found in problems:
        if found.target in errors:
            continue
        when_empty, otherwise = _PLAIN.get(found.target, ("", None))
        if not values.get(found.target, "").strip() and when_empty:
            errors[found.target] = when_empty
            continue
        message = found.message
        for name, label in _LABELS.items():
            message = message.replace(f"'{name}'", label)
        # A length or an address's form: the page's own sentence (the API's names a property).
        malformed = "must have" in message or "is not a valid" in message
        errors[found.target] = otherwise if otherwise and malformed else message
    return errors


def _profile(
    call: Call,
    developer: Developer,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    problem_text: str | None = None,
) -> Response:
    return render(
        call,
        "profile.html",
        developer,
        status,
        title="Your profile",
        current="profile",
        message=DONE.get(call.query.get("done", "")) if status == 200 else None,
        problem=problem_text,
        errors=errors or {},
        values=values or {},
    )


def _version(fields: dict[str, str]) -> Expected:
    raw = fields.get("version", "")
    return Expected(int(raw)) if raw.isdigit() and int(raw) < 2**63 else NEVER


SIGNED_OUT = redirects("Without a live session: to sign-in, which returns here.")
PROFILE_PAGE = {
    **page_responses(statuses=("400", "403", "409", "429")),
    **redirects("Done: back to the profile, saying so (or to sign-in, without a session)."),
}


@router.route(
    PROFILE,
    GET=ours(
        "Portal_Profile",
        "The signed-in developer's profile: email, names, registration date, and the forms to "
        "change them, the password, or close the account.",
        responses={**page_responses(), **SIGNED_OUT},
    ),
)
@developer_page
def profile(call: Call, developer: Developer) -> Response:
    return _profile(call, developer)


@router.route(
    PROFILE + "/name",
    POST=ours(
        "Portal_Profile_ChangeName",
        "Changes the developer's first and last name (both required).",
        body=form_body("csrf", "version", "firstName", "lastName", required=["csrf"]),
        responses=PROFILE_PAGE,
    ),
)
@developer_form
def change_names(call: Call, developer: Developer, fields: dict[str, str]) -> Response:
    delegated = delegate(call, Operation.CHANGE_PROFILE, user_id=developer.user.id)
    if delegated is not None:
        return delegated
    values = {k: fields.get(k, "").strip() for k in ("firstName", "lastName")}
    try:
        read_user_changes(values)
        missing = [FieldProblem(k, "required") for k, v in values.items() if not v]
        if missing:
            raise ValidationFailed(missing)
    except ValidationFailed as exc:
        return _profile(call, developer, 400, _plain(exc.details, values), values)
    try:
        services().profile.change_names(
            developer.user, values["firstName"], values["lastName"], _version(fields)
        )
    except PreconditionFailed:
        fresh = services().accounts.get(developer.user.id)
        text = (
            "Your profile was changed elsewhere after you opened this page, so nothing was "
            "saved. The page now shows the current names; check them and save again."
        )
        return _profile(
            call,
            Developer(fresh, developer.token, developer.csrf),
            409,
            values=values,
            problem_text=text,
        )
    return see_other(call, "portal/profile?done=names")


@router.route(
    PROFILE + "/email",
    POST=ours(
        "Portal_Profile_ChangeEmail",
        "Sends emailChangeIdentityDefault to the new address; the address changes only when its "
        "link is confirmed.",
        body=form_body("csrf", "email", required=["csrf"]),
        responses=PROFILE_PAGE,
    ),
)
@developer_form
def change_email(call: Call, developer: Developer, fields: dict[str, str]) -> Response:
    delegated = delegate(call, Operation.CHANGE_PROFILE, user_id=developer.user.id)
    if delegated is not None:
        return delegated
    values = {"email": fields.get("email", "").strip()}
    try:
        email = read_user_changes(values).email
        if not email:
            raise ValidationFailed([FieldProblem("email", "required")])
        services().profile.request_email_change(developer.user, email)
    except ValidationFailed as exc:
        return _profile(call, developer, 400, _plain(exc.details, values), values)
    except Throttled as exc:
        response = _profile(call, developer, 429, {"email": exc.message}, values)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return see_other(call, "portal/profile?done=email")


@router.route(
    PROFILE + "/password",
    POST=ours(
        "Portal_Profile_ChangePassword",
        "Changes the password (the current one required); other sessions end and this one "
        "continues with a fresh cookie.",
        body=form_body(
            "csrf", "currentPassword", "newPassword", "confirmPassword", required=["csrf"]
        ),
        responses=PROFILE_PAGE,
    ),
)
@developer_form
def change_password(call: Call, developer: Developer, fields: dict[str, str]) -> Response:
    delegated = delegate(call, Operation.CHANGE_PASSWORD, user_id=developer.user.id)
    if delegated is not None:
        return delegated
    values = {k: fields.get(k, "") for k in ("currentPassword", "newPassword", "confirmPassword")}
    missing = [FieldProblem(k, "required") for k, v in values.items() if not v]
    if not missing and values["newPassword"] != values["confirmPassword"]:
        missing = [FieldProblem("confirmPassword", "The two new passwords are not the same.")]
    try:
        if missing:
            raise ValidationFailed(missing)
        token = services().sessions.change_password(
            developer.user, values["currentPassword"], values["newPassword"], call.source_ip
        )
    except ValidationFailed as exc:
        return _profile(call, developer, 400, _plain(exc.details, values))
    except Throttled as exc:
        response = _profile(call, developer, 429, {"currentPassword": exc.message})
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    response = see_other(call, "portal/profile?done=password")
    response.headers["Set-Cookie"] = session_cookie(token, int(get_settings().session_hours * 3600))
    return response


def _close_page(
    call: Call, developer: Developer, status: int = 200, problem_text: str | None = None
) -> Response:
    return render(
        call,
        "close.html",
        developer,
        status,
        title="Close your account",
        current="profile",
        problem=problem_text,
    )


@router.route(
    PROFILE + "/close",
    GET=ours(
        "Portal_CloseAccount_Show",
        "Asks the developer to confirm closing their account.",
        responses={**page_responses(), **SIGNED_OUT},
    ),
)
@developer_page
def close_page(call: Call, developer: Developer) -> Response:
    delegated = delegate(call, Operation.CLOSE_ACCOUNT, user_id=developer.user.id)
    if delegated is not None:
        return delegated
    return _close_page(call, developer)


@router.route(
    PROFILE + "/close",
    POST=ours(
        "Portal_CloseAccount",
        "Closes the developer's account: subscriptions cancelled, keys stop at once, "
        "accountClosedDeveloper sent, the address free again; signs out.",
        body=form_body("csrf", "confirm", required=["csrf", "confirm"]),
        responses={
            **redirects("Closed: to the portal's home, signed out (or to sign-in)."),
            **page_responses(statuses=("400", "403", "409")),
        },
    ),
)
@developer_form
def close_account(call: Call, developer: Developer, fields: dict[str, str]) -> Response:
    delegated = delegate(call, Operation.CLOSE_ACCOUNT, user_id=developer.user.id)
    if delegated is not None:
        return delegated
    if fields.get("confirm") != "yes":
        return _close_page(call, developer, 400, "Confirm with the button below.")
    try:
        services().profile.close_account(developer.user)
    except StateConflict as exc:
        # The last administrator, or a change racing this one: nothing was closed.
        return _close_page(call, developer, 409, exc.message)
    response = see_other(call, "?m=closed")
    response.headers["Set-Cookie"] = cleared_cookie()
    return response


@router.route(
    EMAIL_CONFIRM,
    GET=ours(
        "EmailChange_Show",
        "The email change link's page: which address the account takes; never consumes the token.",
        params=[token_query("The token from the emailChangeIdentityDefault email.")],
        responses=page_responses(statuses=("404", "410")),
    ),
)
def show_email_change(call: Call) -> Response:
    token = call.query.get("token", "")
    try:
        link, user = services().profile.open_email_change(token)
    except DomainError as exc:
        return problem(call, exc, EMAIL_ADVICE)
    return _confirm_page(call, token, link.new_email, user, link.expires_at)


def _confirm_page(
    call: Call, token: str, new_email: str, user: User, expires: datetime
) -> Response:
    return page(
        "email_confirm.html",
        call.route,
        title="Confirm your new email address",
        token=token,
        new_email=new_email,
        user=user,
        expires=expires.strftime("%d %B %Y, %H:%M UTC"),
        action="email",
    )


@router.route(
    EMAIL_CONFIRM,
    POST=ours(
        "EmailChange_Confirm",
        "Confirms the new address: the account takes it, the token is consumed, and links sent "
        "to the old address stop working.",
        body=form_body("token"),
        responses=page_responses(ok_json=ref("Activation"), statuses=("400", "404", "409", "410")),
    ),
)
def confirm_email_change(call: Call) -> Response:
    try:
        user = services().profile.confirm_email_change(form(call).get("token", ""))
    except EmailTaken:
        taken = StateConflict("Another account already uses this email address.")
        return problem_page(call, taken)
    except DomainError as exc:
        return problem(call, exc, EMAIL_ADVICE)
    message = f"Your account's email address is now {user.email}. Sign in with it from now on."
    return done(call, user, "Your email address is changed", message)


def problem_page(call: Call, exc: StateConflict) -> Response:
    return page(
        "problem.html",
        call.route,
        409,
        title="The address was not changed",
        message=exc.message,
        advice="Your account keeps its current address. Choose another one in your profile.",
    )
