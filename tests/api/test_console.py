"""The admin console (/console/) through chalice's test client on moto: what a publisher sees.

Sign-in and the session cookie, CSRF, administrators only (and not one request longer once
blocked or demoted), every page, the Users page's + Add and + Invite, a user's top bar, groups,
email templates, errors next to their field, stale pages, and escaping of what people typed.
In-process only: the administrator is made through the services (as ``apim-users create-admin``
does), which the live server's process never sees; tests/browser walks the same pages for real.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass
from datetime import timedelta
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
    """A reply; ``body`` as a reader sees the text (the <wbr> line-break hints dropped)."""

    status: int
    headers: dict[str, str]
    raw: str

    @property
    def body(self) -> str:
        return self.raw.replace("<wbr>", "")

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

    def request(
        self, method: str, path: str, fields: dict | None = None, pairs: list | None = None
    ) -> Page:
        headers = {"cookie": f"apim_console={self.cookie}"} if self.cookie else {}
        body = b""
        if fields is not None or pairs is not None:
            headers["content-type"] = FORM
            body = urlencode(pairs if pairs is not None else fields).encode()
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


def path_of(location: str) -> str:
    """The path a relative redirect (``../../console/users/x?done=y``) leads to."""
    return "/" + location[location.index("console/") :]


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
        "/console/users?state=pending",
        "/console/users?sort=registered&dir=desc&size=50",
        "/console/users/dev1",
        "/console/users/dev1?confirm=reset",
        "/console/users/dev1?confirm=delete",
        "/console/users/dev1?panel=edit",
        "/console/groups",
        "/console/groups?form=add",
        "/console/groups/partners",
        "/console/groups/partners?confirm=delete",
        "/console/groups/partners?panel=edit",
        "/console/groups/developers",
        "/console/groups/administrators",
        "/console/templates",
        "/console/templates/inviteUserNotificationMessage",
        "/console/templates/publisher/RequestPublisherNotificationMessage",
        "/console/templates/publisher/AccountClosedPublisher",
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
    assert page.location == "../../console/signin?next=users%2Fdev1"
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
    deputy = make_user("admin2", "deputy@example.com")  # the last administrator stays one
    services().groups.add_administrator(deputy.id)
    services().groups.remove_administrator(admin.id)
    page = console.get("/console/users")
    assert page.status == 303
    assert page.location.endswith("console/signin?m=ended")
    assert console.cookie == ""  # the dead cookie is cleared
    assert "session has ended" in console.get("/console/signin?m=ended").body


def test_a_blocked_administrator_is_out_on_the_next_request(console, admin):
    make_user("dev1", "dev1@example.com")
    deputy = make_user("admin2", "deputy@example.com")  # the last administrator cannot be blocked
    services().groups.add_administrator(deputy.id)
    version = version_of(console.get("/console/users/dev1"))
    services().accounts.update(admin.id, UserChanges(state=UserState.BLOCKED), ANY)
    posted = console.post("/console/users/dev1", {"action": "block", "version": version})
    assert posted.status == 303
    assert posted.location.endswith("console/signin?m=ended&next=users%2Fdev1")
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
    row = re.search(r"<tr>(?:(?!</tr>).)*<a[^>]*>Ada Lovelace</a>.*?</tr>", listed.body, re.S)
    assert row and "Active" in row.group(0) and "Developers" in row.group(0)
    # A long address may break after the @ and before a dot, nowhere else.
    assert "ada@<wbr>example<wbr>.com" in listed.raw


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
    assert page.text_of("f-firstName-error") == "Enter a first name."
    assert page.text_of("f-email-error") == "Enter an email address in the form name@example.com."
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


def emails_on(page: Page) -> list[str]:
    """The Email column of the Users table, top to bottom."""
    return re.findall(r'<td data-label="Email" class="email">(.*?)</td>', page.body)


def link_named(page: Page, text: str) -> str | None:
    """The console path of the link with this text, if the page has one."""
    found = re.search(rf'href="([^"]*)"[^>]*>{re.escape(text)}</a>', page.body)
    return path_of(html.unescape(found.group(1))) if found else None


def count_line(page: Page) -> str:
    """The pager's range, its en dash read as "to": "1 to 20 of 45"."""
    return re.search(r'<p class="count">(.*?)</p>', page.body).group(1).replace("\u2013", " to ")


def test_search_filter_and_paging(console):
    for n in range(23):
        make_user(f"u{n:02d}", f"user{n:02d}@example.com", firstName=f"Name{n:02d}")
    make_user("zz", "zed@example.org", firstName="Zed", lastName="Shaw")
    services().accounts.update("u05", UserChanges(state=UserState.BLOCKED), ANY)
    first = console.get("/console/users")
    assert len(emails_on(first)) == 20
    assert count_line(first) == "1 to 20"  # 25 users: the total is not known on the first page
    assert link_named(first, "Previous page") is None
    second = console.get(link_named(first, "Next page"))
    assert len(emails_on(second)) == 5  # 23 + zed + the admin
    assert count_line(second) == "21 to 25 of 25"
    assert link_named(second, "Next page") is None
    back = console.get(link_named(second, "Previous page"))
    assert emails_on(back) == emails_on(first)
    assert count_line(back) == "1 to 20" and link_named(back, "Previous page") is None
    found = console.get("/console/users?q=zed+SHAW")
    assert emails_on(found) == ["zed@example.org"]
    assert count_line(found) == "1 to 1 of 1"
    assert emails_on(console.get("/console/users?q=example.org")) == ["zed@example.org"]
    blocked = console.get("/console/users?state=blocked")
    assert emails_on(blocked) == ["user05@example.com"]
    assert "No users match" in console.get("/console/users?q=nobody-at-all").body
    everyone = console.get("/console/users?size=50")
    assert len(emails_on(everyone)) == 25 and count_line(everyone) == "1 to 25 of 25"
    assert len(emails_on(console.get("/console/users?size=7"))) == 20  # only 20, 50 or 100


