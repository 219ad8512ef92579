"""Sign-up on the portal, as ``portalsettings/signup`` allows it: the home's link, the form, the
terms and their consent, a pending account and its confirmSignUpIdentityDefault, the confirming
link that makes it active only with the password chosen at sign-up (and signs in); a new sign-up
replaces a pending one; a taken address is not revealed; forms from elsewhere change nothing."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest

from chalicelib.bootstrap import services
from chalicelib.domain.users import UserState
from chalicelib.services.signup import SIGNUPS_PER_EMAIL_HOUR
from tests.api.portal_support import Developer, make_developer
from tests.support import mail_to

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CONFIRM = "/confirm-v2/identities/basic/signup"
PASSWORD = "tea kettle in the morning fog"
TERMS = "Be kind to the servers.\nNo scraping."


def settings(api, **props) -> None:
    reply = api.put("/portalsettings/signup", {"properties": props})
    assert reply.status == 200, reply.body


class Visitor:
    """A signed-out browser at the sign-up page: its cookie and the form's token."""

    def __init__(self, client) -> None:
        self.client = client
        self.page = client.http.get("/signup")
        self.cookie = self.page.headers.get("Set-Cookie", "").split(";")[0]
        found = re.search(r'name="csrf" value="([^"]+)"', self.page.body.decode())
        self.csrf = found.group(1) if found else ""

    def submit(self, csrf: str | None = None, **fields: str):
        sent = {
            "firstName": "Grace",
            "lastName": "Hopper",
            "email": "grace@example.com",
            "password": PASSWORD,
            "confirmPassword": PASSWORD,
            "csrf": self.csrf if csrf is None else csrf,
            **fields,
        }
        headers = {**FORM, "Cookie": self.cookie}
        return self.client.http.post("/signup", headers=headers, body=urlencode(sent))


class Confirmation:
    """A browser at the confirmation link's page: its cookie and the form's token."""

    def __init__(self, client, token: str) -> None:
        self.client = client
        self.token = token
        self.page = client.http.get(f"{CONFIRM}?{urlencode({'token': token})}")
        self.cookie = self.page.headers.get("Set-Cookie", "").split(";")[0]
        found = re.search(r'name="csrf" value="([^"]+)"', self.page.body.decode())
        self.csrf = found.group(1) if found else ""

    def submit(self, password: str | None = PASSWORD, csrf: str | None = None):
        sent = {"token": self.token, "csrf": self.csrf if csrf is None else csrf}
        if password is not None:
            sent["password"] = password
        headers = {**FORM, "Cookie": self.cookie}
        return self.client.http.post(CONFIRM, headers=headers, body=urlencode(sent))


def link_sent_to(address: str) -> str:
    return mail_to(address)[-1].token(CONFIRM)


def body(reply) -> str:
    return reply.body.decode()


def signed_in_as(client, reply) -> str:
    """The home's welcome for the session cookie a reply set ("" when none)."""
    cookie = reply.headers.get("Set-Cookie", "").split(";")[0]
    if not cookie.startswith("apim_session=") or cookie == "apim_session=":
        return ""
    home = body(client.http.get("/", headers={"Cookie": cookie}))
    found = re.search(r"<h1[^>]*>(Welcome, [^<]*)</h1>", home)
    return found.group(1) if found else ""


def _find(email: str):
    from chalicelib.domain.users import email_key

    return services().store.users.find_by_email(email_key(email))


