"""The admin console (/console/) through chalice's test client on moto: what a publisher sees.

Sign-in and the session cookie, CSRF, administrators only (and not one request longer once
blocked or demoted), every page, the Users page's + Add and + Invite, a user's top bar, groups,
email templates, errors next to their field, stale pages, and escaping of what people typed.
In-process only: the administrator is made through the services (as ``apim-users create-admin``
does), which the live server's process never sees; tests/browser walks the same pages for real.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from chalicelib.bootstrap import services
from chalicelib.domain.custom_groups import GroupChanges
from chalicelib.domain.etag import ANY
from chalicelib.domain.users import UserChanges, UserState, read_draft
from chalicelib.services.sessions import SIGN_IN_FAILED
from tests.support import Api, from_address, mail_to

FORM = "application/x-www-form-urlencoded"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "a long admin passphrase"
DEV_PASSWORD = "a developer passphrase"


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def text_of(self, element_id: str) -> str:
        """The text of the element with this id (tags dropped, entities decoded)."""
        match = re.search(rf'id="{re.escape(element_id)}"[^>]*>(.*?)</', self.body, re.S)
        assert match, f"no element #{element_id} in the page"
        return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


class Console:
    """A browser of one: keeps the console cookie and the last page's CSRF token."""

    def __init__(self, client) -> None:
        self.client = client
        self.cookie = ""
        self.csrf = ""
        self.last_set_cookie = ""

    def request(self, method: str, path: str, fields: dict | None = None) -> Page:
        headers = {"cookie": f"apim_console={self.cookie}"} if self.cookie else {}
        body = b""
        if fields is not None:
            headers["content-type"] = FORM
            body = urlencode(fields).encode()
        reply = self.client.http.request(method, path, headers=headers, body=body)
        page = Page(reply.status_code, dict(reply.headers), (reply.body or b"").decode())
        set_cookie = page.headers.get("Set-Cookie", "")
        if set_cookie:
            self.last_set_cookie = set_cookie
            value = set_cookie.split(";", 1)[0].split("=", 1)[1]
            self.cookie = "" if "Max-Age=0" in set_cookie else value
        found = re.search(r'name="csrf" value="([^"]+)"', page.body)
        if found:
            self.csrf = found.group(1)
        return page

    def get(self, path: str) -> Page:
        return self.request("GET", path)

    def post(self, path: str, fields: dict, csrf: bool = True) -> Page:
        sent = {**fields, "csrf": self.csrf} if csrf else dict(fields)
        return self.request("POST", path, sent)

    def sign_in(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> Page:
        self.get("/console/signin")
        return self.post("/console/signin", {"email": email, "password": password})


def make_user(user_id: str, email: str, password: str | None = DEV_PASSWORD, **props):
    body = {"email": email, "firstName": "Ada", "lastName": "Lovelace", **props}
    if password:
        body["password"] = password
    user, _ = services().accounts.create_or_replace(user_id, read_draft({"properties": body}), None)
    return user


@pytest.fixture
def admin(aws):
    user = make_user("admin1", ADMIN_EMAIL, ADMIN_PASSWORD, firstName="Grace", lastName="Hopper")
    assert services().groups.add_administrator(user.id)
    return user


@pytest.fixture
def console(client, admin):
    browser = Console(client)
    signed = browser.sign_in()
    assert signed.status == 303, signed.body
    browser.get("/console/users")  # the page every session starts on (and its CSRF token)
    return browser


def state_of(user_id: str) -> UserState:
    return services().accounts.get(user_id).state


def version_of(page: Page) -> str:
    return re.search(r'name="version" value="(\d+)"', page.body).group(1)


def user_id_from(location: str) -> str:
    return urlsplit(location).path.rsplit("/", 1)[-1]


# --- sign-in, session, CSRF ---------------------------------------------------------------------


def test_sign_in_sets_a_strict_session_cookie_and_opens_the_users_page(client, admin):
    browser = Console(client)
    form_page = browser.get("/console/signin")
    assert form_page.status == 200
    assert 'for="f-email"' in form_page.body and 'for="f-password"' in form_page.body
    signed = browser.post("/console/signin", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert signed.status == 303
    assert signed.location == "../console/users"
    cookie = browser.last_set_cookie
    assert cookie.startswith("apim_console=s.")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=1800"):
        assert attribute in cookie
    assert "Secure" not in cookie  # the local stage is plain http
    users = browser.get("/console/users")
    assert users.status == 200
    assert "<h1>Users</h1>" in users.body
    assert ADMIN_EMAIL in users.body


def test_the_cookie_is_secure_outside_the_local_stage(client, admin, monkeypatch):
    from chalicelib.config import get_settings

    monkeypatch.setenv("APIM_STAGE", "prod")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://api.example.com")
    get_settings.cache_clear()
    try:
        browser = Console(client)
        browser.get("/console/signin")
        assert "; Secure" in browser.last_set_cookie
        assert (
            browser.post(
                "/console/signin", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            ).status
            == 303
        )
        assert "; Secure" in browser.last_set_cookie
    finally:
        monkeypatch.delenv("APIM_STAGE")
        monkeypatch.delenv("PUBLIC_BASE_URL")
        get_settings.cache_clear()


def test_every_page_sends_strict_headers_and_renews_the_session(console, admin):
    make_user("dev1", "dev1@example.com")
    services().groups.create("partners", GroupChanges("Partners", None, None, None, frozenset()))
    paths = [
        "/console/users",
        "/console/users?form=add",
        "/console/users?form=invite",
        "/console/users?q=ada&state=active",
        "/console/users/dev1",
        "/console/users/dev1?confirm=reset",
        "/console/users/dev1?confirm=delete",
        "/console/groups",
        "/console/groups?form=add",
        "/console/groups/partners",
        "/console/groups/partners?confirm=delete",
        "/console/groups/developers",
        "/console/groups/administrators",
        "/console/templates",
        "/console/templates/inviteUserNotificationMessage",
    ]
    for path in paths:
        page = console.get(path)
        assert page.status == 200, (path, page.body)
        headers = {k.lower(): v for k, v in page.headers.items()}
        assert headers["content-type"] == "text/html; charset=utf-8"
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp  # no script at all
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
        assert headers["set-cookie"].startswith("apim_console=s.")
        # Every form carries the CSRF token; every field has a label.
        for form in re.findall(r"<form method=\"post\".*?</form>", page.body, re.S):
            assert 'name="csrf"' in form, (path, form)
        for field_id in re.findall(r'<(?:input|select|textarea) id="([^"]+)"', page.body):
            assert f'for="{field_id}"' in page.body, (path, field_id)
    assert console.get("/console/console.css").status == 200
    assert console.get("/console").location == "console/users"


def test_signed_out_visitors_go_to_sign_in_and_change_nothing(client, admin):
    make_user("dev1", "dev1@example.com")
    browser = Console(client)
    page = browser.get("/console/users/dev1")
    assert page.status == 303
    assert page.location == "../../console/signin"
    posted = browser.post("/console/users/dev1", {"action": "block"}, csrf=False)
    assert posted.status == 303
    assert state_of("dev1") is UserState.ACTIVE


def test_a_form_post_without_its_csrf_token_is_refused_and_changes_nothing(console):
    make_user("dev1", "dev1@example.com")
    version = version_of(console.get("/console/users/dev1"))
    refused = console.post("/console/users/dev1", {"action": "block", "version": version}, False)
    assert refused.status == 403
    assert "nothing was changed" in refused.body
    assert state_of("dev1") is UserState.ACTIVE
    forged = console.post(
        "/console/users/dev1", {"action": "block", "version": version, "csrf": "forged"}, False
    )
    assert forged.status == 403
    assert state_of("dev1") is UserState.ACTIVE
    # A token no key could have made (non-ASCII) is refused the same way, never a 500.
    odd = console.post(
        "/console/users/dev1", {"action": "block", "version": version, "csrf": "été"}, False
    )
    assert odd.status == 403
    assert state_of("dev1") is UserState.ACTIVE
    # Nor does adding a user or signing out work without it.
    added = console.post("/console/users", {"kind": "add", "email": "x@example.com"}, False)
    assert added.status == 403
    assert mail_to("x@example.com") == []
    assert console.post("/console/signout", {}, csrf=False).status == 403
    assert console.get("/console/users").status == 200  # still signed in


def test_a_token_from_another_session_does_not_pass(client, console):
    make_user("dev1", "dev1@example.com")
    other = Console(client)
    other.sign_in()
    other.get("/console/users")
    version = version_of(console.get("/console/users/dev1"))
    foreign = {"action": "block", "version": version, "csrf": other.csrf}
    assert console.post("/console/users/dev1", foreign, csrf=False).status == 403
    assert state_of("dev1") is UserState.ACTIVE


def test_the_sign_in_form_needs_its_own_token(client, admin):
    browser = Console(client)
    browser.get("/console/signin")
    refused = browser.post(
        "/console/signin", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, csrf=False
    )
    assert refused.status == 403
    assert "expired" in refused.text_of("signin-error")
    assert not browser.cookie.startswith("s.")


def test_developers_and_wrong_passwords_get_the_same_answer(client, admin):
    make_user("dev1", "dev1@example.com")
    answers = []
    for email, password in (
        ("dev1@example.com", DEV_PASSWORD),  # right password, but not an administrator
        (ADMIN_EMAIL, "not the right password"),
        ("nobody@example.com", "whatever it may be"),
    ):
        browser = Console(client)
        page = browser.sign_in(email, password)
        assert page.status == 401
        answers.append(page.text_of("signin-error"))
        assert browser.get("/console/users").status == 303
    assert answers == [SIGN_IN_FAILED] * 3


def test_sign_in_is_throttled_like_the_portal_without_locking_the_administrator_out(client, admin):
    browser = Console(client)
    with from_address(client, "203.0.113.66"):
        refused = None
        for _ in range(200):
            page = browser.sign_in(ADMIN_EMAIL, "wrong password here")
            if page.status == 429:
                refused = page
                break
            assert page.status == 401
        assert refused is not None, "wrong passwords were never throttled"
        assert browser.sign_in().status == 429
    # The administrator, from another address, still gets in.
    with from_address(client, "198.51.100.7"):
        assert Console(client).sign_in().status == 303


def hand_made_cookies(token: str) -> list[str]:
    """A token wrapped the ways a console cookie has carried its session."""
    import base64

    def wrap(text: str) -> str:
        return "s." + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    return [wrap(f"some-session\n{token}"), wrap(token), token]


def test_an_administrators_portal_or_issued_token_in_a_cookie_is_not_a_session(client, admin):
    import json
    from datetime import UTC, datetime, timedelta

    signed = client.http.post(
        "/signin",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    assert signed.status_code == 200
    portal_token = json.loads(signed.body)["value"]
    expiry = (datetime.now(UTC) + timedelta(days=29)).strftime("%Y-%m-%dT%H:%M:%SZ")
    issued = Api(client).call(
        "POST", f"/users/{admin.id}/token", {"properties": {"expiry": expiry}}
    )
    assert issued.status == 200
    for token in (portal_token, issued.json["value"]):
        for cookie in hand_made_cookies(token):
            browser = Console(client)
            browser.cookie = cookie
            page = browser.get("/console/users")
            assert page.status == 303, f"{cookie[:12]}... opened the console"
            assert "console/signin" in page.location


def test_a_developer_token_in_the_console_cookie_is_not_a_session(client, admin):
    from datetime import UTC, datetime, timedelta

    developer = make_user("dev1", "dev1@example.com")
    token = services().sessions.mint(developer, datetime.now(UTC) + timedelta(minutes=10))
    for cookie in hand_made_cookies(token):
        browser = Console(client)
        browser.cookie = cookie
        page = browser.get("/console/users")
        assert page.status == 303
        assert "console/signin" in page.location


def test_a_demoted_administrator_is_out_on_the_next_request(console, admin):
    assert console.get("/console/users").status == 200
    services().groups.remove_administrator(admin.id)
    page = console.get("/console/users")
    assert page.status == 303
    assert page.location.endswith("console/signin?m=ended")
    assert console.cookie == ""  # the dead cookie is cleared
    assert "session has ended" in console.get("/console/signin?m=ended").body


def test_a_blocked_administrator_is_out_on_the_next_request(console, admin):
    make_user("dev1", "dev1@example.com")
    version = version_of(console.get("/console/users/dev1"))
    services().accounts.update(admin.id, UserChanges(state=UserState.BLOCKED), ANY)
    posted = console.post("/console/users/dev1", {"action": "block", "version": version})
    assert posted.status == 303
    assert posted.location.endswith("console/signin?m=ended")
    assert state_of("dev1") is UserState.ACTIVE


def test_the_session_ends_after_inactivity_and_activity_renews_it(clock, console):
    clock.advance(minutes=20)
    assert console.get("/console/users").status == 200
    clock.advance(minutes=20)  # 40 minutes after sign-in, 20 after the last request
    assert console.get("/console/users").status == 200
    clock.advance(minutes=31)
    assert console.get("/console/users").status == 303


def test_sign_out_ends_the_session(console):
    page = console.post("/console/signout", {})
    assert page.status == 303
    assert page.location.endswith("console/signin?m=signed-out")
    assert console.cookie == ""
    assert console.get("/console/users").status == 303


def test_a_cookie_kept_from_before_sign_out_no_longer_opens_the_console(client, console):
    kept = console.cookie
    assert console.get("/console/users").status == 200
    renewed = console.cookie  # every request re-issues the cookie; both copies must die
    assert console.post("/console/signout", {}).status == 303
    for cookie in (kept, renewed):
        replay = Console(client)
        replay.cookie = cookie
        page = replay.get("/console/users")
        assert page.status == 303
        assert page.location.endswith("console/signin?m=ended")


def test_signing_out_ends_only_that_session(client, console):
    other = Console(client)
    assert other.sign_in().status == 303
    assert console.post("/console/signout", {}).status == 303
    assert other.get("/console/users").status == 200


# --- the Users page -----------------------------------------------------------------------------


def test_add_creates_an_active_developer(console):
    form = console.get("/console/users?form=add")
    assert '<h2 id="form-title">Add user</h2>' in form.body
    page = console.post(
        "/console/users",
        {
            "kind": "add",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "email": "ada@example.com",
            "password": "",
            "note": "from the console",
        },
    )
    assert page.status == 303
    user_id = user_id_from(page.location)
    assert parse_qs(urlsplit(page.location).query) == {"done": ["added"]}
    user = services().accounts.get(user_id)
    assert (user.email, user.state, user.note) == (
        "ada@example.com",
        UserState.ACTIVE,
        "from the console",
    )
    assert user.password_hash is None
    shown = console.get(f"/console/users/{user_id}?done=added")
    assert "state-active" in shown.body and "Developers" in shown.body
    assert "active and a member of the Developers group" in shown.body
    listed = console.get("/console/users")
    row = re.search(
        r"<tr>\s*<td data-label=\"Name\"><a[^>]*>Ada Lovelace</a>.*?</tr>", listed.body, re.S
    )
    assert row and "Active" in row.group(0) and "Developers" in row.group(0)


def test_add_with_a_password_lets_the_developer_sign_in(console, client):
    page = console.post(
        "/console/users",
        {
            "kind": "add",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "email": "ada@example.com",
            "password": DEV_PASSWORD,
        },
    )
    assert page.status == 303
    signed = client.http.post(
        "/signin",
        headers={"content-type": "application/json"},
        body=f'{{"email": "ada@example.com", "password": "{DEV_PASSWORD}"}}',
    )
    assert signed.status_code == 200


def test_invite_sends_the_invitation_and_leaves_the_user_pending(console):
    page = console.post(
        "/console/users",
        {"kind": "invite", "firstName": "Iris", "lastName": "Murdoch", "email": "iris@example.com"},
    )
    assert page.status == 303
    assert page.location.endswith("?done=invited")
    user_id = user_id_from(page.location)
    assert state_of(user_id) is UserState.PENDING
    [mail] = mail_to("iris@example.com")
    assert "/confirm/invitation?token=" in mail.link("/confirm/invitation")
    shown = console.get(f"/console/users/{user_id}")
    assert "Invitation" in shown.body and "Pending" in shown.body
    assert "Resend invitation" in shown.body and "Revoke invitation" in shown.body
    resent = console.post(f"/console/users/{user_id}", {"action": "resend"})
    assert resent.location.endswith("?done=resent")
    assert len(mail_to("iris@example.com")) == 2
    revoked = console.post(f"/console/users/{user_id}", {"action": "revoke"})
    assert revoked.location.endswith("?done=revoked")
    again = console.post(f"/console/users/{user_id}", {"action": "revoke"})
    assert again.status == 409
    assert "no pending invitation" in again.body


def test_errors_show_next_to_their_fields_and_keep_what_was_typed(console):
    page = console.post(
        "/console/users",
        {
            "kind": "add",
            "firstName": "",
            "lastName": "Lovelace",
            "email": "not an email",
            "password": "short",
        },
    )
    assert page.status == 400
    assert page.text_of("f-firstName-error") == "First name must have 1 to 100 characters."
    assert page.text_of("f-email-error").startswith("Email is not a valid address")
    assert page.text_of("f-password-error")
    assert 'aria-describedby="f-firstName-error"' in page.body
    assert 'value="Lovelace"' in page.body
    assert 'value="short"' not in page.body  # passwords are never sent back
    assert '<h2 id="form-title">Add user</h2>' in page.body


def test_a_taken_email_is_said_next_to_the_email(console):
    make_user("dev1", "Ada@Example.com")
    page = console.post(
        "/console/users",
        {"kind": "invite", "firstName": "A", "lastName": "L", "email": "ada@example.com"},
    )
    assert page.status == 409
    assert page.text_of("f-email-error") == "Another account already uses this email address."
    assert mail_to("ada@example.com") == []


def test_everything_typed_is_escaped(console):
    evil = '<script>alert("x")</script>'
    page = console.post(
        "/console/users",
        {
            "kind": "add",
            "firstName": evil,
            "lastName": "O'Brien & <b>Co</b>",
            "email": "evil@example.com",
            "note": evil,
        },
    )
    user_id = user_id_from(page.location)
    for path in (
        f"/console/users/{user_id}",
        "/console/users",
        f"/console/users?q={evil}",
        f"/console/users/{user_id}?confirm=delete",
    ):
        shown = console.get(path)
        assert shown.status == 200
        assert "<script>" not in shown.body and "<b>Co</b>" not in shown.body, path
    assert "&lt;script&gt;" in console.get(f"/console/users/{user_id}").body
    invalid = console.post(
        "/console/users", {"kind": "add", "firstName": evil, "lastName": "", "email": "x"}
    )
    assert invalid.status == 400 and "<script>" not in invalid.body


def test_search_filter_and_paging(console):
    for n in range(23):
        make_user(f"u{n:02d}", f"user{n:02d}@example.com", firstName=f"Name{n:02d}")
    make_user("zz", "zed@example.org", firstName="Zed", lastName="Shaw")
    services().accounts.update("u05", UserChanges(state=UserState.BLOCKED), ANY)
    first = console.get("/console/users")
    assert first.body.count('data-label="Email"') == 20
    next_link = re.search(r'href="([^"]*page=[^"]*)">Next page', first.body).group(1)
    second = console.get("/console/" + html.unescape(next_link).removeprefix("../console/"))
    assert second.body.count('data-label="Email"') == 5  # 23 + zed + the admin
    assert "First page" in second.body
    found = console.get("/console/users?q=zed+SHAW")
    assert found.body.count('data-label="Email"') == 1 and "zed@example.org" in found.body
    by_email = console.get("/console/users?q=example.org")
    assert by_email.body.count('data-label="Email"') == 1
    blocked = console.get("/console/users?state=blocked")
    assert blocked.body.count('data-label="Email"') == 1 and "user05@example.com" in blocked.body
    assert "No users match" in console.get("/console/users?q=nobody-at-all").body


# --- a user's page: the top bar -----------------------------------------------------------------


def developer_signs_in(client, email="dev1@example.com", password=DEV_PASSWORD) -> int:
    reply = client.http.post(
        "/signin",
        headers={"content-type": "application/json"},
        body=f'{{"email": "{email}", "password": "{password}"}}',
    )
    return reply.status_code


def test_block_then_activate(console, client):
    make_user("dev1", "dev1@example.com")
    version = version_of(console.get("/console/users/dev1"))
    blocked = console.post("/console/users/dev1", {"action": "block", "version": version})
    assert blocked.location.endswith("users/dev1?done=blocked")
    assert state_of("dev1") is UserState.BLOCKED
    assert developer_signs_in(client) == 401
    page = console.get("/console/users/dev1?done=blocked")
    assert ">Activate</button>" in page.body and ">Block</button>" not in page.body
    activated = console.post(
        "/console/users/dev1", {"action": "activate", "version": version_of(page)}
    )
    assert activated.location.endswith("?done=activated")
    assert state_of("dev1") is UserState.ACTIVE
    assert developer_signs_in(client) == 200


def test_actions_are_audited_with_the_administrator_as_actor(console, admin):
    make_user("dev1", "dev1@example.com")
    version = version_of(console.get("/console/users/dev1"))
    console.post("/console/users/dev1", {"action": "block", "version": version})
    page = console.get("/console/users/dev1")
    assert "Recent activity" in page.body
    row = re.search(r"<tr>(?:(?!</tr>).)*User blocked.*?</tr>", page.body, re.S).group(0)
    assert f'data-label="By">{ADMIN_EMAIL}<' in row
    assert "active → blocked" in html.unescape(row)


def test_reset_password_asks_yes_then_sends_the_email(console, client):
    make_user("dev1", "dev1@example.com")
    asked = console.get("/console/users/dev1?confirm=reset")
    assert "Send Ada Lovelace (dev1@example.com) an email" in asked.body
    assert ">Yes</button>" in asked.body
    sent = console.post("/console/users/dev1", {"action": "reset", "version": version_of(asked)})
    assert sent.location.endswith("?done=reset")
    [mail] = mail_to("dev1@example.com")
    token = mail.token("/confirm-v2/password")
    reset = client.http.post(
        "/confirm-v2/password",
        headers={"content-type": FORM},
        body=urlencode({"token": token, "password": "a brand new passphrase"}),
    )
    assert reset.status_code == 200
    assert developer_signs_in(client, password="a brand new passphrase") == 200


def test_reset_for_a_pending_user_says_why_not(console):
    make_user("dev1", "dev1@example.com", password=None, confirmation="invite")
    page = console.get("/console/users/dev1?confirm=reset")
    refused = console.post("/console/users/dev1", {"action": "reset", "version": version_of(page)})
    assert refused.status == 409
    assert "Resend the invitation instead" in refused.body


def test_delete_asks_and_offers_to_delete_subscriptions(console, client):
    api = Api(client)
    make_user("dev1", "dev1@example.com")
    assert (
        api.put(
            "/products/starter", {"properties": {"displayName": "Starter", "state": "published"}}
        ).status
        == 201
    )
    sub = {
        "properties": {"displayName": "S", "scope": "/products/starter", "ownerId": "/users/dev1"}
    }
    assert api.put("/subscriptions/s1", sub).status == 201
    asked = console.get("/console/users/dev1?confirm=delete")
    assert "This user has 1 subscription." in asked.body
    assert 'for="f-deleteSubscriptions"' in asked.body
    refused = console.post(
        "/console/users/dev1", {"action": "delete", "version": version_of(asked)}
    )
    assert refused.status == 409
    assert "subscriptions" in refused.text_of("f-deleteSubscriptions-error")
    assert state_of("dev1") is UserState.ACTIVE
    deleted = console.post(
        "/console/users/dev1",
        {"action": "delete", "version": version_of(refused), "deleteSubscriptions": "on"},
    )
    assert deleted.status == 303
    assert deleted.location.endswith("console/users?done=deleted")
    assert api.get("/users/dev1").status == 404
    assert api.get("/subscriptions/s1").status == 404
    assert console.get("/console/users/dev1").status == 404


def test_a_stale_page_says_so_instead_of_overwriting(console):
    make_user("dev1", "dev1@example.com")
    old = version_of(console.get("/console/users/dev1"))
    # Someone else blocks and re-activates the user meanwhile (e.g. through the API).
    services().accounts.update("dev1", UserChanges(note="changed meanwhile", note_given=True), ANY)
    page = console.post("/console/users/dev1", {"action": "block", "version": old})
    assert page.status == 409
    assert "changed by someone else" in page.body
    assert "changed meanwhile" in page.body  # the page shows the current state
    assert state_of("dev1") is UserState.ACTIVE
    for action in ("delete", "reset"):
        assert console.post("/console/users/dev1", {"action": action, "version": old}).status == 409
    assert mail_to("dev1@example.com") == []
    assert services().accounts.get("dev1").email == "dev1@example.com"
    fresh = version_of(console.get("/console/users/dev1"))
    assert console.post("/console/users/dev1", {"action": "block", "version": fresh}).status == 303


def test_groups_of_a_user_can_be_added_and_removed(console):
    make_user("dev1", "dev1@example.com")
    services().groups.create("partners", GroupChanges("Partners", None, None, None, frozenset()))
    page = console.get("/console/users/dev1")
    assert '<option value="partners">Partners</option>' in page.body
    added = console.post("/console/users/dev1", {"action": "add-group", "group": "partners"})
    assert added.location.endswith("?done=group-added")
    assert services().groups.is_member("partners", "dev1")
    page = console.get("/console/users/dev1")
    assert 'Remove<span class="visually-hidden"> from Partners' in page.body
    refused = console.post(
        "/console/users/dev1", {"action": "add-group", "group": "administrators"}
    )
    assert refused.status == 409 and "managed by the system" in refused.body
    removed = console.post("/console/users/dev1", {"action": "remove-group", "group": "partners"})
    assert removed.location.endswith("?done=group-removed")
    assert not services().groups.is_member("partners", "dev1")


def test_an_unknown_user_is_a_plain_not_found_page(console):
    page = console.get("/console/users/nobody")
    assert page.status == 404
    assert "User not found" in page.body


# --- groups and email templates -----------------------------------------------------------------


def test_groups_page_adds_a_custom_group_and_manages_members(console):
    make_user("dev1", "dev1@example.com")
    added = console.post(
        "/console/groups", {"displayName": "Beta testers", "groupId": "", "description": "early"}
    )
    assert added.location.endswith("groups/beta-testers?done=added")
    assert services().groups.get("beta-testers").group.description == "early"
    taken = console.post("/console/groups", {"displayName": "Beta testers", "groupId": ""})
    assert taken.status == 400
    assert taken.text_of("f-groupId-error") == "A group with the id 'beta-testers' exists."
    unnamed = console.post("/console/groups", {"displayName": "", "groupId": "x"})
    assert unnamed.text_of("f-displayName-error") == "Give the group a name."
    nobody = console.post(
        "/console/groups/beta-testers", {"action": "add-member", "email": "who@example.com"}
    )
    assert nobody.status == 400
    assert nobody.text_of("f-email-error") == "No user has this email address."
    member = console.post(
        "/console/groups/beta-testers", {"action": "add-member", "email": "DEV1@example.com"}
    )
    assert member.location.endswith("?done=member-added")
    assert "dev1@example.com" in console.get("/console/groups/beta-testers").body
    gone = console.post(
        "/console/groups/beta-testers", {"action": "remove-member", "userId": "dev1"}
    )
    assert gone.location.endswith("?done=member-removed")
    assert not services().groups.is_member("beta-testers", "dev1")
    page = console.get("/console/groups/beta-testers?confirm=delete")
    deleted = console.post(
        "/console/groups/beta-testers", {"action": "delete", "version": version_of(page)}
    )
    assert deleted.location.endswith("groups?done=deleted")


def test_built_in_groups_are_read_only_and_administrators_lists_the_admins(console, admin):
    developers = console.get("/console/groups/developers")
    assert "managed by the system" in developers.body
    assert 'name="action"' not in developers.body
    administrators = console.get("/console/groups/administrators")
    assert ADMIN_EMAIL in administrators.body


def test_templates_edit_preview_save_and_reset(console):
    name = "/console/templates/newDeveloperNotificationMessage"
    page = console.get(name)
    version = version_of(page)
    bad = console.post(
        name, {"action": "save", "version": version, "subject": "Hi", "body": "{{ Nope }}"}
    )
    assert bad.status == 400
    assert "Nope" in bad.text_of("f-body-error")
    assert "{{ Nope }}" in html.unescape(bad.body)  # what was typed is kept
    preview = console.post(
        name,
        {
            "action": "preview",
            "version": version,
            "subject": "Welcome {{ DevFirstName }}",
            "body": "<p>Hello <b>{{ DevFirstName }}</b></p>",
        },
    )
    assert preview.status == 200
    assert "<strong>Subject:</strong> Welcome Ada" in preview.body
    assert 'target="email-html"' in preview.body and '<iframe name="email-html"' in preview.body
    frame = console.post(
        name,
        {
            "action": "render",
            "subject": "Hi",
            "body": '<p style="color: red">Hello {{ DevFirstName }}</p>',
        },
    )
    assert frame.status == 200
    assert frame.body == '<p style="color: red">Hello Ada</p>'
    policy = frame.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox;") and "script-src" not in policy
    assert "frame-ancestors 'self'" in policy and frame.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert services().templates.get("newDeveloperNotificationMessage").is_default
    saved = console.post(
        name,
        {
            "action": "save",
            "version": version,
            "subject": "Welcome {{ DevFirstName }}",
            "body": "<p>Hi</p>",
        },
    )
    assert saved.location.endswith("?done=saved")
    view = services().templates.get("newDeveloperNotificationMessage")
    assert (view.subject, view.is_default) == ("Welcome {{ DevFirstName }}", False)
    stale = console.post(
        name, {"action": "save", "version": version, "subject": "Mine", "body": "<p>x</p>"}
    )
    assert stale.status == 409
    assert "changed by someone else" in stale.body
    assert services().templates.get("newDeveloperNotificationMessage").subject != "Mine"
    current = console.get(name)
    assert "Customized" in console.get("/console/templates").body
    reset = console.post(name, {"action": "reset", "version": version_of(current)})
    assert reset.location.endswith("?done=reset")
    assert services().templates.get("newDeveloperNotificationMessage").is_default


# --- the administrators' own path: apim-users create-admin, the dev server ---------------------


def test_create_admin_prints_a_one_time_link_to_set_the_password(client, aws):
    from chalicelib.cli import create_admin, ensure_dev_admin, password_link

    user = create_admin("boss@example.com", "Bo", "Ss")
    assert user.state is UserState.ACTIVE and user.password_hash is None
    assert services().groups.is_administrator(user)
    link, sent = password_link(user.id)
    assert sent and "/confirm-v2/password?token=" in link
    token = parse_qs(urlsplit(link).query)["token"][0]
    assert mail_to("boss@example.com")[0].token("/confirm-v2/password") == token
    reset = client.http.post(
        "/confirm-v2/password",
        headers={"content-type": FORM},
        body=urlencode({"token": token, "password": "the boss passphrase"}),
    )
    assert reset.status_code == 200
    browser = Console(client)
    assert browser.sign_in("boss@example.com", "the boss passphrase").status == 303
    used = client.http.get(f"/confirm-v2/password?token={token}")
    assert used.status_code == 410  # one-time
    # The dev server makes admin@example.com only while there is no administrator.
    assert ensure_dev_admin() is None


def test_the_dev_server_makes_one_administrator_on_first_start(client, aws):
    from chalicelib.cli import DEV_ADMIN_EMAIL, ensure_dev_admin

    password = ensure_dev_admin()
    assert password
    assert Console(client).sign_in(DEV_ADMIN_EMAIL, password).status == 303
    assert ensure_dev_admin() is None


def test_the_api_shows_administrators_but_never_lets_callers_change_them(client, admin):
    api = Api(client)
    assert api.head(f"/groups/administrators/users/{admin.id}").status == 204
    members = api.get("/groups/administrators/users").json["value"]
    assert [m["name"] for m in members] == [admin.id]
    groups = [g["name"] for g in api.get(f"/users/{admin.id}/groups").json["value"]]
    assert groups == ["administrators", "developers"]
    make_user("dev1", "dev1@example.com")
    assert api.put("/groups/administrators/users/dev1").status == 405
    assert api.delete(f"/groups/administrators/users/{admin.id}").status == 405
    assert api.head("/groups/administrators/users/dev1").status == 404


def test_links_and_the_cookie_path_follow_an_api_gateway_stage():
    from chalicelib.api.console import _cookie_path, home
    from chalicelib.api.routing import Call

    def call(path: str) -> Call:
        return Call({}, {}, {}, b"", "https://x", path, "r", "")

    assert home(call("/api/console/users/ada")) == "../../console/"
    assert home(call("/console/users")) == "../console/"
    assert home(call("/console")) == "console/"
    assert home(call("/console/")) == "../console/"
    assert _cookie_path(call("/api/console/users")) == "/api/console"
    assert _cookie_path(call("/console/signin")) == "/console"