def test_the_list_sorts_by_every_column_both_ways_from_its_headers(clock, console):
    people = [
        ("b1", "Émile", "Zola", "zola@example.com", UserState.ACTIVE),
        ("b2", "ada", "Lovelace", "ada@example.com", UserState.BLOCKED),
        ("b3", "Charles", "Babbage", "charles@example.net", UserState.PENDING),
        ("b4", "Ada", "Byron", "byron@example.org", UserState.ACTIVE),
        ("b5", "Mary", "Somerville", "mary@example.com", UserState.BLOCKED),
    ]
    for user_id, first, last, email, state in people:
        clock.advance(minutes=1)  # one registration after the other (the session stays open)
        props = {"confirmation": "invite"} if state is UserState.PENDING else {}
        make_user(user_id, email, firstName=first, lastName=last, **props)
        if state is UserState.BLOCKED:
            services().accounts.update(user_id, UserChanges(state=state), ANY)
    # The administrator registered first (Grace Hopper, admin@example.com, active).
    expected = {
        "name": [
            "byron@example.org",  # "ada byron" before "ada lovelace": case is ignored
            "ada@example.com",
            "charles@example.net",
            "zola@example.com",  # Émile: accents are ignored
            ADMIN_EMAIL,
            "mary@example.com",
        ],
        "email": sorted([p[3] for p in people] + [ADMIN_EMAIL]),
        "state": [
            "byron@example.org",
            "zola@example.com",
            ADMIN_EMAIL,
            "ada@example.com",
            "mary@example.com",
            "charles@example.net",
        ],
        "registered": [ADMIN_EMAIL] + [p[3] for p in people],
    }
    for sort, order in expected.items():
        ascending = console.get(f"/console/users?sort={sort}&dir=asc")
        assert emails_on(ascending) == order, sort
        descending = console.get(f"/console/users?sort={sort}&dir=desc")
        assert emails_on(descending) == order[::-1], sort
    # Column headers are plain links: the sorted one says so and links to the other way.
    page = console.get("/console/users?sort=email")
    header = re.search(r'<th scope="col" aria-sort="ascending"><a href="([^"]*)"', page.body)
    assert header and "sort=email&amp;dir=desc" in header.group(1)
    assert emails_on(console.get(path_of(html.unescape(header.group(1))))) == sorted(
        expected["email"], reverse=True
    )
    assert link_named(page, "Name") is not None
    # A state filter keeps the order (index-backed for name and state, filtered for the others).
    active = console.get("/console/users?state=active&sort=registered&dir=desc")
    assert emails_on(active) == ["byron@example.org", "zola@example.com", ADMIN_EMAIL]
    by_name = console.get("/console/users?state=blocked&sort=name&dir=desc")
    assert emails_on(by_name) == ["mary@example.com", "ada@example.com"]


@pytest.mark.moto
def test_accounts_stored_before_the_sorted_lists_appear_after_fill_order_keys(console, capsys):
    """An upgraded deployment's accounts have no sort keys, so no sorted page shows them until
    ``apim-users fill-order-keys`` writes them (their versions, hence ETags, unchanged)."""
    from chalicelib.cli import main
    from chalicelib.store.models import UserItem

    make_user("old1", "old1@example.com", firstName="Old", lastName="Timer")
    make_user("old2", "old2@example.com", firstName="Older", lastName="Timer")
    for user_id in ("old1", "old2"):  # as the first release wrote them
        UserItem(id=user_id).update(
            actions=[UserItem.sort_name.remove(), UserItem.sort_registered.remove()]
        )
    version = services().accounts.get("old1").version
    assert emails_on(console.get("/console/users?sort=name")) == [ADMIN_EMAIL]
    assert main(["fill-order-keys"]) == 0
    assert "2 account(s) given the sort keys" in capsys.readouterr().out
    for sort in ("name", "registered", "state", "email"):
        shown = emails_on(console.get(f"/console/users?sort={sort}"))
        assert sorted(shown) == sorted([ADMIN_EMAIL, "old1@example.com", "old2@example.com"])
    assert services().accounts.get("old1").version == version
    assert main(["fill-order-keys"]) == 0  # nothing left to do
    assert "0 account(s)" in capsys.readouterr().out


def test_paging_goes_forward_and_back_in_any_order(console):
    for n in range(44):
        make_user(f"p{n:02d}", f"p{n:02d}@example.com", firstName=f"P{n:02d}")
    for sort in ("name", "email", "registered", "state"):
        for direction in ("asc", "desc"):
            url = f"/console/users?sort={sort}&dir={direction}"
            pages = [console.get(url)]
            while link := link_named(pages[-1], "Next page"):
                pages.append(console.get(link))
            assert [len(emails_on(p)) for p in pages] == [20, 20, 5], (sort, direction)
            assert [count_line(p) for p in pages] == ["1 to 20", "21 to 40", "41 to 45 of 45"]
            seen = [e for p in pages for e in emails_on(p)]
            assert len(set(seen)) == 45
            back = [pages[-1]]
            while link := link_named(back[-1], "Previous page"):
                back.append(console.get(link))
            assert [emails_on(p) for p in back] == [emails_on(p) for p in reversed(pages)]
            assert count_line(back[-1]) == "1 to 20"


