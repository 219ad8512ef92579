"""The one HTML edge of the console and the developer pages: Jinja, forms, cookies, CSRF, links."""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from chalice import Response

from chalicelib.api.routing import Call
from chalicelib.config import get_settings
from chalicelib.errors import MalformedRequest

if TYPE_CHECKING:
    from jinja2 import Environment
    from markupsafe import Markup

# No script, nothing from other origins, never framed, never cached, no referrer.
PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
# A form may carry a whole email template (100 KB), which form encoding can triple.
FORM_MAX_BYTES = 1024 * 1024


# --- rendering ---------------------------------------------------------------------------------


@cache
def environment(folder: str) -> Environment:
    """The Jinja environment of one surface's templates (templates/<folder>/), autoescaped."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from chalicelib.mail.templates import templates_dir

    env = Environment(
        loader=FileSystemLoader(templates_dir() / folder),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["day"] = lambda d: d.strftime("%Y-%m-%d") if d else ""
    env.filters["minute"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC") if d else ""
    env.filters["q"] = lambda v: quote(str(v), safe="")
    env.filters["wbr"] = breakable
    return env


_BREAK_AFTER = "@-_+"
_BREAK_BEFORE = "."


def breakable(value: object) -> Markup:
    """An email address (or an id) escaped, with ``<wbr>`` where a line may sensibly break:
    after ``@``, ``-``, ``_`` and ``+``, and before a dot; never inside a word."""
    from markupsafe import Markup, escape

    parts: list[str] = []
    for char in str(value):
        if char in _BREAK_BEFORE and parts:
            parts.append("<wbr>")
        parts.append(str(escape(char)))
        if char in _BREAK_AFTER:
            parts.append("<wbr>")
    return Markup("".join(parts))


def render(folder: str, name: str, status: int, headers: dict[str, str], **values: Any) -> Response:
    """A page of one surface; every page knows the organization's name."""
    html = (
        environment(folder)
        .get_template(name)
        .render(organization=get_settings().organization_name, **values)
    )
    return Response(body=html, status_code=status, headers=dict(headers))


def stylesheet(folder: str, name: str) -> Response:
    from chalicelib.mail.templates import templates_dir

    css = (templates_dir() / folder / name).read_text(encoding="utf-8")
    return Response(
        body=css,
        status_code=200,
        headers={
            "Content-Type": "text/css; charset=utf-8",
            "Cache-Control": "public, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )


def relative_root(route: str) -> str:
    """``../`` up to the app's root, from the route as registered (without the stage), so pages
    work under chalice local (``/``) and under API Gateway's stage (``/api/``) alike."""
    depth = route.rstrip("/").count("/") - 1
    return "../" * depth


def redirect(location: str, headers: dict[str, str]) -> Response:
    """303 See Other to a relative location, with the surface's headers (no content type)."""
    sent: dict[str, str | list[str]] = {k: v for k, v in headers.items() if k != "Content-Type"}
    sent["Location"] = location
    return Response(body="", status_code=303, headers=sent)


# --- forms -------------------------------------------------------------------------------------


def wants_json(call: Call) -> bool:
    """A script (JSON body, or asking for JSON only) rather than a person at a page."""
    content = (call.header("content-type") or "").lower()
    accept = (call.header("accept") or "").lower()
    return "json" in content or ("application/json" in accept and "text/html" not in accept)


def form_fields(call: Call) -> dict[str, str]:
    """The submitted fields, from a form post or a JSON object (string values only).

    MalformedRequest for a body that is too large, or JSON that is not an object (Call.json
    refuses JSON nested too deeply or holding a lone surrogate).
    """
    if len(call.raw_body) > FORM_MAX_BYTES:
        raise MalformedRequest("The form is too large.")
    if "json" in (call.header("content-type") or "").lower():
        body = call.json()
        if not isinstance(body, dict):
            raise MalformedRequest("The body must be a JSON object.")
        return {k: v for k, v in body.items() if isinstance(v, str)}
    # A browser sends UTF-8; other bytes (and %-escapes of them) read as U+FFFD, so a forged
    # form gets the page's own answer (unknown link, wrong password) instead of an error.
    text = call.raw_body.decode("utf-8", errors="replace")
    parsed = parse_qs(text, keep_blank_values=True, errors="replace")
    return {k: v[0] for k, v in parsed.items()}


def form_values(call: Call, name: str) -> list[str]:
    """Every value of one repeated form field (checkboxes), in order; [] if unreadable."""
    if len(call.raw_body) > FORM_MAX_BYTES or "json" in (call.header("content-type") or ""):
        return []
    try:
        return parse_qs(call.raw_body.decode("utf-8"), keep_blank_values=True).get(name, [])
    except (UnicodeDecodeError, ValueError):
        return []


# --- cookies -----------------------------------------------------------------------------------


def cookie(call: Call, name: str) -> str:
    """The value of one cookie the browser sent; "" when absent or unparseable."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(call.header("cookie") or "")
    except CookieError:
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""


def set_cookie(name: str, value: str, path: str, max_age: int) -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Strict, and Secure outside the local stage."""
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel["path"] = path
    morsel["max-age"] = max_age
    morsel["httponly"] = True
    morsel["samesite"] = "Strict"
    if get_settings().stage != "local":
        morsel["secure"] = True
    return morsel.OutputString()


# --- CSRF --------------------------------------------------------------------------------------


def _keys() -> list[str]:
    from chalicelib.keys import management_keys

    return management_keys(get_settings())


def _mac(key: str, purpose: str, value: str) -> str:
    message = f"apim-console\n{purpose}\n{value}".encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_token(purpose: str, value: str) -> str:
    """A form's token, bound to a purpose and a value (a session id, a pre-session nonce)."""
    return _mac(_keys()[0], purpose, value)


def csrf_ok(purpose: str, value: str, given: str) -> bool:
    """Any current management key (rotation keeps open forms working)."""
    if not value or not given:
        return False
    # Bytes: compare_digest refuses str with non-ASCII characters (a forged form could send any).
    wanted = given.encode("utf-8")
    return any(hmac.compare_digest(_mac(k, purpose, value).encode(), wanted) for k in _keys())
