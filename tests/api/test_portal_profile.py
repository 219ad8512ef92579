"""The developer's profile: names, email change by confirmed link, password, closing the account."""

import re

import pytest

from chalicelib.bootstrap import services
from chalicelib.domain.etag import ANY
from chalicelib.domain.users import UserChanges
from tests.api.test_invitations import FailingMailer
from tests.api.test_portal_home import Person, text
from tests.api.test_signin_and_reset import PASSWORD, RESET_PATH, send_reset
from tests.api.test_subscriptions import STARTER, check, secrets_of, subscribe
from tests.support import mail_to, wire

EMAIL_PATH = "/confirm-v2/identities/basic/email"
NEW = "dee@new.example"


@pytest.fixture
def dev(api):
    api.create_user(
        "dev", "dev@example.com", firstName="Dee", lastName="Veloper", password=PASSWORD
    )
    return api


@pytest.fixture
def person(client, dev):
    signed_in = Person(client)
    assert signed_in.sign_in().status_code == 303
    return signed_in


def props(api, user_id="dev"):
    return api.get(f"/users/{user_id}").json["properties"]


def version_of(person):
    return re.search(r'name="version" value="(\d+)"', text(person.get("/portal/profile"))).group(1)


def request_change(person, email=NEW):
    return person.submit("/portal/profile/email", {"email": email})


def email_token(address=NEW):
    return mail_to(address)[-1].token(EMAIL_PATH)


def confirm(client, token):
    return Person(client).post(EMAIL_PATH, {"token": token})


# The page


def test_the_profile_shows_email_names_and_registration_date(dev, person):
    page = person.get("/portal/profile")
    assert page.status_code == 200
    body = text(page)
    registered = props(dev)["registrationDate"][:10]
    for shown in ("dev@<wbr>example<wbr>.com", "Dee", "Veloper", registered):
        assert shown in body
    assert 'aria-current="page"' in body
    assert page.headers["Cache-Control"] == "no-store"


# Names


def test_changing_names(dev, person):
    changed = person.submit(
        "/portal/profile/name",
        {"firstName": " Dora ", "lastName": "Vell", "version": version_of(person)},
    )
    assert changed.status_code == 303
    assert changed.headers["Location"] == "../../portal/profile?done=names"
    assert (props(dev)["firstName"], props(dev)["lastName"]) == ("Dora", "Vell")
    assert "Your name is saved." in text(person.get("/portal/profile?done=names"))


@pytest.mark.parametrize(
    ("first", "last", "field", "message"),
    [
        ("", "Vell", "firstName", "Enter your first name."),
        ("Dora", "   ", "lastName", "Enter your last name."),
        ("D" * 101, "Vell", "firstName", "Enter a first name of at most 100 characters."),
        ("Dora\u202e", "Vell", "firstName", "character"),
    ],
)
def test_bad_names_are_refused_in_plain_words_and_nothing_changes(
    dev, person, first, last, field, message
):
    refused = person.submit(
        "/portal/profile/name",
        {"firstName": first, "lastName": last, "version": version_of(person)},
    )
    assert refused.status_code == 400
    body = text(refused)
    assert f'id="{field}-error"' in body and message in body
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"[^>]*autofocus', body)
    assert props(dev)["firstName"] == "Dee"


def test_names_changed_elsewhere_meanwhile_are_not_overwritten(dev, person):
    shown = version_of(person)
    services().accounts.update("dev", UserChanges(first_name="Admin"), ANY)
    stale = person.submit(
        "/portal/profile/name", {"firstName": "Dora", "lastName": "Vell", "version": shown}
    )
    assert stale.status_code == 409
    assert "changed elsewhere" in text(stale)
    assert props(dev)["firstName"] == "Admin"


def test_a_form_without_its_token_changes_nothing(dev, person):
    for fields in ({}, {"csrf": ""}, {"csrf": "forged"}, {"csrf": "\u00e9t\u00e9"}):
        refused = person.post("/portal/profile/name", {"firstName": "X", "lastName": "Y", **fields})
        assert refused.status_code == 403
    garbled = person.client.http.post(
        "/portal/profile/name",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": person.cookie},
        body=b"\xff\xfe=%ff&csrf=%80",
    )
    assert garbled.status_code == 403
    assert props(dev)["firstName"] == "Dee"


# Email change