def test_the_pending_view_shows_each_invitations_expiry(clock, console):
    make_user("dev1", "dev1@example.com")
    make_user("inv1", "inv1@example.com", password=None, confirmation="invite")
    expiry = (clock.now + timedelta(days=2)).strftime("%Y-%m-%d %H:%M UTC")
    page = console.get("/console/users?state=pending")
    assert "<h1>Users</h1>" in page.body and 'aria-current="page">Pending invitations' in page.body
    assert emails_on(page) == ["inv1@example.com"]
    row = re.search(r'<td data-label="Expires">(.*?)</td>', page.body).group(1)
    assert row == expiry
    assert "Pending, sent" in page.body


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
    assert "Ada Lovelace has 1 subscription." in asked.body
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
    assert added.location.endswith("?done=group-added&g=partners")
    assert "Ada Lovelace was added to Partners." in console.get(path_of(added.location)).body
    assert services().groups.is_member("partners", "dev1")
    page = console.get("/console/users/dev1")
    assert 'Remove<span class="visually-hidden"> from Partners' in page.body
    refused = console.post(
        "/console/users/dev1", {"action": "add-group", "group": "administrators"}
    )
    assert refused.status == 409 and "managed by the system" in refused.body
    removed = console.post("/console/users/dev1", {"action": "remove-group", "group": "partners"})
    assert removed.location.endswith("?done=group-removed&g=partners")
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
    assert unnamed.text_of("f-displayName-error") == "Enter a name for the group."
    nobody = console.post(
        "/console/groups/beta-testers", {"action": "add-member", "email": "who@example.com"}
    )
    assert nobody.status == 400
    assert nobody.text_of("f-email-error") == (
        "No user has this email address. Check it, or add the user first."
    )
    member = console.post(
        "/console/groups/beta-testers", {"action": "add-member", "email": "DEV1@example.com"}
    )
    assert member.location.endswith("?done=member-added&u=dev1")
    assert "Ada Lovelace was added to the group." in console.get(path_of(member.location)).body
    again = console.post(
        "/console/groups/beta-testers", {"action": "add-member", "email": "dev1@example.com"}
    )
    assert again.location.endswith("?done=member-already&u=dev1")
    already = console.get(path_of(again.location)).body
    assert "Ada Lovelace was already a member of this group; nothing changed." in already
    assert "dev1@example.com" in console.get("/console/groups/beta-testers").body
    gone = console.post(
        "/console/groups/beta-testers", {"action": "remove-member", "userId": "dev1"}
    )
    assert gone.location.endswith("?done=member-removed&u=dev1")
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
            "body": '<p style="color: red">Hello <b>{{ DevFirstName }}</b></p>',
        },
    )
    assert preview.status == 200
    assert "<strong>Subject:</strong> Welcome Ada" in preview.body
    # The HTML version shows at once, in a sandboxed frame whose styles the policy names.
    frame = re.search(r'<iframe class="preview" sandbox srcdoc="([^"]*)"', preview.body)
    assert frame and html.unescape(frame.group(1)) == '<p style="color: red">Hello <b>Ada</b></p>'
    policy = preview.headers["Content-Security-Policy"]
    digest = base64.b64encode(hashlib.sha256(b"color: red").digest()).decode()
    assert f"style-src 'self' 'unsafe-hashes' 'sha256-{digest}';" in policy
    assert "script-src" not in policy and "default-src 'none'" in policy
    # Other pages keep the strict policy.
    assert "unsafe-hashes" not in console.get(name).headers["Content-Security-Policy"]
    # The HTML part alone (the fallback for emails with very many inline styles).
    alone = console.post(
        name,
        {
            "action": "render",
            "subject": "Hi",
            "body": '<p style="color: red">Hello {{ DevFirstName }}</p>',
        },
    )
    assert alone.status == 200
    assert alone.body == '<p style="color: red">Hello Ada</p>'
    policy = alone.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox;") and "script-src" not in policy
    assert "frame-ancestors 'self'" in policy and alone.headers["X-Frame-Options"] == "SAMEORIGIN"
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
    # Reset asks first: the page offers a link to a confirmation, which holds the form.
    assert 'value="reset"' not in current.body and "?confirm=reset#panel" in current.body
    asked = console.get(name + "?confirm=reset")
    assert 'id="panel" tabindex="-1"' in asked.body and "cannot be undone" in asked.body
    reset = console.post(name, {"action": "reset", "version": version_of(asked)})
    assert reset.location.endswith("?done=reset")
    assert services().templates.get("newDeveloperNotificationMessage").is_default


# --- the administrators' own path: apim-users create-admin, the dev server ---------------------


@pytest.mark.moto
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


# --- issue 17: no self-lockout, only what can work, in plain words ------------------------------


def buttons_of(page: Page) -> list[str]:
    """The labels of the page's top bar (buttons and button-like links)."""
    bar = re.search(
        r'<div class="toolbar" role="group" aria-label="User actions">(.*?)</div>', page.body, re.S
    ).group(1)
    return [html.unescape(t) for t in re.findall(r">([^<>]+)</(?:button|a)>", bar)]


def banner_error(page: Page) -> str:
    found = re.search(r'<p class="banner error" role="alert">(.*?)</p>', page.body, re.S)
    assert found, "no error banner on the page"
    return html.unescape(found.group(1))


def test_your_own_account_offers_neither_block_nor_delete_and_refuses_both(console, admin):
    page = console.get(f"/console/users/{admin.id}")
    assert buttons_of(page) == ["Edit", "Reset password"]
    assert "This is your own account" in page.body
    assert "?confirm=delete" not in page.body
    # Asked anyway (an old page, a hand-made form): refused, with the reason, nothing changed.
    for action in ("block", "delete"):
        version = str(services().accounts.get(admin.id).version)
        refused = console.post(f"/console/users/{admin.id}", {"action": action, "version": version})
        assert refused.status == 409
        assert banner_error(refused) == (
            "You are signed in as Grace Hopper: you cannot block or delete your own account. "
            "Another administrator can."
        )
    assert state_of(admin.id) is UserState.ACTIVE
    assert console.get("/console/users").status == 200  # still signed in


def test_another_administrator_can_be_blocked_but_never_the_last_one(console, admin):
    deputy = make_user("admin2", "deputy@example.com", firstName="Ada", lastName="Byron")
    services().groups.add_administrator(deputy.id)
    page = console.get("/console/users/admin2")
    assert "Block" in buttons_of(page)
    blocked = console.post(
        "/console/users/admin2", {"action": "block", "version": version_of(page)}
    )
    assert blocked.status == 303
    assert state_of("admin2") is UserState.BLOCKED


