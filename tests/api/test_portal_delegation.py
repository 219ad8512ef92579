"""Delegation in the portal's pages: sign-in, sign-up, profile, sign-out, (un)subscribe.

When it is on, each sends the developer to the publisher's site with APIM's signed redirect, and
their POSTs change nothing here; when it is off for that kind, the pages work as before.
"""

from __future__ import annotations

import base64
import os
import re
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from chalicelib.bootstrap import services
from chalicelib.domain.delegation import verify
from tests.api.portal_support import Developer, make_developer, put_product
from tests.api.test_portal_signup import Visitor, _find

KEY = base64.b64encode(os.urandom(64)).decode()
SITE = "https://publisher.example.com/delegate"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def enable(api, **flags) -> None:
    body = {"url": SITE, "validationKey": KEY}
    body.update({name: {"enabled": on} for name, on in flags.items()})
    reply = api.put("/portalsettings/delegation", {"properties": body})
    assert reply.status == 200, reply.body


def handed(location: str, operation: str, **params: str) -> None:
    """``location`` is the publisher's site, for ``operation`` with these parameters, signed."""
    assert location.startswith(SITE + "?"), location
    query = dict(parse_qsl(urlsplit(location).query))
    assert query["operation"] == operation
    for name, value in params.items():
        assert query[name] == value, (name, query)
    assert verify(KEY, query)


@pytest.fixture
def dev(api, client):
    make_developer("dev", "dev@example.com")
    put_product(api, "gold", displayName="Gold plan")
    return Developer(client, "dev@example.com")


# --- sign-in and sign-up ------------------------------------------------------------------------


def test_sign_in_goes_to_the_site_with_the_page_to_return_to(api, client):
    enable(api, userRegistration=True)
    assert 'href="./signin"' in client.http.get("/").body.decode()  # the home's link leads here
    page = client.http.get("/signin")
    assert page.status_code == 302
    handed(page.headers["Location"], "SignIn", returnUrl="/")
    asked = client.http.get("/signin?" + urlencode({"next": "portal/profile"}))
    handed(asked.headers["Location"], "SignIn", returnUrl="/portal/profile")
    # A page asked for while signed out goes to sign-in, which hands it on with the page.
    profile = client.http.get("/portal/profile")
    assert profile.status_code == 303
    followed = client.http.get("/" + profile.headers["Location"].removeprefix("../"))
    handed(followed.headers["Location"], "SignIn", returnUrl="/portal/profile")


def test_a_password_form_posted_directly_starts_no_session(api, client):
    make_developer("dev", "dev@example.com")
    enable(api, userRegistration=True)
    fields = {"email": "dev@example.com", "password": "a developer passphrase"}
    reply = client.http.post("/signin", headers=FORM, body=urlencode(fields))
    assert reply.status_code == 303
    assert "Set-Cookie" not in reply.headers
    handed(reply.headers["Location"], "SignIn", returnUrl="/")
    # A script's JSON sign-in is the developer API, not a page: a token, never a session.
    script = client.http.post(
        "/signin",
        headers={"Content-Type": "application/json"},
        body='{"email": "dev@example.com", "password": "a developer passphrase"}',
    )
    assert script.status_code == 200 and script.json_body["userId"] == "dev"
    assert "Set-Cookie" not in script.headers


def test_sign_up_goes_to_the_site_and_a_post_creates_nothing(api, client):
    enable(api, userRegistration=True)
    assert 'href="./signup"' in client.http.get("/").body.decode()
    page = client.http.get("/signup")
    assert page.status_code == 302
    handed(page.headers["Location"], "SignUp", returnUrl="/")
    fields = {
        "firstName": "Grace",
        "lastName": "Hopper",
        "email": "grace@example.com",
        "password": "tea kettle in the morning fog",
        "confirmPassword": "tea kettle in the morning fog",
    }
    posted = client.http.post("/signup", headers=FORM, body=urlencode(fields))
    assert posted.status_code == 303
    handed(posted.headers["Location"], "SignUp", returnUrl="/")
    assert _find("grace@example.com") is None


def test_subscriptions_only_leaves_sign_in_and_sign_up_to_the_portal(api, client):
    enable(api, subscriptions=True)
    assert client.http.get("/signin").status_code == 200
    assert Visitor(client).page.status_code == 200


# --- the profile and sign-out -------------------------------------------------------------------


