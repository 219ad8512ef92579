"""The developer's portal session: who is signed in, pages that require it, their CSRF, `next`.

The session is the ``apim_session`` cookie that a form sign-in sets (HttpOnly, SameSite=Strict,
Secure outside the local stage), holding a user token. Every request checks it through
``sessions().authenticate``: one read of the user, refused once the account is blocked, deleted
or has a new password (its token epoch), so a block ends the portal session on the next request.

Every form of a signed-in page carries ``csrf``, an HMAC of the session's token under the
management key (``html.csrf_token``); a POST without the right one changes nothing (403).

When delegation is on, ``delegate`` gives the redirect to the publisher's site that a page or a
form answers instead of acting.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from chalice import Response

from chalicelib import context
from chalicelib.api import html
from chalicelib.api.errors import status_and_code
from chalicelib.api.html import PAGE_HEADERS, csrf_ok, csrf_token
from chalicelib.api.portal import page
from chalicelib.api.routing import Call
from chalicelib.bootstrap import services
from chalicelib.domain.delegation import Operation
from chalicelib.domain.users import User
from chalicelib.errors import DomainError, MalformedRequest, NotAuthenticated

SESSION_COOKIE = "apim_session"
_PURPOSE = "portal"
# Where a sign-in may return to: a page of the portal, as a path from the app's root
# (``portal/profile``), with its query; never another site, another path or a scheme.
_NEXT = re.compile(r"portal(/[A-Za-z0-9._~%!$&'()*+,;=:@-]+)*/?(\?[^#\\\s\x00-\x1f\x7f]*)?")
_NEXT_MAX = 1000
# What a redirect to the sign-in page may ask it to say (never text from the URL itself).
MESSAGES = {
    "ended": "Your session has ended. Please sign in again.",
    "signed-out": "You are signed out.",
    "closed": "Your account is closed.",
}


@dataclass(frozen=True)
class Developer:
    """The developer signed in for this request: the account, its token, its forms' CSRF."""

    user: User
    token: str
    csrf: str


PageHandler = Callable[[Call, Developer], Response]
FormHandler = Callable[[Call, Developer, dict[str, str]], Response]