def test_actions_are_offered_only_in_the_states_where_they_work(console):
    make_user("dev1", "dev1@example.com")
    make_user("dev2", "dev2@example.com", password=None, confirmation="invite")
    active = console.get("/console/users/dev1")
    assert buttons_of(active) == ["Edit", "Block", "Reset password", "Delete"]
    assert "Resend invitation" not in active.body and "Revoke invitation" not in active.body
    services().accounts.update("dev1", UserChanges(state=UserState.BLOCKED), ANY)
    blocked = console.get("/console/users/dev1")
    assert buttons_of(blocked) == ["Edit", "Activate", "Delete"]
    # A reset confirmation asked for by URL is not shown for a blocked account.
    assert "Reset password" not in console.get("/console/users/dev1?confirm=reset").body
    pending = console.get("/console/users/dev2")
    assert buttons_of(pending) == ["Edit", "Block", "Delete"]
    assert ">Resend invitation</button>" in pending.body
    assert ">Revoke invitation</button>" in pending.body
    console.post("/console/users/dev2", {"action": "revoke"})
    revoked = console.get("/console/users/dev2")
    assert ">Resend invitation</button>" in revoked.body
    assert "Revoke invitation" not in revoked.body  # nothing is pending any more


def test_refusals_name_the_user_and_say_what_to_do(console, client):
    make_user("dev1", "dev1@example.com")
    make_user("dev2", "dev2@example.com", password=None, confirmation="invite")
    version = version_of(console.get("/console/users/dev1"))
    services().accounts.update("dev1", UserChanges(state=UserState.BLOCKED), ANY)
    fresh = version_of(console.get("/console/users/dev1"))
    reset = console.post("/console/users/dev1", {"action": "reset", "version": fresh})
    assert reset.status == 409
    assert banner_error(reset) == (
        "Ada Lovelace is blocked. Activate the account first to send a reset email."
    )
    stale = console.post("/console/users/dev1", {"action": "reset", "version": version})
    assert stale.status == 409  # the account's state speaks first, whatever the version
    pending = console.post(
        "/console/users/dev2",
        {"action": "reset", "version": version_of(console.get("/console/users/dev2"))},
    )
    assert banner_error(pending) == (
        "Ada Lovelace has not accepted the invitation yet, so there is no password to reset. "
        "Resend the invitation instead."
    )
    console.post("/console/users/dev2", {"action": "revoke"})
    nothing = console.post("/console/users/dev2", {"action": "revoke"})
    assert nothing.status == 409
    assert banner_error(nothing) == "Ada Lovelace has no pending invitation to revoke."
    resend = console.post("/console/users/dev1", {"action": "resend"})
    assert banner_error(resend) == (
        "Ada Lovelace is blocked: invitations are only sent to accounts that are pending."
    )
    for page in (reset, pending, nothing, resend):
        message = banner_error(page)
        assert "dev1" not in message and "dev2" not in message and "'" not in message
    assert mail_to("dev1@example.com") == []


def test_deleting_a_user_with_subscriptions_says_what_to_tick(console, client):
    api = Api(client)
    make_user("dev1", "dev1@example.com")
    api.put("/products/starter", {"properties": {"displayName": "Starter", "state": "published"}})
    for sid in ("s1", "s2"):
        body = {"displayName": sid, "scope": "/products/starter", "ownerId": "/users/dev1"}
        assert api.put(f"/subscriptions/{sid}", {"properties": body}).status == 201
    asked = console.get("/console/users/dev1?confirm=delete")
    refused = console.post(
        "/console/users/dev1", {"action": "delete", "version": version_of(asked)}
    )
    assert refused.status == 409
    problem = refused.text_of("f-deleteSubscriptions-error")
    assert problem == (
        "Ada Lovelace has 2 subscriptions. Tick “Also delete the user's subscriptions” to "
        "delete them with the account, or cancel them first."
    )
    assert "deleteSubscriptions=true" not in refused.body


def test_field_errors_are_plain_words(console):
    page = console.post(
        "/console/users",
        {"kind": "invite", "firstName": " ", "lastName": "x" * 101, "email": ""},
    )
    assert page.status == 400
    assert page.text_of("f-firstName-error") == "Enter a first name."
    assert page.text_of("f-lastName-error") == "Enter a last name of at most 100 characters."
    assert page.text_of("f-email-error") == "Enter an email address."
    assert "'" not in page.text_of("f-lastName-error")


def test_a_user_without_a_password_gets_one_click_to_set_one(console):
    make_user("dev1", "dev1@example.com", password=None)
    make_user("dev2", "dev2@example.com", password=None, confirmation="invite")
    make_user("dev3", "dev3@example.com")
    assert console.get("/console/users/dev3").text_of("password-state") == "Set"
    no_password = console.get("/console/users/dev1")
    assert no_password.text_of("password-state").startswith("No password yet")
    assert "Send a password email" in no_password.body
    sent = console.post(
        "/console/users/dev1", {"action": "reset", "version": version_of(no_password)}
    )
    assert sent.status == 303 and sent.location.endswith("?done=reset")
    [mail] = mail_to("dev1@example.com")
    assert mail.token("/confirm-v2/password")
    assert (
        "A password reset email was sent to Ada Lovelace."
        in console.get(path_of(sent.location)).body
    )
    invited = console.get("/console/users/dev2")
    assert invited.text_of("password-state").startswith("No password yet")
    assert invited.body.count(">Resend invitation<") == 2  # here and under Invitations
    resent = console.post("/console/users/dev2", {"action": "resend"})
    assert resent.location.endswith("?done=resent")
    assert len(mail_to("dev2@example.com")) == 2


# --- issue 17: edit in place ---------------------------------------------------------------------


def test_edit_changes_names_note_and_email_from_the_users_page(console, client):
    make_user("dev1", "dev1@example.com", note="old note")
    form = console.get("/console/users/dev1?panel=edit")
    assert '<section class="panel" id="panel" tabindex="-1"' in form.body
    assert 'value="dev1@example.com"' in form.body and ">old note</textarea>" in form.body
    # A reset link sent to the old address dies with the change.
    services().passwords.send_by_admin("dev1")
    [old_mail] = mail_to("dev1@example.com")
    old_token = old_mail.token("/confirm-v2/password")
    saved = console.post(
        "/console/users/dev1",
        {
            "action": "edit",
            "version": version_of(form),
            "firstName": "Augusta Ada",
            "lastName": "King",
            "email": "ada.king@example.com",
            "note": "",
        },
    )
    assert saved.status == 303 and saved.location.endswith("?done=readdressed")
    user = services().accounts.get("dev1")
    assert (user.first_name, user.last_name, user.email, user.note) == (
        "Augusta Ada",
        "King",
        "ada.king@example.com",
        None,
    )
    shown = console.get(path_of(saved.location))
    assert "The changes to Augusta Ada King were saved." in shown.body
    assert "Links sent to the previous email address no longer work." in shown.body
    dead = client.http.get(f"/confirm-v2/password?token={old_token}")
    assert dead.status_code == 410
    assert developer_signs_in(client, "ada.king@example.com") == 200


