"""A developer at the portal's pages, in process: their session cookie and the page's CSRF token."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin

from chalicelib.bootstrap import services

FORM = "application/x-www-form-urlencoded"
PASSWORD = "a developer passphrase"


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    raw: str

    @property
    def body(self) -> str:
        """The text as a reader sees it: <wbr> hints dropped, entities decoded."""
        return html.unescape(self.raw.replace("<wbr>", ""))

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def alert(self) -> str:
        found = re.search(r'<p class="error" role="alert">(.*?)</p>', self.raw, re.S)
        return html.unescape(found.group(1)) if found else ""

    def status_message(self) -> str:
        found = re.search(r'<p class="notice" role="status">(.*?)</p>', self.raw, re.S)
        return html.unescape(found.group(1)) if found else ""

    def section(self, element_id: str) -> str:
        """The HTML of the card with this id."""
        found = re.search(
            rf'<section class="card" id="{re.escape(element_id)}".*?</section>', self.raw, re.S
        )
        assert found, f"no card #{element_id}"
        return found.group(0)


class Developer:
    """A browser of one developer: signs in through /signin, keeps the cookie and CSRF token."""

    def __init__(self, client, email: str, password: str = PASSWORD) -> None:
        self.client = client
        self.cookie = ""
        self.csrf = ""
        # As a browser signs in: the form's page first, for its cookie and CSRF token.
        form = self.client.http.get("/signin")
        pre_session = form.headers["Set-Cookie"].split(";", 1)[0]
        token = re.search(r'name="csrf" value="([^"]+)"', form.body.decode()).group(1)
        fields = {"email": email, "password": password, "csrf": token}
        reply = self.request(
            "POST", "/signin", fields, headers={"cookie": pre_session}, keep_csrf=False
        )
        assert reply.status == 303, reply.body
        assert self.cookie, "the sign-in form set no session cookie"

    def request(
        self,
        method: str,
        path: str,
        fields: dict | None = None,
        *,
        raw: bytes | None = None,
        headers: dict | None = None,
        keep_csrf: bool = True,
    ) -> Page:
        sent = {"cookie": f"apim_session={self.cookie}"} if self.cookie else {}
        body = b""
        if fields is not None:
            sent["content-type"] = FORM
            body = urlencode(fields).encode()
        if raw is not None:
            body = raw
        sent.update(headers or {})
        reply = self.client.http.request(method, path, headers=sent, body=body)
        page = Page(reply.status_code, dict(reply.headers), (reply.body or b"").decode())
        cookie = page.headers.get("Set-Cookie", "")
        if cookie.startswith("apim_session="):
            value = cookie.split(";", 1)[0].split("=", 1)[1]
            self.cookie = "" if "Max-Age=0" in cookie else value
        found = re.search(r'name="csrf" value="([^"]+)"', page.raw)
        if found and keep_csrf:
            self.csrf = found.group(1)
        return page

    def get(self, path: str) -> Page:
        return self.request("GET", path)

    def post(self, path: str, fields: dict, csrf: bool = True) -> Page:
        if csrf and not self.csrf:
            self.get(path)
        if csrf and not self.csrf:
            # A page with no form carries no token: the one its forms would carry.
            from http.cookies import SimpleCookie

            from chalicelib.api.portal_session import csrf_of

            jar: SimpleCookie = SimpleCookie()
            jar.load(f"apim_session={self.cookie}")
            self.csrf = csrf_of(jar["apim_session"].value)
        sent = {**fields, "csrf": self.csrf} if csrf else dict(fields)
        return self.request("POST", path, sent)

    def follow(self, page: Page, from_path: str) -> Page:
        """GET the page a 303 leads to (its Location is relative to ``from_path``)."""
        assert page.status == 303, (page.status, page.body)
        return self.get(urljoin("http://x" + from_path, page.location).removeprefix("http://x"))


def make_developer(user_id: str, email: str | None = None, **props) -> str:
    """An active developer with a password, made through the service the management API calls."""
    from chalicelib.domain.users import read_draft

    body = {
        "email": email or f"{user_id}@example.com",
        "firstName": props.pop("firstName", "Ada"),
        "lastName": props.pop("lastName", "Lovelace"),
        "password": PASSWORD,
        **props,
    }
    user, _ = services().accounts.create_or_replace(user_id, read_draft({"properties": body}), None)
    return user.email


def put_product(api, product_id: str, groups=("developers",), **props) -> None:
    """A product (published unless told), visible to ``groups``."""
    body = {"displayName": props.pop("displayName", product_id.title()), "state": "published"}
    body.update(props)
    reply = api.put(f"/products/{product_id}", {"properties": body})
    assert reply.status in (200, 201), reply.body
    for group in groups:
        assert api.put(f"/products/{product_id}/groups/{group}").status in (200, 201)


def gateway(api, key: str, product: str) -> bool:
    reply = api.call("POST", "/gateway/check", {"key": key, "productId": product})
    assert reply.status == 200, reply.body
    return bool(reply.json["allowed"])


def keys_of(api, sid: str) -> dict[str, str]:
    reply = api.call("POST", f"/subscriptions/{sid}/listSecrets")
    assert reply.status == 200, reply.body
    return reply.json