def _sid(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_of(token: str) -> str:
    """The CSRF token of the forms of the session holding this user token."""
    return csrf_token(_PURPOSE, _sid(token))


def session_of(call: Call) -> Developer | None:
    """The developer whose live session this request carries, or None (one read)."""
    token = html.cookie(call, SESSION_COOKIE)
    if not token:
        return None
    try:
        user = services().sessions.authenticate(token, call.source_ip)
    except NotAuthenticated:
        return None
    context.act_as(user.id, "developer")
    return Developer(user, token, csrf_of(token))


def current_developer(call: Call) -> User | None:
    """The signed-in developer's account, or None when signed out (or blocked, deleted...)."""
    developer = session_of(call)
    return developer.user if developer else None


def session_cookie(token: str, max_age: int) -> str:
    return html.set_cookie(SESSION_COOKIE, token, "/", max_age)


def cleared_cookie() -> str:
    return session_cookie("", 0)


def home_of(call: Call) -> str:
    """The relative URL of the portal's home (``/``) from this page."""
    return html.relative_root(call.route) or "./"


def safe_next(value: str) -> str:
    """``value`` if it is a portal page to return to (``portal/...``), else "" (the home).

    One leading slash is accepted (``/portal/profile``) and dropped: the target is resolved
    from the app's root, so it works under API Gateway's stage as well.
    """
    target = value[1:] if value.startswith("/") and not value.startswith("//") else value
    ok = (
        len(target) <= _NEXT_MAX
        and _NEXT.fullmatch(target) is not None
        and "//" not in target
        and ".." not in target.split("?", 1)[0]
    )
    return target if ok else ""


def asked_page(call: Call) -> str:
    """The portal page this request asked for (a POST returns to its form's page)."""
    target = call.route_path().lstrip("/")
    if call.query and call.method == "GET":
        target += "?" + urlencode(call.query)
    return safe_next(target)


def signin_link(call: Call, target: str = "", message: str = "") -> str:
    query = {k: v for k, v in (("m", message), ("next", target)) if v}
    return home_of(call) + "signin" + ("?" + urlencode(query) if query else "")


def see_other(call: Call, target: str) -> Response:
    """303 to a page, ``target`` relative to the app's root (``portal/profile?done=names``)."""
    return html.redirect(home_of(call) + target, PAGE_HEADERS)


def signed_out(call: Call) -> Response:
    """No live session: to the sign-in page, which returns here; a dead cookie is forgotten."""
    ended = bool(html.cookie(call, SESSION_COOKIE))
    response = html.redirect(
        signin_link(call, asked_page(call), "ended" if ended else ""), PAGE_HEADERS
    )
    if ended:
        response.headers["Set-Cookie"] = cleared_cookie()
    return response


def delegate(call: Call, operation: Operation, **params: str) -> Response | None:
    """The redirect to the publisher's site when ``operation`` is delegated, else None: 302
    for a page (APIM's), 303 for a form, so the browser follows with a GET."""
    target = services().delegation.redirect_for(operation, **params)
    if target is None:
        return None
    headers: dict[str, str | list[str]] = {
        k: v for k, v in PAGE_HEADERS.items() if k != "Content-Type"
    }
    headers["Location"] = target
    status = 302 if call.method in ("GET", "HEAD") else 303
    return Response(body="", status_code=status, headers=headers)


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?")


@dataclass(frozen=True)
class Delegated:
    """Which of a signed-in page's actions go to the publisher's site, and its origin."""

    account: bool = False
    subscriptions: bool = False
    origin: str = ""


def delegated() -> Delegated:
    """What delegation takes over for a signed-in developer's pages (the setting, read once a
    request)."""
    delegation = services().delegation
    settings = delegation.settings()
    account = delegation.enabled_for(Operation.CHANGE_PROFILE, settings)
    subscriptions = delegation.enabled_for(Operation.SUBSCRIBE, settings)
    if not (account or subscriptions):
        return Delegated()
    parts = urlsplit(settings.url or "")
    origin = f"{parts.scheme}://{parts.netloc}"
    return Delegated(account, subscriptions, origin if _ORIGIN.fullmatch(origin) else "")


def render(
    call: Call, name: str, developer: Developer | None, status: int = 200, **values: Any
) -> Response:
    """A portal page, with the signed-in navigation when there is a developer.

    When delegation is on, a signed-in page's forms may be answered with a redirect to the
    publisher's site; browsers hold a form's redirect to the page's ``form-action``, so that
    origin is added to it.
    """
    handed = delegated() if developer else Delegated()
    response = page(
        name,
        call.route,
        status,
        developer=developer.user if developer else None,
        csrf=developer.csrf if developer else "",
        delegated=handed,
        **values,
    )
    if handed.origin:
        policy = PAGE_HEADERS["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = policy.replace(
            "form-action 'self'", f"form-action 'self' {handed.origin}"
        )
    return response


def trouble(call: Call, developer: Developer | None, exc: DomainError) -> Response:
    """What no page can show next to a field (the store busy, say): a page, never JSON."""
    status, _ = status_and_code(exc)
    return render(
        call,
        "problem.html",
        developer,
        status,
        title="That did not work",
        message=exc.message,
        advice="Nothing was changed. Try again in a moment.",
    )


def developer_page(handler: PageHandler) -> Callable[[Call], Response]:
    """A GET page for a signed-in developer; signed out, to sign-in and back."""

    @functools.wraps(handler)
    def view(call: Call) -> Response:
        developer = session_of(call)
        if developer is None:
            return signed_out(call)
        try:
            return handler(call, developer)
        except DomainError as exc:
            return trouble(call, developer, exc)

    return view


def developer_form(handler: FormHandler) -> Callable[[Call], Response]:
    """A POST of a signed-in developer: refused (403, nothing read or changed) without CSRF."""

    @functools.wraps(handler)
    def view(call: Call) -> Response:
        developer = session_of(call)
        if developer is None:
            return signed_out(call)
        try:
            fields = html.form_fields(call)
        except MalformedRequest:
            fields = {}
        if not csrf_ok(_PURPOSE, _sid(developer.token), fields.get("csrf", "")):
            return render(
                call,
                "problem.html",
                developer,
                403,
                title="The form was refused",
                message=("This form did not carry a valid security token, so nothing was changed."),
                advice="Open the page again from the portal and resubmit.",
            )
        try:
            return handler(call, developer, fields)
        except DomainError as exc:
            return trouble(call, developer, exc)

    return view