def test_editing_a_pending_users_email_reinvites_at_the_new_address(console, client):
    make_user("dev2", "typo@exmaple.com", password=None, confirmation="invite")
    [first] = mail_to("typo@exmaple.com")
    old = first.token("/confirm/invitation")
    form = console.get("/console/users/dev2?panel=edit")
    saved = console.post(
        "/console/users/dev2",
        {
            "action": "edit",
            "version": version_of(form),
            "firstName": "Ada",
            "lastName": "Lovelace",
            "email": "ada@example.com",
            "note": "",
        },
    )
    assert saved.location.endswith("?done=reinvited")
    [again] = mail_to("ada@example.com")
    assert again.token("/confirm/invitation") != old
    assert client.http.get(f"/confirm/invitation?token={old}").status_code == 410
    assert state_of("dev2") is UserState.PENDING


def test_edit_errors_are_said_in_place_and_keep_what_was_typed(console):
    make_user("dev1", "dev1@example.com")
    make_user("dev2", "taken@example.com")
    form = console.get("/console/users/dev1?panel=edit")
    version = version_of(form)
    bad = console.post(
        "/console/users/dev1",
        {"action": "edit", "version": version, "firstName": "", "lastName": "L", "email": "nope"},
    )
    assert bad.status == 400
    assert bad.text_of("f-firstName-error") == "Enter a first name."
    assert bad.text_of("f-email-error") == "Enter an email address in the form name@example.com."
    assert 'value="nope"' in bad.body
    taken = console.post(
        "/console/users/dev1",
        {
            "action": "edit",
            "version": version,
            "firstName": "A",
            "lastName": "L",
            "email": "TAKEN@example.com",
        },
    )
    assert taken.status == 409
    assert taken.text_of("f-email-error") == "Another account already uses this email address."
    services().accounts.update("dev1", UserChanges(note="theirs", note_given=True), ANY)
    stale = console.post(
        "/console/users/dev1",
        {
            "action": "edit",
            "version": version,
            "firstName": "Mine",
            "lastName": "L",
            "email": "dev1@example.com",
            "note": "mine",
        },
    )
    assert stale.status == 409
    assert "changed by someone else" in stale.body
    assert 'value="Mine"' in stale.body  # what was typed is kept, with the current version
    assert services().accounts.get("dev1").first_name == "Ada"
    again = console.post(
        "/console/users/dev1",
        {
            "action": "edit",
            "version": version_of(stale),
            "firstName": "Mine",
            "lastName": "L",
            "email": "dev1@example.com",
            "note": "mine",
        },
    )
    assert again.status == 303
    assert services().accounts.get("dev1").note == "mine"


def test_a_custom_groups_name_and_description_can_be_edited(console):
    services().groups.create("partners", GroupChanges("Partners", "old", None, None, frozenset()))
    form = console.get("/console/groups/partners?panel=edit")
    assert 'id="panel" tabindex="-1"' in form.body and 'value="Partners"' in form.body
    empty = console.post(
        "/console/groups/partners",
        {"action": "edit", "version": version_of(form), "displayName": "", "description": "x"},
    )
    assert empty.status == 400
    assert empty.text_of("f-displayName-error") == "Enter a name for the group."
    saved = console.post(
        "/console/groups/partners",
        {
            "action": "edit",
            "version": version_of(form),
            "displayName": "Key partners",
            "description": "",
        },
    )
    assert saved.location.endswith("groups/partners?done=edited")
    group = services().groups.get("partners").group
    assert (group.display_name, group.description) == ("Key partners", None)
    stale = console.post(
        "/console/groups/partners",
        {"action": "edit", "version": version_of(form), "displayName": "Mine", "description": ""},
    )
    assert stale.status == 409 and "changed by someone else" in stale.body
    assert "Edit" not in console.get("/console/groups/developers").body.split("<h1>")[1][:200]


# --- issue 17: subscriptions on the user's page --------------------------------------------------


def test_the_users_page_lists_subscriptions_and_changes_their_state(console, client):
    api = Api(client)
    make_user("dev1", "dev1@example.com")
    api.put(
        "/products/gold",
        {
            "properties": {
                "displayName": "Gold plan",
                "state": "published",
                "approvalRequired": True,
            }
        },
    )
    for sid, name in (("s1", "First app"), ("s2", "Second app")):
        body = {"displayName": name, "scope": "/products/gold", "ownerId": "/users/dev1"}
        assert api.put(f"/subscriptions/{sid}", {"properties": body}).status == 201
    page = console.get("/console/users/dev1")
    rows = re.findall(r"<tr>\s*<td data-label=\"Product\">.*?</tr>", page.body, re.S)
    assert len(rows) == 2
    assert "Gold plan" in rows[0] and "Submitted" in rows[0]
    assert re.search(r'data-label="Created">\d{4}-\d\d-\d\d<', rows[0])
    assert ">Approve<" in rows[0] and ">Reject<" in rows[0] and ">Suspend<" not in rows[0]

    def change(sid: str, verb: str) -> Page:
        current = services().subscriptions.get(sid)
        fields = {
            "action": "subscription",
            "subscription": sid,
            "change": verb,
            "version": str(current.version),
        }
        return console.post("/console/users/dev1", fields)

    approved = change("s1", "approve")
    assert approved.location.endswith("?done=sub-approve&s=s1")
    assert (
        "The subscription “First app” (Gold plan) is approved and active."
        in console.get(path_of(approved.location)).body
    )
    assert services().subscriptions.get("s1").state.value == "active"
    assert change("s1", "suspend").status == 303
    assert services().subscriptions.get("s1").state.value == "suspended"
    assert change("s1", "activate").status == 303
    assert change("s1", "cancel").status == 303
    assert services().subscriptions.get("s1").state.value == "cancelled"
    assert change("s2", "reject").status == 303
    assert services().subscriptions.get("s2").state.value == "rejected"
    final = console.get("/console/users/dev1")
    assert 'name="change"' not in final.body  # cancelled and rejected offer nothing
    assert re.search(r'data-label="Ended">\d{4}-\d\d-\d\d<', final.body)
    # A change the state no longer allows says so, by the subscription's name.
    refused = change("s1", "suspend")
    assert refused.status == 409
    assert banner_error(refused).startswith("The subscription “First app” is cancelled")
    # A page older than the subscription is refused, nothing changed.
    body = {"displayName": "Third", "scope": "/products/gold", "ownerId": "/users/dev1"}
    api.put("/subscriptions/s3", {"properties": body})
    stale = console.post(
        "/console/users/dev1",
        {"action": "subscription", "subscription": "s3", "change": "approve", "version": "1"},
    )
    assert stale.status == 409 and "changed by someone else" in stale.body
    assert services().subscriptions.get("s3").state.value == "submitted"
    # Another user's subscription cannot be changed from this page.
    make_user("dev2", "dev2@example.com")
    other = console.post(
        "/console/users/dev2",
        {
            "action": "subscription",
            "subscription": "s3",
            "change": "approve",
            "version": str(services().subscriptions.get("s3").version),
        },
    )
    assert other.status == 409 and "no longer exists" in other.body