def test_an_email_change_happens_only_when_the_new_address_confirms_it(dev, person, client):
    asked = request_change(person)
    assert asked.status_code == 303
    assert "We sent a link to your new address" in text(person.get("/portal/profile?done=email"))
    [mail] = mail_to(NEW)
    assert mail.subject.startswith("Please confirm the new email")
    assert "Dee Veloper" in mail.text
    assert mail_to("dev@example.com") == []
    assert props(dev)["email"] == "dev@example.com"

    token = mail.token(EMAIL_PATH)
    shown = client.http.get(f"{EMAIL_PATH}?token={token}")
    assert shown.status_code == 200
    assert "dee@<wbr>new<wbr>.example" in text(shown)
    # Showing the page (a mail scanner's prefetch) consumed nothing.
    assert props(dev)["email"] == "dev@example.com"

    confirmed = confirm(client, token)
    assert confirmed.status_code == 200
    assert "Your email address is changed" in text(confirmed)
    assert props(dev)["email"] == NEW
    assert props(dev)["identities"] == [{"provider": "Basic", "id": NEW}]
    assert confirm(client, token).status_code == 410
    # The session goes on; sign-in is with the new address only.
    assert person.get("/portal/profile").status_code == 200
    assert Person(client).sign_in(NEW).status_code == 303
    assert Person(client).sign_in("dev@example.com").status_code == 401


def test_confirming_kills_links_sent_to_the_old_address_and_frees_it(dev, person, client):
    reset_token = send_reset(dev)
    request_change(person)
    assert confirm(client, email_token()).status_code == 200
    assert client.http.get(f"{RESET_PATH}?token={reset_token}").status_code == 410
    # The old address is free for another account.
    assert dev.create_user("again", "dev@example.com").status == 201


def test_a_newer_request_replaces_the_older_link(dev, person, client):
    request_change(person, "first@new.example")
    first = email_token("first@new.example")
    request_change(person, "second@new.example")
    assert confirm(client, first).status_code == 410
    assert confirm(client, email_token("second@new.example")).status_code == 200
    assert props(dev)["email"] == "second@new.example"


def test_an_admin_change_of_address_kills_the_pending_confirmation(dev, person, client):
    request_change(person)
    token = email_token()
    dev.patch(
        "/users/dev", {"properties": {"email": "admin@set.example"}}, headers={"If-Match": "*"}
    )
    assert client.http.get(f"{EMAIL_PATH}?token={token}").status_code == 410
    assert confirm(client, token).status_code == 410
    assert props(dev)["email"] == "admin@set.example"


def test_a_block_kills_the_pending_confirmation(dev, person, client):
    request_change(person)
    token = email_token()
    dev.patch("/users/dev", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"})
    dev.patch("/users/dev", {"properties": {"state": "active"}}, headers={"If-Match": "*"})
    assert confirm(client, token).status_code == 410
    assert props(dev)["email"] == "dev@example.com"


def test_an_address_taken_meanwhile_is_refused_at_confirmation(dev, person, client):
    request_change(person)
    token = email_token()
    dev.create_user("other", NEW)
    refused = confirm(client, token)
    assert refused.status_code == 409
    assert "Another account already uses this email address." in text(refused)
    assert props(dev)["email"] == "dev@example.com"
    assert props(dev, "other")["email"] == NEW


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "Enter your new email address."),
        ("not an address", "Enter an email address like name@example.com."),
        ("DEV@example.com", "This is already your email address."),
        ("a" * 300 + "@example.com", "Enter an email address like name@example.com."),
    ],
)
def test_bad_new_addresses_are_refused_in_plain_words(dev, person, email, message):
    refused = request_change(person, email)
    assert refused.status_code == 400
    assert message in text(refused)
    assert 'id="email"' in text(refused) and "autofocus" in text(refused)


def test_unknown_and_garbled_confirmation_links(client):
    assert client.http.get(f"{EMAIL_PATH}?token=nope").status_code == 404
    assert confirm(client, "nope").status_code == 404
    assert client.http.get(EMAIL_PATH).status_code == 404


def test_a_reset_token_is_not_an_email_change_token(dev, person, client):
    reset_token = send_reset(dev)
    assert confirm(client, reset_token).status_code == 404
    assert props(dev)["email"] == "dev@example.com"


def test_email_change_requests_are_limited(dev, person):
    statuses = [request_change(person, f"n{i}@new.example").status_code for i in range(7)]
    assert statuses[:5] == [303] * 5
    assert statuses[5] == 429
    assert len(mail_to("n5@new.example")) == 0


def test_the_email_change_confirmation_is_in_the_openapi_document(client):
    import json

    paths = json.loads(client.http.get("/openapi.json").body)["paths"]
    assert {"get", "post"} <= set(paths[EMAIL_PATH])
    assert "get" in paths["/portal/profile"]
    for action in ("name", "email", "password", "close"):
        assert "post" in paths[f"/portal/profile/{action}"]


# Password


def test_changing_the_password_keeps_this_session_and_ends_others(dev, person, client):
    other = Person(client)
    other.cookie = person.cookie  # the same session, kept in another browser
    changed = person.submit(
        "/portal/profile/password",
        {
            "currentPassword": PASSWORD,
            "newPassword": "a brand new passphrase",
            "confirmPassword": "a brand new passphrase",
        },
    )
    assert changed.status_code == 303
    assert changed.headers["Location"] == "../../portal/profile?done=password"
    assert person.get("/portal/profile").status_code == 200
    assert other.get("/portal/profile").status_code == 303
    assert Person(client).sign_in(password="a brand new passphrase").status_code == 303
    assert Person(client).sign_in().status_code == 401
    assert mail_to("dev@example.com")[-1].subject


