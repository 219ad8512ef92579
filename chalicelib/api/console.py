"""The admin console: server-rendered pages under /console/ for members of Administrators.

Every page and form goes through the same services as the management API, with the signed-in
administrator as the actor. What this module holds is what all console pages share:

- Sign-in: the developers' sign-in rules (``sessions().sign_in``: throttling, one answer for
  every failure), then membership of the built-in Administrators group; a developer who is not
  an administrator hears the same "email or password is not correct" as a wrong password.
- The session: one cookie, ``apim_console`` (HttpOnly, SameSite=Strict, Path=/console, Secure
  outside the local stage), holding a console token (``sessions().open_console``): a kind of its
  own, so no portal or issued user token opens the console, whose random nonce is the session
  id. It expires after ``CONSOLE_IDLE_MINUTES`` (30) of inactivity; every request re-issues it.
  Each request checks the token (one read of the user: refused once blocked, deleted or after a
  new password), that the session was not signed out (one read: sign-out records the session
  id, so a copy of the cookie kept from before dies too) and the Administrators membership (one
  read), so a blocked or demoted administrator is out on the next request.
- CSRF: every form carries ``csrf``, an HMAC of the session id under the management key; a POST
  without the right one is refused with 403 before anything is read or changed. The sign-in form
  carries one too, bound to a random pre-session value held in the same cookie.
- Pages: Jinja2 with autoescaping under templates/console/, the portal's strict headers (no
  script, nothing from other origins), relative links (chalice local serves at /, API Gateway
  under /api/).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from chalice import Response

from chalicelib import context
from chalicelib.api import html
from chalicelib.api.errors import status_and_code
from chalicelib.api.html import PAGE_HEADERS, csrf_ok, csrf_token
from chalicelib.api.routing import Call, Router
from chalicelib.bootstrap import services
from chalicelib.config import get_settings
from chalicelib.domain.custom_groups import DESCRIPTION_MAX, DISPLAY_NAME_MAX
from chalicelib.domain.etag import NEVER, Expected
from chalicelib.domain.users import NAME_MAX, NOTE_MAX, User
from chalicelib.errors import (
    DomainError,
    FieldProblem,
    MalformedRequest,
    NotAuthenticated,
    PreconditionFailed,
    ResourceNotFound,
    Throttled,
)
from chalicelib.services.sessions import SIGN_IN_FAILED, ConsoleSession

router = Router(management=False, documented=False)
COOKIE = "apim_console"
ROOT = "/console"
_SESSION, _PRE = "s.", "p."
# The email preview's HTML part loads in a frame from this origin (its own, sandboxed policy).
CONSOLE_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
FORM_EXPIRED = "This form has expired. Please sign in again."
SESSION_ENDED = "Your session has ended. Please sign in again."
# What a field is called on the page, for the services' messages (they name API properties).
LABELS = {
    "firstName": "First name",
    "lastName": "Last name",
    "email": "Email",
    "password": "Password",
    "note": "Note",
    "displayName": "Name",
    "description": "Description",
    "groupId": "Id",
    "subject": "Subject",
    "body": "Body",
}
_MESSAGES = {
    "signed-out": "You are signed out.",
    "ended": SESSION_ENDED,
}


@dataclass(frozen=True)
class Admin:
    """The administrator signed in for this request."""

    user: User
    sid: str
    csrf: str
    session: ConsoleSession


Handler = Callable[[Call, Admin], Response]
FormHandler = Callable[[Call, Admin, dict[str, str]], Response]


# --- rendering ---------------------------------------------------------------------------------


def home(call: Call) -> str:
    """The relative URL of /console/ from this page (works at / and under a stage prefix).

    Counted on the path as the browser sent it, from ``/console`` on (API Gateway's request path
    starts with the stage): ``/console/`` is one level deeper than ``/console``, whatever route
    served it.
    """
    tail = call.path[max(call.path.find(ROOT), 0) :]
    return "../" * max(tail.count("/") - 1, 0) + "console/"


def render(
    call: Call,
    name: str,
    admin: Admin | None,
    status: int = 200,
    **values: Any,
) -> Response:
    """A console page; ``admin`` None for the sign-in page (no nav)."""
    return html.render(
        "console",
        name,
        status,
        CONSOLE_HEADERS,
        home=home(call),
        admin=admin.user if admin else None,
        csrf=admin.csrf if admin else "",
        **values,
    )


def q(value: str) -> str:
    """A value as one path segment or query value (``/`` and ``?`` escaped too)."""
    return quote(value, safe="")


def see_other(call: Call, target: str) -> Response:
    """303 to a console page, ``target`` relative to /console/ (e.g. ``users/ada?done=added``)."""
    return html.redirect(home(call) + target, CONSOLE_HEADERS)


def problem_page(call: Call, admin: Admin, exc: DomainError) -> Response:
    """An error the page cannot show next to a field (e.g. the user was deleted meanwhile)."""
    status, _ = status_and_code(exc)
    title = "Not found" if isinstance(exc, ResourceNotFound) else "That did not work"
    return render(call, "problem.html", admin, status, title=title, message=friendly(exc.message))


def friendly(message: str) -> str:
    """A service message in the page's words: ``'firstName'`` becomes ``First name``."""
    for name, label in LABELS.items():
        message = message.replace(f"'{name}'", label)
    return message