def test_groups_are_easy_to_find(console):
    make_user("dev1", "dev1@example.com")
    page = console.get("/console/users/dev1")
    assert "There are no custom groups yet." in page.text_of("no-groups")
    assert "groups?form=add#panel" in page.body
    assert "There are no custom groups yet." in console.get("/console/groups").body
    services().groups.create("partners", GroupChanges("Partners", None, None, None, frozenset()))
    services().groups.add_member("partners", "dev1")
    again = console.post("/console/users/dev1", {"action": "add-group", "group": "partners"})
    assert again.location.endswith("?done=group-already&g=partners")
    assert (
        "Ada Lovelace was already a member of Partners; nothing changed."
        in console.get(path_of(again.location)).body
    )


# --- issue 17: templates ------------------------------------------------------------------------


def test_every_problem_of_a_template_is_shown_at_once_with_line_numbers(console):
    name = "/console/templates/newDeveloperNotificationMessage"
    version = version_of(console.get(name))
    bad = console.post(
        name,
        {
            "action": "save",
            "version": version,
            "subject": "Hi {{ DevFirstName",
            "body": "<p>{{ Nope }}</p>\n<p>ok</p>\n<p>{{ Zed }} and {{ Nope }}</p>",
        },
    )
    assert bad.status == 400
    body_problems = [
        html.unescape(li)
        for li in re.findall(
            r"<li>(.*?)</li>", bad.body.split('id="f-body-error"')[1].split("</ul>")[0]
        )
    ]
    assert body_problems == [
        "The HTML body uses Nope on lines 1, 3, which is not a parameter of this template.",
        "The HTML body uses Zed on line 3, which is not a parameter of this template.",
    ]
    assert "line 1" in bad.text_of("f-subject-error")
    assert "The template has 3 problems" in bad.body
    assert services().templates.get("newDeveloperNotificationMessage").is_default


def test_the_list_marks_the_templates_this_service_sends_and_when(console):
    page = console.get("/console/templates")
    rows = re.findall(r"<tr>\s*<td data-label=\"Template\">.*?</tr>", page.body, re.S)
    assert len(rows) == 14
    sent = [r for r in rows if ">Sent</span>" in r]
    assert len(sent) == 10
    assert all(">Never</span>" in r for r in rows[10:])  # the ones sent come first
    never = [re.search(r"templates/(\w+)", r).group(1) for r in rows[10:]]
    assert sorted(never) == [
        "applicationApprovedNotificationMessage",
        "newCommentNotificationMessage",
        "newIssueNotificationMessage",
        "quotaLimitApproachingDeveloperNotificationMessage",
    ]

    def when(name: str) -> str:
        row = next(r for r in rows if f'templates/{name}"' in r)
        return html.unescape(re.sub(r"<[^>]+>", "", row))

    assert "When an administrator invites a user" in when("inviteUserNotificationMessage")
    assert "When a developer changes their email address on the portal: sent to the new " in (
        when("emailChangeIdentityDefault")
    )
    assert "When a developer closes their account on the portal" in when("accountClosedDeveloper")
    assert "with “Send an email saying the account was closed” ticked" in when(
        "accountClosedDeveloper"
    )
    assert "When a developer signs up on the portal, or a user is created through the API " in (
        when("confirmSignUpIdentityDefault")
    )
    request = when("requestDeveloperNotificationMessage")
    assert "subscribes on the portal to a product that needs approval" in request
    assert "submitted subscription is created through the API with notify=true" in request
    purchase = when("purchaseDeveloperNotificationMessage")
    assert "When a subscription first becomes active" in purchase
    assert "an administrator approves a request (Approve on the user's page" in html.unescape(
        purchase
    )
    assert "Not when a suspended subscription is activated again." in purchase
    reject = when("rejectDeveloperNotificationMessage")
    assert "Reject on the user's page, or the API changing a submitted subscription" in reject
    shown = console.get("/console/templates/accountClosedDeveloper")
    assert "Sent by this service." in shown.text_of("sent-when")
    never = console.get("/console/templates/newIssueNotificationMessage")
    assert "never sends this template" in never.text_of("sent-when")


# --- issue 15: the publishers' emails -----------------------------------------------------------


def publisher_rows(page: Page) -> dict[str, str]:
    """The Publisher notifications table: its rows' text by the link they hold."""
    table = page.body.split('id="publisher-title"')[1]
    rows = re.findall(r"<tr>\s*<td data-label=\"Email\">.*?</tr>", table, re.S)
    return {
        re.search(r"templates/publisher/(\w+)", r).group(1): html.unescape(
            re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r))
        ).strip()
        for r in rows
    }


