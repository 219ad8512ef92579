"""The portal's home, the developer session, sign-in returning to the page asked for, sign-out."""

import re
from urllib.parse import urlencode

import pytest

from tests.api.test_invitations import INVITE_PATH, invite, portal_post
from tests.api.test_signin_and_reset import PASSWORD, RESET_PATH, post_form, send_reset
from tests.support import mail_to

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Person:
    """A person at the portal with a browser's cookie: signs in by the form, follows pages."""

    def __init__(self, client):
        self.client = client
        self.cookie = ""

    def _keep(self, reply):
        set_cookie = reply.headers.get("Set-Cookie", "")
        if set_cookie.startswith("apim_session="):
            self.cookie = set_cookie.split(";")[0]
            if self.cookie == "apim_session=" or "Max-Age=0" in set_cookie:
                self.cookie = ""
        return reply

    def get(self, path):
        headers = {"Cookie": self.cookie} if self.cookie else {}
        return self._keep(self.client.http.get(path, headers=headers))

    def post(self, path, fields):
        headers = {**FORM, **({"Cookie": self.cookie} if self.cookie else {})}
        return self._keep(self.client.http.post(path, headers=headers, body=urlencode(fields)))

    def sign_in(self, email="dev@example.com", password=PASSWORD, next_page=None):
        """The form, as a browser fills it: from the sign-in page, with its cookie and token."""
        form = self.client.http.get("/signin")
        nonce = form.headers["Set-Cookie"].split(";")[0]
        csrf = re.search(r'name="csrf" value="([^"]+)"', text(form)).group(1)
        fields = {"email": email, "password": password, "csrf": csrf}
        if next_page is not None:
            fields["next"] = next_page
        headers = {**FORM, "Cookie": "; ".join(c for c in (self.cookie, nonce) if c)}
        return self._keep(self.client.http.post("/signin", headers=headers, body=urlencode(fields)))

    def csrf(self, path="/portal/profile"):
        found = re.search(r'name="csrf" value="([^"]+)"', self.get(path).body.decode())
        assert found, "the page carries no CSRF token"
        return found.group(1)

    def submit(self, path, fields, page="/portal/profile"):
        return self.post(path, {"csrf": self.csrf(page), **fields})


def text(reply):
    return reply.body.decode()


@pytest.fixture
def dev(api):
    api.create_user(
        "dev", "dev@example.com", firstName="Dee", lastName="Veloper", password=PASSWORD
    )
    return api


@pytest.fixture
def person(client):
    return Person(client)


def test_signed_out_home_offers_sign_in_sign_up_and_a_forgotten_password(client):
    home = client.http.get("/")
    assert home.status_code == 200
    assert home.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in home.headers["Content-Security-Policy"]
    body = text(home)
    assert 'href="./signin"' in body
    assert 'href="./signup"' in body
    assert 'href="./password-reset"' in body
    assert "Sign out" not in body


def test_signed_in_home_welcomes_the_developer_with_the_portal_s_pages(dev, person):
    signed = person.sign_in()
    assert signed.status_code == 303
    assert signed.headers["Location"] == "./"
    assert "HttpOnly" in signed.headers["Set-Cookie"]
    assert "SameSite=Strict" in signed.headers["Set-Cookie"]
    body = text(person.get("/"))
    assert "Welcome, Dee" in body
    for link in ("portal/profile", "portal/subscriptions", "portal/products"):
        assert f'href="./{link}"' in body
    assert 'action="./signout"' in body
    assert "./signup" not in body


def test_a_failed_form_sign_in_shows_the_form_again_keeping_where_to_return(dev, person):
    refused = person.sign_in(password="not the password", next_page="portal/profile")
    assert refused.status_code == 401
    assert 'name="next" value="portal/profile"' in text(refused)
    assert "not correct" in text(refused)


def test_a_page_that_needs_a_session_sends_to_sign_in_and_back(dev, person):
    asked = person.get("/portal/profile")
    assert asked.status_code == 303
    assert asked.headers["Location"] == "../signin?next=portal%2Fprofile"
    form = person.get("/signin?next=portal%2Fprofile")
    assert 'name="next" value="portal/profile"' in text(form)
    signed = person.sign_in(next_page="portal/profile")
    assert signed.status_code == 303
    assert signed.headers["Location"] == "./portal/profile"
    assert person.get("/portal/profile").status_code == 200
    # Signed in, the sign-in page goes straight on.
    again = person.get("/signin?next=portal%2Fprofile")
    assert again.status_code == 303 and again.headers["Location"] == "./portal/profile"


def test_the_page_asked_for_keeps_its_query(dev, person):
    asked = person.get("/portal/profile?done=names")
    assert asked.headers["Location"] == "../signin?next=portal%2Fprofile%3Fdone%3Dnames"
    signed = person.sign_in(next_page="portal/profile?done=names")
    assert signed.headers["Location"] == "./portal/profile?done=names"