def test_the_home_offers_sign_up_by_default_and_the_form_creates_a_pending_account(client, aws):
    home = client.http.get("/")
    assert 'href="./signup"' in body(home)
    visitor = Visitor(client)
    assert visitor.page.status_code == 200
    assert 'name="consent"' not in body(visitor.page)
    sent = visitor.submit()
    assert sent.status_code == 202, body(sent)
    assert "Check your email" in body(sent)
    user = _find("grace@example.com")
    assert user is not None and user.state is UserState.PENDING
    [mail] = mail_to("grace@example.com")
    # confirmSignUpIdentityDefault's link; GET shows a page asking for the password, and
    # consumes nothing.
    link = mail.link(CONFIRM)
    path = link[link.index(CONFIRM) :]
    shown = client.http.get(path)
    assert shown.status_code == 200 and "Confirm my account" in body(shown)
    assert 'name="password"' in body(shown) and 'name="csrf"' in body(shown)
    done = Confirmation(client, mail.token(CONFIRM)).submit()
    # Active, signed in, on the portal's home.
    assert done.status_code == 303 and done.headers["Location"] == "../../../"
    assert signed_in_as(client, done) == "Welcome, Grace"
    assert _find("grace@example.com").state is UserState.ACTIVE
    # The password chosen at sign-up signs in.
    Developer(client, "grace@example.com", PASSWORD)


def test_closed_sign_up_shows_no_link_and_the_page_and_its_post_are_404(api, client):
    settings(api, enabled=False)
    assert "signup" not in body(client.http.get("/"))
    visitor = Visitor(client)
    assert visitor.page.status_code == 404
    assert "Sign-up is closed" in body(visitor.page)
    assert visitor.page.headers["Content-Type"].startswith("text/html")
    posted = visitor.submit(csrf="anything")
    assert posted.status_code == 404
    assert _find("grace@example.com") is None and mail_to("grace@example.com") == []


def test_terms_are_shown_and_consent_is_required_by_the_server(api, client):
    settings(
        api,
        enabled=True,
        termsOfService={"text": TERMS, "enabled": True, "consentRequired": True},
    )
    visitor = Visitor(client)
    page = body(visitor.page)
    assert "No scraping." in page and 'name="consent"' in page
    refused = visitor.submit()
    assert refused.status_code == 400
    assert "You must agree to the terms of use." in body(refused)
    assert 'value="grace@example.com"' in body(refused)  # what was typed stays, but no password
    assert PASSWORD not in body(refused)
    assert _find("grace@example.com") is None
    assert visitor.submit(consent="yes").status_code == 202
    assert _find("grace@example.com").state is UserState.PENDING


def test_terms_shown_without_consent_need_no_box(api, client):
    settings(api, termsOfService={"text": TERMS, "enabled": True, "consentRequired": False})
    visitor = Visitor(client)
    assert "No scraping." in body(visitor.page) and 'name="consent"' not in body(visitor.page)
    assert visitor.submit().status_code == 202


def test_disabled_terms_are_not_shown(api, client):
    settings(api, termsOfService={"text": TERMS, "enabled": False, "consentRequired": True})
    visitor = Visitor(client)
    assert "No scraping." not in body(visitor.page)
    assert visitor.submit().status_code == 202


def test_a_taken_address_gets_the_same_answer_and_nothing_changes(client, aws):
    make_developer("ada", "ada@example.com")
    before = services().accounts.get("ada")
    sent = Visitor(client).submit(email="ADA@example.com")
    fresh = Visitor(client).submit(email="new@example.com")
    assert sent.status_code == fresh.status_code == 202
    strip = lambda r: re.sub(r'value="[^"]*"', "", body(r))  # noqa: E731
    assert strip(sent) == strip(fresh)
    assert services().accounts.get("ada") == before
    assert all("sign" not in m.subject.lower() for m in mail_to("ada@example.com"))