# Fields whose problems the console says in its own words: (when empty, otherwise).
_PLAIN: dict[str, tuple[str | None, str]] = {
    "firstName": ("Enter a first name.", f"Enter a first name of at most {NAME_MAX} characters."),
    "lastName": ("Enter a last name.", f"Enter a last name of at most {NAME_MAX} characters."),
    "email": (
        "Enter an email address.",
        "Enter an email address in the form name@example.com.",
    ),
    "note": (None, f"Shorten the note to at most {NOTE_MAX} characters."),
    "displayName": (
        "Enter a name for the group.",
        f"Enter a group name of at most {DISPLAY_NAME_MAX} characters.",
    ),
    "description": (None, f"Shorten the description to at most {DESCRIPTION_MAX} characters."),
}


def field_errors(
    problems: list[FieldProblem], values: dict[str, str] | None = None
) -> dict[str, str]:
    """The first problem of each field, by field name, in plain words.

    For the fields of ``_PLAIN`` the console says what to do ("Enter a first name."), chosen
    by the value that was sent; other problems (a password the policy refuses, a group id) keep
    the service's sentence, with API property names replaced by the page's labels.
    """
    errors: dict[str, str] = {}
    for problem in problems:
        if problem.target in errors:
            continue
        plain = _PLAIN.get(problem.target)
        if plain is None:
            errors[problem.target] = friendly(problem.message)
            continue
        when_empty, otherwise = plain
        empty = not (values or {}).get(problem.target, "").strip()
        errors[problem.target] = when_empty if empty and when_empty else otherwise
    return errors


def all_field_errors(problems: list[FieldProblem]) -> dict[str, list[str]]:
    """Every problem of each field (a template's), in the page's words, in order."""
    errors: dict[str, list[str]] = {}
    for problem in problems:
        errors.setdefault(problem.target, []).append(friendly(problem.message))
    return errors


def shown_version(fields: dict[str, str]) -> Expected:
    """The version the submitted page was showing; a garbled one matches nothing."""
    raw = fields.get("version", "")
    return Expected(int(raw)) if raw.isdigit() and int(raw) < 2**63 else NEVER


def stale_message(what: str) -> str:
    return (
        f"This {what} was changed by someone else after you opened the page, so nothing was "
        "changed. The page now shows the current state; check it and try again."
    )


def is_stale(exc: DomainError) -> bool:
    return isinstance(exc, PreconditionFailed)


# --- form fields -------------------------------------------------------------------------------


def fields_of(call: Call) -> dict[str, str]:
    """The posted form; one that cannot be read carries no CSRF token, so it is refused (403)."""
    try:
        return html.form_fields(call)
    except MalformedRequest:
        return {}


# --- cookie, session, CSRF ---------------------------------------------------------------------


def _cookie_value(call: Call) -> str:
    return html.cookie(call, COOKIE)