@pytest.mark.parametrize(
    "hostile",
    [
        "https://evil.example/",
        "//evil.example/portal",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "portal/../../evil",
        "portal//evil.example",
        "../portal/profile",
        "console/users",
        "http:portal/profile",
        "portal/profile\r\nSet-Cookie: x=1",
        " portal/profile",
        "portal/profile#frag",
        "%2F%2Fevil.example",
        "portal/" + "a" * 1200,
    ],
)
def test_sign_in_never_returns_to_another_site_or_page(dev, person, hostile):
    signed = person.sign_in(next_page=hostile)
    assert signed.status_code == 303
    assert signed.headers["Location"] == "./"
    form = person.client.http.get("/signin?" + urlencode({"next": hostile}))
    assert form.status_code == 200
    assert 'name="next"' not in text(form)


def test_a_sign_in_form_posted_from_elsewhere_signs_nobody_in(dev, client):
    forged = post_form(client, "/signin", {"email": "dev@example.com", "password": PASSWORD})
    assert forged.status_code == 403
    assert "This form has expired" in text(forged)
    assert "apim_session" not in forged.headers.get("Set-Cookie", "")
    page = client.http.get("/signin")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("apim_signin=") and "HttpOnly" in cookie and "Path=/signin" in cookie
    # The token of one form does not go with another form's cookie.
    other = client.http.get("/signin").headers["Set-Cookie"].split(";")[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', text(page)).group(1)
    fields = {"email": "dev@example.com", "password": PASSWORD, "csrf": csrf}
    assert post_form(client, "/signin", fields, Cookie=other).status_code == 403


def test_a_leading_slash_is_accepted_and_resolved_from_the_app_root(dev, person):
    signed = person.sign_in(next_page="/portal/profile")
    assert signed.headers["Location"] == "./portal/profile"


def test_json_sign_in_is_unchanged(dev, client):
    reply = post_form(
        client,
        "/signin",
        {"email": "dev@example.com", "password": PASSWORD},
        Accept="application/json",
    )
    assert reply.status_code == 200


def test_sign_out_needs_the_form_s_token_and_clears_the_cookie(dev, person):
    person.sign_in()
    forged = person.post("/signout", {"csrf": "forged"})
    assert forged.status_code == 403
    assert person.get("/portal/profile").status_code == 200
    csrf = person.csrf()
    out = person.post("/signout", {"csrf": csrf})
    assert out.status_code == 303
    assert out.headers["Location"] == "./?m=signed-out"
    assert "Max-Age=0" in out.headers["Set-Cookie"]
    assert person.cookie == ""
    assert "You are signed out." in text(person.get("/?m=signed-out"))
    assert person.get("/portal/profile").status_code == 303


def test_a_form_token_of_another_developer_is_refused(dev, client):
    dev.create_user("other", "other@example.com", password=PASSWORD)
    one, other = Person(client), Person(client)
    one.sign_in()
    other.sign_in("other@example.com")
    assert other.post("/signout", {"csrf": one.csrf()}).status_code == 403
    assert other.get("/portal/profile").status_code == 200


def test_a_block_ends_the_portal_session_on_the_next_request(dev, person):
    person.sign_in()
    assert person.get("/portal/profile").status_code == 200
    blocked = dev.patch(
        "/users/dev", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"}
    )
    assert blocked.status == 200
    ended = person.get("/portal/profile")
    assert ended.status_code == 303
    assert ended.headers["Location"] == "../signin?m=ended&next=portal%2Fprofile"
    assert "Max-Age=0" in ended.headers["Set-Cookie"]
    # Unblocking does not bring the old session back.
    dev.patch("/users/dev", {"properties": {"state": "active"}}, headers={"If-Match": "*"})
    assert person.get("/portal/profile").status_code == 303


def test_a_blocked_developer_s_old_cookie_changes_nothing(dev, person):
    person.sign_in()
    csrf = person.csrf()
    dev.patch("/users/dev", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"})
    tried = person.post("/portal/profile/name", {"csrf": csrf, "firstName": "X", "lastName": "Y"})
    assert tried.status_code == 303
    assert dev.get("/users/dev").json["properties"]["firstName"] == "Dee"


def test_a_deleted_developer_s_session_ends(dev, person):
    person.sign_in()
    assert dev.delete("/users/dev", headers={"If-Match": "*"}).status == 204
    assert person.get("/portal/profile").status_code == 303
    assert "Welcome, Dee" not in text(person.get("/"))


def test_accepting_an_invitation_leads_to_the_home(api, client):
    invite(api)
    token = mail_to("ivy@example.com")[0].token(INVITE_PATH)
    accepted = portal_post(client, {"token": token, "password": "ivy's own passphrase"})
    assert accepted.status_code == 200
    assert 'href="../">Go to the developer portal' in text(accepted)


def test_a_reset_s_done_page_leads_to_the_home(dev, client):
    token = send_reset(dev)
    done = post_form(client, RESET_PATH, {"token": token, "password": "the second passphrase"})
    assert done.status_code == 200
    assert 'href="../">Go to the developer portal' in text(done)


def test_unknown_portal_pages_answer_a_page_not_json(dev, person):
    missing = person.get("/portal/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("text/html")
    person.sign_in()
    assert "Sign out" in text(person.get("/portal/nothing-here"))


def test_the_home_is_in_the_openapi_document(client):
    import json

    document = json.loads(client.http.get("/openapi.json").body)
    assert "get" in document["paths"]["/"]
    assert "post" in document["paths"]["/signout"]