def test_the_list_shows_the_publishers_emails_with_when_and_how_many_recipients(console, admin):
    from chalicelib.domain.portal import NotificationName

    portal = services().portal
    portal.add(portal.user_recipient(NotificationName.REQUEST, admin.id))
    portal.add(portal.email_recipient(NotificationName.REQUEST, "ops@example.com"))
    portal.add(portal.email_recipient(NotificationName.PURCHASE, "sales@example.com"))
    portal.add(portal.email_recipient(NotificationName.BCC, "archive@example.com"))
    rows = publisher_rows(console.get("/console/templates"))
    assert list(rows) == [
        "RequestPublisherNotificationMessage",
        "PurchasePublisherNotificationMessage",
        "AccountClosedPublisher",
    ]
    request = rows["RequestPublisherNotificationMessage"]
    assert request.startswith("Subscription requests (requiring approval)")
    assert "When a developer asks for a subscription that needs approval" in request
    assert " 2 " in request
    purchase = rows["PurchasePublisherNotificationMessage"]
    assert "When a subscription first becomes active" in purchase and " 1 " in purchase
    closed = rows["AccountClosedPublisher"]
    assert "When a developer closes their account on the portal (not when an admin" in closed
    assert "0 (nobody receives it)" in closed
    assert "A developer closed their account" in closed  # the subject