def _cookie_path(call: Call) -> str:
    """/console, or /<stage>/console when the path the browser sees carries a stage."""
    at = call.path.find(ROOT)
    return call.path[: at + len(ROOT)] if at >= 0 else ROOT


def _set_cookie(call: Call, value: str, max_age: int) -> str:
    return html.set_cookie(COOKIE, value, _cookie_path(call), max_age)


def _encode_session(token: str) -> str:
    return _SESSION + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def _decode_session(value: str) -> str | None:
    if not value.startswith(_SESSION):
        return None
    body = value[len(_SESSION) :]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8") or None
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def _session_cookie(call: Call, token: str) -> str:
    """The session's token, which dies after the idle time, in the cookie."""
    max_age = int(get_settings().console_idle_minutes * 60)
    return _set_cookie(call, _encode_session(token), max_age)


def _act_as(admin: User) -> None:
    """Name the administrator as the actor of this request (audit trail, request log)."""
    context.act_as(admin.id, "administrator")


def signed_in(call: Call) -> Admin | None:
    """The administrator whose live session this request carries, or None.

    Three reads: the user (its token's epoch and state), whether the session was signed out,
    and the Administrators membership.
    """
    token = _decode_session(_cookie_value(call))
    if token is None:
        return None
    try:
        session = services().sessions.console_session(token, call.source_ip)
    except NotAuthenticated:
        return None
    if not services().groups.is_administrator(session.user):
        return None
    return Admin(session.user, session.sid, csrf_token("session", session.sid), session)


# Where a sign-in may return to: a console page, as a path below /console/ with its query.
_RETURN = re.compile(r"(users|groups|templates)(/[A-Za-z0-9._~%!$&'()*+,;=:@-]+)*(\?[^#\\]*)?")
_RETURN_MAX = 1000


def asked_page(call: Call) -> str:
    """The page this request asked for, below /console/ (a POST returns to its form's page)."""
    at = call.path.find(ROOT + "/")
    tail = call.path[at + len(ROOT) + 1 :] if at >= 0 else ""
    if call.query and call.method == "GET":
        tail += "?" + urlencode(call.query)
    return tail if safe_return(tail) else ""


def safe_return(target: str) -> bool:
    """A relative console page, never another site, another path or a scheme."""
    return (
        len(target) <= _RETURN_MAX
        and _RETURN.fullmatch(target) is not None
        and "//" not in target
        and ".." not in target.split("?", 1)[0]
    )


def _signin_link(message: str | None, target: str) -> str:
    """The sign-in page's address; the Users page, where sign-in leads anyway, is not named."""
    target = "" if target == "users" else target
    query = {k: v for k, v in (("m", message), ("next", target)) if v}
    return "signin" + ("?" + urlencode(query) if query else "")


def _signed_out(call: Call) -> Response:
    """No session (or it ended): to the sign-in page, which returns to the page asked for,
    forgetting a dead cookie."""
    ended = _cookie_value(call).startswith(_SESSION)
    response = see_other(call, _signin_link("ended" if ended else None, asked_page(call)))
    if ended:
        response.headers["Set-Cookie"] = _set_cookie(call, "", 0)
    return response


def _finish(call: Call, admin: Admin, response: Response) -> Response:
    if "Set-Cookie" not in response.headers:  # sign-out clears it instead
        renewed = services().sessions.renew_console(admin.session)
        response.headers["Set-Cookie"] = _session_cookie(call, renewed)
    return response


def page(handler: Handler) -> Callable[[Call], Response]:
    """A GET page for administrators only; renews the session."""

    @functools.wraps(handler)
    def view(call: Call) -> Response:
        admin = signed_in(call)
        if admin is None:
            return _signed_out(call)
        _act_as(admin.user)
        try:
            response = handler(call, admin)
        except DomainError as exc:
            response = problem_page(call, admin, exc)
        return _finish(call, admin, response)

    return view