@pytest.mark.parametrize(
    ("fields", "field", "said"),
    [
        ({"firstName": ""}, "firstName", "Enter your first name."),
        ({"lastName": "   "}, "lastName", "Enter your last name."),
        ({"email": ""}, "email", "Enter your email address."),
        ({"email": "not an address"}, "email", "Enter an email address like name@example.com."),
        ({"password": "", "confirmPassword": ""}, "password", "Choose a password."),
        ({"password": "short", "confirmPassword": "short"}, "password", "at least 8"),
        ({"confirmPassword": "something else"}, "confirmPassword", "not the same"),
        ({"firstName": "x" * 101}, "firstName", "at most 100 characters"),
    ],
)
def test_field_problems_are_said_in_plain_words_next_to_the_field(client, aws, fields, field, said):
    refused = Visitor(client).submit(**fields)
    assert refused.status_code == 400
    found = re.search(rf'<p class="error" id="{field}-error">(.*?)</p>', body(refused))
    assert found and said in found.group(1)
    assert "'" + field + "'" not in body(refused)
    assert _find("grace@example.com") is None


def test_a_form_without_its_pages_token_creates_nothing(client, aws):
    visitor = Visitor(client)
    assert visitor.submit(csrf="").status_code == 403
    assert visitor.submit(csrf="forged").status_code == 403
    other = Visitor(client)
    assert visitor.submit(csrf=other.csrf).status_code == 403
    assert _find("grace@example.com") is None and mail_to("grace@example.com") == []


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe", b"email=%ff", b"a=" + b"x" * 2_000_000, b'{"email": 1}'],
)
def test_hostile_bodies_get_a_page_never_a_500(client, aws, raw):
    visitor = Visitor(client)
    headers = {**FORM, "Cookie": visitor.cookie}
    reply = client.http.post("/signup", headers=headers, body=raw)
    assert reply.status_code in (400, 403)
    assert reply.headers["Content-Type"].startswith("text/html")


def test_a_signed_in_developer_is_sent_home(client, aws):
    make_developer("ada", "ada@example.com")
    dev = Developer(client, "ada@example.com")
    reply = dev.get("/signup")
    assert reply.status == 303 and reply.location == "./"


# --- confirming: the link and the password chosen at sign-up --------------------------------------

THEIRS = "someone else picked this one"


def test_pre_registration_takes_nothing_over(client, aws):
    # Someone signs up with Grace's address and picks the password; the link goes to Grace.
    assert Visitor(client).submit(password=THEIRS, confirmPassword=THEIRS).status_code == 202
    confirmation = Confirmation(client, link_sent_to("grace@example.com"))
    # Grace follows it (an email she did not ask for) and confirms without that password.
    for given in (None, "", PASSWORD):
        refused = confirmation.submit(given)
        assert refused.status_code == 400
        assert "not the password chosen" in body(refused)
        assert signed_in_as(client, refused) == ""
    assert _find("grace@example.com").state is UserState.PENDING
    # Nor does the other party's password sign in: the account is not active.
    signin = client.http.post(
        "/signin",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"email": "grace@example.com", "password": THEIRS}),
    )
    assert signin.status_code == 401
    # Grace signs up herself: her link, her password; the first link is dead.
    assert Visitor(client).submit().status_code == 202
    assert confirmation.submit(THEIRS).status_code == 410
    mine = Confirmation(client, link_sent_to("grace@example.com"))
    assert mine.submit(THEIRS).status_code == 400
    assert signed_in_as(client, mine.submit(PASSWORD)) == "Welcome, Grace"
    signin = client.http.post(
        "/signin",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"email": "grace@example.com", "password": THEIRS}),
    )
    assert signin.status_code == 401
    Developer(client, "grace@example.com", PASSWORD)


def test_a_lost_email_is_sent_again_by_signing_up_again_with_the_same_answer(client, aws):
    first = Visitor(client).submit()
    lost = link_sent_to("grace@example.com")
    again = Visitor(client).submit(firstName="Gracie")
    fresh = Visitor(client).submit(email="new@example.com")
    assert first.status_code == again.status_code == fresh.status_code == 202
    strip = lambda r: re.sub(r'value="[^"]*"', "", body(r))  # noqa: E731
    assert strip(again) == strip(fresh)
    [_, mail] = mail_to("grace@example.com")
    assert mail.token(CONFIRM) != lost
    assert Confirmation(client, lost).page.status_code == 410
    done = Confirmation(client, mail.token(CONFIRM)).submit()
    assert signed_in_as(client, done) == "Welcome, Gracie"