@pytest.mark.parametrize(
    ("name", "subject", "text"),
    [
        (
            "RequestPublisherNotificationMessage",
            "Subscription request for the Starter product",
            "asked to subscribe to the Starter",
        ),
        ("PurchasePublisherNotificationMessage", "Starter", "Ada's mobile app"),
        ("AccountClosedPublisher", "A developer closed their account", "closed their account"),
    ],
)
def test_a_publishers_email_is_previewed_read_only_with_sample_values(console, name, subject, text):
    from chalicelib.domain.portal import NotificationName

    portal = services().portal
    portal.add(portal.email_recipient(NotificationName(name), "ops@example.com"))
    page = console.get(f"/console/templates/publisher/{name}")
    assert page.status == 200, page.body
    assert "Sent by this service." in page.text_of("sent-when")
    recipients = re.search(r'id="recipients">(.*?)</p>', page.body, re.S).group(1)
    assert html.unescape(re.sub(r"<[^>]+>", "", recipients)).startswith(
        "1 recipient: 0 users and 1 address."
    )
    shown_subject = re.search(r"<strong>Subject:</strong> (.*?)</p>", page.body).group(1)
    assert subject in html.unescape(shown_subject)
    # Every parameter has a sample value, in the subject, the HTML and the text alike.
    frame = re.search(r'<iframe class="preview" sandbox srcdoc="([^"]*)"', page.body)
    assert frame, "the HTML version shows at once, in a sandboxed frame"
    email_html = html.unescape(frame.group(1))
    email_text = html.unescape(re.search(r"<pre [^>]*>(.*?)</pre>", page.body, re.S).group(1))
    for part in (shown_subject, email_html, email_text):
        assert "Sample " not in part and "{{" not in part
    assert "Ada" in email_html and "ada.lovelace@example.com" in email_text
    assert text in email_text
    # The page's policy allows exactly the email's inline styles, and still no script.
    policy = page.headers["Content-Security-Policy"]
    styles = set(re.findall(r'style="([^"]*)"', email_html))
    assert styles
    for style in styles:
        digest = base64.b64encode(hashlib.sha256(html.unescape(style).encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy, style
    assert "script-src" not in policy and "default-src 'none'" in policy
    # Read-only: nothing to save, reset or post.
    assert "<form" not in page.body.split('id="main"')[1].split("</main>")[0]


def test_publisher_previews_name_notifications_case_insensitively_and_404_others(console):
    assert console.get("/console/templates/publisher/accountclosedpublisher").status == 200
    for name in (
        "Nope",
        "BCC",
        "NewIssuePublisherNotificationMessage",
        "inviteUserNotificationMessage",
    ):
        page = console.get(f"/console/templates/publisher/{name}")
        assert page.status == 404, name
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "<h1>Not found</h1>" in page.body and 'aria-label="Console"' in page.body


def test_publisher_previews_are_for_administrators_only(client, admin):
    outsider = Console(client)
    asked = outsider.get("/console/templates/publisher/AccountClosedPublisher")
    assert asked.status == 303
    assert "signin" in asked.location
    assert "next=templates%2Fpublisher%2FAccountClosedPublisher" in asked.location


# --- issue 17: flows ------------------------------------------------------------------------------


def test_signing_in_after_the_idle_timeout_returns_to_the_page_asked_for(clock, console, client):
    make_user("dev1", "dev1@example.com")
    clock.advance(minutes=31)
    asked = console.get("/console/users/dev1?panel=edit")
    assert asked.status == 303
    assert asked.location == "../../console/signin?m=ended&next=users%2Fdev1%3Fpanel%3Dedit"
    form = console.get(path_of(asked.location))
    assert "session has ended" in form.body
    assert '<input type="hidden" name="next" value="users/dev1?panel=edit">' in form.body
    signed = console.post(
        "/console/signin",
        {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "next": "users/dev1?panel=edit"},
    )
    assert signed.status == 303
    assert signed.location == "../console/users/dev1?panel=edit"
    assert console.get(path_of(signed.location)).status == 200


def test_sign_in_never_returns_to_another_site_or_path(client, admin):
    for target in (
        "//evil.example/console",
        "https://evil.example/",
        "users/../../signin",
        "/users",
        "users\\evil",
        "portal",
        "users//x",
    ):
        browser = Console(client)
        browser.get("/console/signin?" + urlencode({"next": target}))
        assert (
            'name="next"' not in browser.get("/console/signin?" + urlencode({"next": target})).body
        )
        signed = browser.post(
            "/console/signin", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "next": target}
        )
        assert signed.location == "../console/users", target


def test_an_unknown_console_address_is_the_consoles_own_404(client, console):
    make_user("dev1", "dev1@example.com")
    for path in ("/console/nope", "/console/users/dev1/extra", "/console/a/b/c/d/e"):
        page = console.get(path)
        assert page.status == 404, path
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "<h1>Page not found</h1>" in page.body
        assert 'aria-label="Console"' in page.body  # the menu, since signed in
        assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    stranger = Console(client).get("/console/nope")
    assert stranger.status == 404 and "<h1>Page not found</h1>" in stranger.body
    assert 'aria-label="Console"' not in stranger.body
    # Paths outside the console keep APIM's JSON error.
    other = client.http.get("/nope/x")
    assert other.status_code == 404 and other.headers["Content-Type"].startswith("application/json")


# --- issue 17: bulk and export -----------------------------------------------------------------


def post_many(console: Console, fields: list[tuple[str, str]]) -> Page:
    """A form with repeated fields (checkboxes), with the page's CSRF token."""
    return console.request("POST", "/console/users", None, [*fields, ("csrf", console.csrf)])


def test_bulk_actions_confirm_once_listing_the_users_then_report_each(console, admin):
    make_user("dev1", "dev1@example.com", firstName="Ada", lastName="One")
    make_user("dev2", "dev2@example.com", firstName="Ada", lastName="Two")
    make_user("dev3", "dev3@example.com", firstName="Ada", lastName="Three")
    services().accounts.update("dev3", UserChanges(state=UserState.BLOCKED), ANY)
    listed = console.get("/console/users")
    assert 'name="u" value="dev1"' in listed.body and ">Block…</button>" in listed.body
    asked = post_many(
        console,
        [("bulk", "block"), ("u", "dev1"), ("u", "dev2"), ("u", "dev3"), ("u", admin.id)],
    )
    assert asked.status == 200
    assert '<h2 id="panel-title">Block 2 users?</h2>' in asked.body
    selection = asked.text_of("bulk-selection")
    assert "Ada One" in asked.body and "Ada Two" in asked.body
    assert "Skipped: already blocked" in asked.body
    assert "Skipped: your own account" in asked.body
    assert state_of("dev1") is UserState.ACTIVE  # nothing happens before the confirmation
    assert selection
    # Someone changes dev2 between the confirmation and the click: only dev2 is left alone.
    services().accounts.update("dev2", UserChanges(note="meanwhile", note_given=True), ANY)
    targets = re.findall(r'name="t" value="([^"]+)"', asked.body)
    assert [t.split(":")[0] for t in targets] == ["dev1", "dev2"]
    done = post_many(console, [("bulk", "block"), ("confirm", "yes"), *[("t", t) for t in targets]])
    assert done.status == 200
    assert "1 of 2 done" in done.body
    results = done.text_of("bulk-results")
    assert results
    assert "Blocked." in done.body
    assert "someone changed this user after the confirmation opened" in done.body
    assert state_of("dev1") is UserState.BLOCKED
    assert state_of("dev2") is UserState.ACTIVE
    assert state_of(admin.id) is UserState.ACTIVE
    # Activate and delete the same way.
    asked = post_many(console, [("bulk", "activate"), ("u", "dev1"), ("u", "dev3")])
    targets = re.findall(r'name="t" value="([^"]+)"', asked.body)
    post_many(console, [("bulk", "activate"), ("confirm", "yes"), *[("t", t) for t in targets]])
    assert state_of("dev1") is UserState.ACTIVE and state_of("dev3") is UserState.ACTIVE
    asked = post_many(console, [("bulk", "delete"), ("u", "dev1"), ("u", "dev3")])
    assert "This cannot be undone" in asked.body
    targets = re.findall(r'name="t" value="([^"]+)"', asked.body)
    post_many(console, [("bulk", "delete"), ("confirm", "yes"), *[("t", t) for t in targets]])
    assert console.get("/console/users/dev1").status == 404
    assert console.get("/console/users/dev3").status == 404
    nothing = post_many(console, [("bulk", "delete")])
    assert nothing.status == 400 and "Select at least one user first." in nothing.body
    # Without its CSRF token a bulk form changes nothing.
    refused = console.request(
        "POST", "/console/users", None, [("bulk", "delete"), ("confirm", "yes"), ("t", "dev2:1")]
    )
    assert refused.status == 403


def test_export_is_the_filtered_list_as_csv_with_safe_cells(console, client):
    import csv
    import io

    make_user("dev1", "dev1@example.com", firstName='=HYPERLINK("http://x")', lastName="Evil")
    make_user("dev2", "dev2@example.com", firstName="Bob", lastName="-1+1", note="@SUM(A1)")
    make_user("dev3", "dev3@example.org", firstName="Carla", lastName="Plain")
    page = console.get("/console/users?q=example.com&sort=email&dir=desc")
    link = link_named(page, "Export these users as CSV")
    assert link == "/console/users.csv?q=example.com&sort=email&dir=desc"
    reply = client.http.get(link, headers={"cookie": f"apim_console={console.cookie}"})
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert reply.headers["Content-Disposition"] == 'attachment; filename="users.csv"'
    text = reply.body.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == [
        "First name",
        "Last name",
        "Email",
        "State",
        "Registration date",
        "Note",
        "Id",
    ]
    assert [r[2] for r in rows[1:]] == ["dev2@example.com", "dev1@example.com", ADMIN_EMAIL]
    assert rows[1][1] == "'-1+1" and rows[1][5] == "'@SUM(A1)"
    assert rows[2][0] == '\'=HYPERLINK("http://x")'
    # Signed out, the export is a sign-in like any console page.
    stranger = client.http.get(link)
    assert stranger.status_code == 303


def test_the_export_is_bounded(aws):
    from chalicelib.api import console_users

    for n in range(7):
        make_user(f"x{n}", f"x{n}@example.com")
    view = console_users.ListView("", "", console_users.DEFAULT_ORDER, 20, None, None, 0)
    rows, cut = console_users.export_rows(view, max_rows=5, chunk=2)
    assert cut and [r[2] for r in rows] == [f"x{n}@example.com" for n in range(5)]
    rows, cut = console_users.export_rows(view, max_rows=50, chunk=3)
    assert not cut and len(rows) == 7