def test_profile_actions_go_to_the_site_and_change_nothing(api, dev):
    enable(api, userRegistration=True)
    before = services().accounts.get("dev")
    page = dev.get("/portal/profile")
    assert page.status == 200
    assert (
        "form-action 'self' https://publisher.example.com"
        in (page.headers["Content-Security-Policy"])
    )
    assert 'name="firstName"' not in page.raw  # the forms give way to the site's buttons
    for path, fields, operation in (
        (
            "/portal/profile/name",
            {"firstName": "Eve", "lastName": "X", "version": "1"},
            "ChangeProfile",
        ),
        ("/portal/profile/email", {"email": "eve@example.com"}, "ChangeProfile"),
        (
            "/portal/profile/password",
            {
                "currentPassword": "a developer passphrase",
                "newPassword": "another long passphrase",
                "confirmPassword": "another long passphrase",
            },
            "ChangePassword",
        ),
        ("/portal/profile/close", {"confirm": "yes"}, "CloseAccount"),
    ):
        reply = dev.post(path, fields)
        assert reply.status == 303, (path, reply.status)
        handed(reply.location, operation, userId="dev")
    close = dev.get("/portal/profile/close")
    assert close.status == 302
    handed(close.location, "CloseAccount", userId="dev")
    assert services().accounts.get("dev") == before


def test_a_delegated_post_still_needs_its_csrf_token(api, dev):
    enable(api, userRegistration=True)
    refused = dev.post("/portal/profile/close", {"confirm": "yes"}, csrf=False)
    assert refused.status == 403


def test_sign_out_ends_the_portal_session_and_goes_to_the_site(api, dev):
    enable(api, userRegistration=True)
    dev.get("/portal/profile")
    reply = dev.post("/signout", {})
    assert reply.status == 303
    handed(reply.location, "SignOut", userId="dev")
    assert "Max-Age=0" in reply.headers["Set-Cookie"]
    assert dev.get("/portal/profile").status == 303  # signed out here too


def test_without_user_registration_the_profile_works_as_before(api, dev):
    enable(api, subscriptions=True)
    page = dev.get("/portal/profile")
    assert 'name="firstName"' in page.raw
    version = str(services().accounts.get("dev").version)
    done = dev.post(
        "/portal/profile/name", {"firstName": "Dee", "lastName": "Veloper", "version": version}
    )
    assert done.status == 303 and "done=names" in done.location
    assert services().accounts.get("dev").first_name == "Dee"


# --- subscribe and unsubscribe ------------------------------------------------------------------


def test_subscribe_goes_to_the_site_with_product_and_user(api, dev):
    enable(api, subscriptions=True)
    page = dev.get("/portal/products")
    assert 'name="acceptTerms"' not in page.raw and 'name="name"' not in page.raw
    reply = dev.post("/portal/products", {"action": "subscribe", "product": "gold"})
    assert reply.status == 303
    handed(reply.location, "Subscribe", productId="gold", userId="dev")
    assert services().subscriptions.of_developer(services().accounts.get("dev")) == []


def test_only_a_product_offered_to_the_developer_is_handed_on(api, dev):
    put_product(api, "hidden", groups=())
    put_product(api, "once", subscriptionsLimit=1)
    assert dev.post("/portal/products", {"action": "subscribe", "product": "once", "name": "A"})
    enable(api, subscriptions=True)
    for product, status in (("hidden", 404), ("nosuch", 404), ("", 404), ("once", 409)):
        reply = dev.post("/portal/products", {"action": "subscribe", "product": product})
        assert reply.status == status, (product, reply.status)
        assert "Location" not in reply.headers and reply.alert()


def test_unsubscribe_goes_to_the_site_for_the_developers_own_subscription_only(api, dev, client):
    done = dev.post("/portal/products", {"action": "subscribe", "product": "gold", "name": "App"})
    sid = re.search(r"[?&]s=([0-9a-f]+)", done.location).group(1)
    enable(api, subscriptions=True)
    reply = dev.post(
        "/portal/subscriptions", {"action": "cancel", "subscription": sid, "confirm": "yes"}
    )
    assert reply.status == 303
    handed(reply.location, "Unsubscribe", subscriptionId=sid)
    assert services().subscriptions.get(sid).state.value == "active"
    make_developer("eve", "eve@example.com")
    eve = Developer(client, "eve@example.com")
    theirs = eve.post(
        "/portal/subscriptions", {"action": "cancel", "subscription": sid, "confirm": "yes"}
    )
    assert theirs.status == 404


def test_with_user_registration_only_subscribing_works_as_before(api, dev):
    enable(api, userRegistration=True)
    done = dev.post("/portal/products", {"action": "subscribe", "product": "gold", "name": "App"})
    assert done.status == 303 and "done=subscribed" in done.location