def test_following_the_link_changes_nothing_until_the_form_is_posted(client, aws):
    Visitor(client).submit()
    token = link_sent_to("grace@example.com")
    for _ in range(3):  # a mail scanner, a preview, the person
        shown = Confirmation(client, token).page
        assert shown.status_code == 200
        assert "apim_session" not in shown.headers.get("Set-Cookie", "")
    assert _find("grace@example.com").state is UserState.PENDING
    assert Confirmation(client, token).submit().status_code == 303


def test_a_confirmation_without_its_pages_token_changes_nothing(client, aws):
    Visitor(client).submit()
    confirmation = Confirmation(client, link_sent_to("grace@example.com"))
    assert confirmation.submit(csrf="").status_code == 403
    other = Confirmation(client, confirmation.token)
    assert confirmation.submit(csrf=other.csrf + "x").status_code == 403
    assert _find("grace@example.com").state is UserState.PENDING
    # A script (JSON, which no other site can make a browser send) needs the password too.
    headers = {"Content-Type": "application/json"}
    sent = {"token": confirmation.token}
    assert client.http.post(CONFIRM, headers=headers, body=json.dumps(sent)).status_code == 400
    sent["password"] = PASSWORD
    done = client.http.post(CONFIRM, headers=headers, body=json.dumps(sent))
    assert done.status_code == 200 and json.loads(done.body)["state"] == "active"


def test_wrong_passwords_on_the_link_are_throttled_like_sign_in(client, clock):
    Visitor(client).submit()
    confirmation = Confirmation(client, link_sent_to("grace@example.com"))
    most = services().settings.signin_failures_per_account_address
    for _ in range(most):
        assert confirmation.submit("a guess at it").status_code == 400
    held = confirmation.submit(PASSWORD)
    assert held.status_code == 429 and int(held.headers["Retry-After"]) > 0
    assert "Too many attempts" in body(held)
    assert _find("grace@example.com").state is UserState.PENDING
    clock.advance(hours=1)
    assert confirmation.submit(PASSWORD).status_code == 303


def test_one_email_is_held_back_after_its_hourly_sign_ups(client, aws):
    for _ in range(SIGNUPS_PER_EMAIL_HOUR):
        assert Visitor(client).submit().status_code == 202
    held = Visitor(client).submit()
    assert held.status_code == 429 and "Too many attempts" in body(held)
    assert len(mail_to("grace@example.com")) == SIGNUPS_PER_EMAIL_HOUR
    assert Visitor(client).submit(email="other@example.com").status_code == 202


def test_an_invited_address_is_left_alone(api, client):
    props = {"email": "ivy@example.com", "firstName": "Ivy", "lastName": "I"}
    api.put("/users/ivy", {"properties": {**props, "confirmation": "invite"}})
    before = services().accounts.get("ivy")
    mails = len(mail_to("ivy@example.com"))
    assert Visitor(client).submit(email="ivy@example.com").status_code == 202
    assert services().accounts.get("ivy") == before
    assert len(mail_to("ivy@example.com")) == mails


def test_a_script_signing_up_gets_apims_errors(client, aws):
    # JSON, which no other site can make a browser send, needs no page token.
    headers = {"Content-Type": "application/json"}
    sent = {"firstName": "Grace", "lastName": "Hopper", "email": "grace@example.com"}
    refused = client.http.post("/signup", headers=headers, body=json.dumps(sent))
    assert refused.status_code == 400
    assert json.loads(refused.body)["error"]["code"] == "ValidationError"
    sent |= {"password": PASSWORD, "confirmPassword": PASSWORD}
    assert client.http.post("/signup", headers=headers, body=json.dumps(sent)).status_code == 202
    assert _find("grace@example.com").state is UserState.PENDING