def form(handler: FormHandler) -> Callable[[Call], Response]:
    """A POST for administrators only: refused (403, nothing read or changed) without CSRF."""

    @functools.wraps(handler)
    def view(call: Call) -> Response:
        admin = signed_in(call)
        if admin is None:
            return _signed_out(call)
        fields = fields_of(call)
        if not csrf_ok("session", admin.sid, fields.get("csrf", "")):
            refused = render(
                call,
                "problem.html",
                admin,
                403,
                title="The form was refused",
                message=(
                    "This form did not carry a valid security token, so nothing was changed. "
                    "Open the page again from the console and resubmit."
                ),
            )
            return _finish(call, admin, refused)
        _act_as(admin.user)
        try:
            response = handler(call, admin, fields)
        except DomainError as exc:
            response = problem_page(call, admin, exc)
        return _finish(call, admin, response)

    return view


def notice(call: Call, messages: dict[str, str]) -> str | None:
    """The message a redirect asked for (``?done=added``); never text from the URL itself."""
    return messages.get(call.query.get("done", ""))


# --- routes: the console's root, stylesheet, sign-in and sign-out ------------------------------


@router.route(ROOT, "GET")
def console_root(call: Call) -> Response:
    return see_other(call, "users")


@router.route(ROOT + "/console.css", "GET")
def stylesheet(call: Call) -> Response:
    return html.stylesheet("console", "console.css")


def _signin_form(
    call: Call,
    status: int = 200,
    email: str = "",
    error: str | None = None,
    target: str = "",
) -> Response:
    """The sign-in form, with a fresh pre-session value in the cookie and its CSRF token."""
    nonce = secrets.token_urlsafe(24)
    target = target or call.query.get("next", "")
    response = render(
        call,
        "signin.html",
        None,
        status,
        title="Sign in",
        email=email,
        error=error,
        message=_MESSAGES.get(call.query.get("m", "")) if status == 200 else None,
        signin_csrf=csrf_token("signin", nonce),
        next=target if safe_return(target) else "",
    )
    response.headers["Set-Cookie"] = _set_cookie(call, _PRE + nonce, 3600)
    return response


@router.route(ROOT + "/signin", "GET")
def signin_page(call: Call) -> Response:
    if signed_in(call) is not None:
        target = call.query.get("next", "")
        return see_other(call, target if safe_return(target) else "users")
    return _signin_form(call)


@router.route(ROOT + "/signin", "POST")
def sign_in(call: Call) -> Response:
    """Email and password of an administrator; every failure reads the same."""
    fields = fields_of(call)
    email = fields.get("email", "")[:254]
    target = fields.get("next", "")
    target = target if safe_return(target) else ""
    cookie = _cookie_value(call)
    nonce = cookie[len(_PRE) :] if cookie.startswith(_PRE) else ""
    if not csrf_ok("signin", nonce, fields.get("csrf", "")):
        return _signin_form(call, 403, email, FORM_EXPIRED, target)
    try:
        user, _, _ = services().sessions.sign_in(email, fields.get("password", ""), call.source_ip)
    except Throttled as exc:
        return _signin_form(call, 429, email, exc.message, target)
    except NotAuthenticated as exc:
        return _signin_form(call, 401, email, exc.message, target)
    if not services().groups.is_administrator(user):
        return _signin_form(call, 401, email, SIGN_IN_FAILED, target)
    _act_as(user)
    response = see_other(call, target or "users")
    response.headers["Set-Cookie"] = _session_cookie(call, services().sessions.open_console(user))
    return response


@router.route(ROOT + "/signout", "POST")
@form
def sign_out(call: Call, admin: Admin, fields: dict[str, str]) -> Response:
    services().sessions.end_console(admin.session)
    response = see_other(call, "signin?m=signed-out")
    response.headers["Set-Cookie"] = _set_cookie(call, "", 0)
    return response


@router.unknown("console")
def not_found(call: Call) -> Response:
    """Any other path below /console: the console's own 404 page (with its menu when signed in)."""
    admin = signed_in(call)
    response = render(
        call,
        "problem.html",
        admin,
        404,
        title="Page not found",
        message=(
            "There is no console page at this address. Check the address, or start again "
            "from Users."
        ),
    )
    return _finish(call, admin, response) if admin is not None else response