@pytest.mark.parametrize(
    ("current", "new", "again", "field", "message"),
    [
        (
            "wrong one",
            "a brand new passphrase",
            "a brand new passphrase",
            "currentPassword",
            "The current password is not correct.",
        ),
        (
            "",
            "a brand new passphrase",
            "a brand new passphrase",
            "currentPassword",
            "Enter your current password.",
        ),
        (
            PASSWORD,
            "a brand new passphrase",
            "another passphrase",
            "confirmPassword",
            "The two new passwords are not the same.",
        ),
        (PASSWORD, "short", "short", "newPassword", "8"),
        (PASSWORD, "", "", "newPassword", "Enter a new password."),
    ],
)
def test_bad_password_changes_are_refused_and_nothing_changes(
    dev, person, client, current, new, again, field, message
):
    refused = person.submit(
        "/portal/profile/password",
        {"currentPassword": current, "newPassword": new, "confirmPassword": again},
    )
    assert refused.status_code == 400
    body = text(refused)
    assert f'id="{field}-error"' in body and message in body
    assert "a brand new passphrase" not in body
    assert Person(client).sign_in().status_code == 303


# Closing the account


def test_closing_asks_first_then_closes_everything(dev, person, client):
    assert dev.put("/products/starter", STARTER).status == 201
    subscribe(dev)
    key = secrets_of(dev)["primaryKey"]
    assert check(dev, key, productId="starter")["allowed"] is True

    asked = person.get("/portal/profile/close")
    assert asked.status_code == 200
    assert "You will not be able to sign in to or restore your closed account" in text(asked)
    assert props(dev)["state"] == "active"

    closed = person.submit(
        "/portal/profile/close", {"confirm": "yes"}, page="/portal/profile/close"
    )
    assert closed.status_code == 303
    assert closed.headers["Location"] == "../../?m=closed"
    assert "Max-Age=0" in closed.headers["Set-Cookie"]
    assert "Your account is closed." in text(person.get("/?m=closed"))

    assert dev.get("/users/dev").status == 404
    assert check(dev, key, productId="starter")["allowed"] is False
    assert dev.get("/subscriptions/sub1").status == 404
    farewell = mail_to("dev@example.com")[-1]
    assert "has been closed" in farewell.text
    assert dev.create_user("back", "dev@example.com").status == 201
    assert person.get("/portal/profile").status_code == 303


def test_closing_tells_the_publishers(dev, person):
    """AccountClosedPublisher goes to its recipients, in the delete's own transaction."""
    base = "/notifications/AccountClosedPublisher/recipientEmails"
    assert dev.put(f"{base}/ops@example.com").status == 201
    closed = person.submit(
        "/portal/profile/close", {"confirm": "yes"}, page="/portal/profile/close"
    )
    assert closed.status_code == 303
    [notice] = mail_to("ops@example.com")
    assert "dev@example.com" in notice.text


def test_closing_needs_the_confirmation_and_the_form_s_token(dev, person):
    csrf = person.csrf("/portal/profile/close")
    assert person.post("/portal/profile/close", {"csrf": csrf}).status_code == 400
    assert person.post("/portal/profile/close", {"confirm": "yes"}).status_code == 403
    assert props(dev)["state"] == "active"


def test_the_last_administrator_cannot_close_their_account_from_the_portal(api, client):
    from tests.api.test_last_administrator import make_admin

    make_admin("grace")
    services().accounts.update("grace", UserChanges(password=PASSWORD), ANY)
    grace = Person(client)
    assert grace.sign_in("grace@example.com").status_code == 303
    refused = grace.submit(
        "/portal/profile/close", {"confirm": "yes"}, page="/portal/profile/close"
    )
    assert refused.status_code == 409
    assert "last active administrator" in text(refused)
    assert props(api, "grace")["state"] == "active"


# The confirmation email through the outbox


def test_a_confirmation_that_failed_to_send_goes_out_later_to_the_new_address(
    dev, person, clock, client
):
    wire(mailer=FailingMailer())
    request_change(person)
    wire(mailer=None)
    assert mail_to(NEW) == []
    clock.advance(minutes=10)
    services().sweep.run()
    assert confirm(client, email_token()).status_code == 200
    assert props(dev)["email"] == NEW


def test_a_queued_confirmation_is_never_sent_once_the_address_changed(dev, person, clock):
    wire(mailer=FailingMailer())
    request_change(person)
    wire(mailer=None)
    dev.patch(
        "/users/dev", {"properties": {"email": "admin@set.example"}}, headers={"If-Match": "*"}
    )
    clock.advance(minutes=10)
    report = services().sweep.run()
    assert report.cancelled == 1
    assert mail_to(NEW) == []
