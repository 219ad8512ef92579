"""Issue 15's three walks in a real browser, at 1366 px and at 390 px, with axe on every page.

- The whole developer journey: an administrator invites (management API, confirmation=invite);
  the invitation's link is opened and a password set; "Go to the developer portal" lands on the
  home; sign-in; Products; a subscription to a product that needs approval; the administrator
  approves it on the developer's page in the console; the developer shows the key, regenerates
  it, and the gateway check refuses the old key and allows the new one; the account is closed.
  Every step is a click on what the page offers: no address typed, never JSON, no dead end.
- Sign-up with terms whose consent is required: refused on the server without it, then the
  confirmation email's link, with the password chosen at sign-up (a wrong one is refused),
  activates the account and signs the developer in.
- Delegation: Sign in on the portal goes through the publisher's site (tests/delegation_site.py),
  which signs the developer in through generateSsoUrl; they land on the portal, signed in.

axe-core (axe-playwright-python) finds no violation, at any impact, on any portal page visited.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import save_screenshot
from tests.browser.test_console_day import PHONE, WIDE, Axe, no_sideways_scroll
from tests.browser.test_portal_pages import INVITATION, link_in_mail
from tests.browser.test_portal_subscriptions_walk import (
    admin_call,
    admin_email,
    approve_in_console,
    gateway_allows,
    new_developer,
    server,
)
from tests.delegation_site import DelegationSite, serve
from tests.live_stack import LiveServer

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture fails every test here, saying why
    expect = None

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

# Fixtures of tests/browser/test_portal_subscriptions_walk.py: the module's clean stack, and its
# administrator with an approval product ("Weather data").
__all__ = ["admin_email", "server"]

SIGNUP_CONFIRM = "/confirm-v2/identities/basic/signup"
PASSWORD = "copper kettle on a winter morning"
TERMS = "Be kind to the servers.\nNo scraping of other developers' data."
SIZES = pytest.mark.parametrize("size", [WIDE, PHONE], ids=["1366px", "390px"])


class Walk:
    """One developer's browser at one width: every page it reaches is checked."""

    def __init__(self, page: Page, width: int, name: str) -> None:
        self.page = page
        self.width = width
        self.name = name
        self.axe = Axe()

    def check(self, shot: str = "") -> None:
        """A page of ours, never JSON; axe finds nothing; nothing scrolls sideways."""
        self.page.wait_for_load_state("load")
        assert self.page.evaluate("document.contentType") == "text/html", self.page.url
        self.axe.check(self.page)
        no_sideways_scroll(self.page, self.width)
        if shot:
            save_screenshot(self.page, f"{self.name}-{shot}-{self.width}")

    def fill(self, label: str, value: str) -> None:
        self.page.get_by_label(label, exact=True).fill(value)

    def press(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).click()
        self.page.wait_for_load_state()

    def nav(self, name: str) -> None:
        self.page.get_by_role("navigation").get_by_role("link", name=name, exact=True).click()

    def sign_in(self, email: str, password: str) -> None:
        expect(self.page.get_by_role("heading", name="Sign in")).to_be_visible()
        self.check("signin")
        self.fill("Email", email)
        self.fill("Password", password)
        self.press("Sign in")


def shown_key(page: Page) -> str:
    return page.locator("code.secret").inner_text().strip()


# --- the whole journey --------------------------------------------------------------------------


@SIZES
def test_from_the_invitation_to_a_working_key_and_back_to_a_closed_account(
    server: LiveServer, browser, admin_email: str, size
) -> None:
    base = server.base_url
    user_id = f"inv-{os.urandom(5).hex()}"
    email = f"{user_id}@example.com"
    props = {"email": email, "firstName": "Ada", "lastName": "Lovelace", "confirmation": "invite"}
    admin_call(server, "PUT", f"/users/{user_id}", {"properties": props})

    context = browser.new_context(viewport=size)
    try:
        walk = Walk(context.new_page(), size["width"], "journey")
        page = walk.page

        # The invitation's link: a password, then the portal's home.
        page.goto(link_in_mail(server, email, INVITATION))
        walk.check("invitation")
        walk.fill("New password", PASSWORD)
        walk.press("Activate my account")
        expect(page.get_by_role("heading", name="Your account is active")).to_be_visible()
        walk.check("activated")
        page.get_by_role("link", name="Go to the developer portal").click()
        expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
        walk.check("home-signed-out")
        page.get_by_role("link", name="Sign in").click()
        walk.sign_in(email, PASSWORD)
        expect(page.get_by_role("heading", name="Welcome, Ada")).to_be_visible()
        walk.check("home")

        # Products: a subscription to the product that needs approval.
        walk.nav("Products")
        card = page.get_by_role("region", name="Weather data")
        expect(card).to_be_visible()
        walk.check("products")
        card.get_by_label("Name of your subscription").fill("Rain radar app")
        card.get_by_label(re.compile("I agree to the terms of use")).check()
        card.get_by_role("button", name=re.compile("Request a subscription")).click()
        page.get_by_text("It waits for approval").wait_for()
        walk.check("requested")

        # The administrator approves it on the developer's page in the console.
        approve_in_console(browser, size, f"{base}/console/users/{user_id}", admin_email)

        # The key, shown on request; regenerated: the old one refused, the new one allowed.
        walk.nav("Subscriptions")
        sub = page.get_by_role("region", name="Rain radar app")
        expect(sub).to_contain_text("Active")
        walk.check("subscriptions")
        sub.get_by_role("button", name="Show primary key").click()
        old_key = shown_key(page)
        assert re.fullmatch(r"[0-9a-f]{64}", old_key) and old_key not in page.url
        walk.check("key")
        assert gateway_allows(server, old_key)
        page.get_by_role("region", name="Rain radar app").get_by_role(
            "button", name="Regenerate primary key"
        ).click()
        page.get_by_text("has a new primary key").wait_for()
        walk.check("regenerated")
        page.get_by_role("region", name="Rain radar app").get_by_role(
            "button", name="Show primary key"
        ).click()
        new_key = shown_key(page)
        assert new_key != old_key
        assert not gateway_allows(server, old_key)
        assert gateway_allows(server, new_key)

        # The account closed, from the profile: asked once, then signed out; the key is dead.
        walk.nav("Profile")
        expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
        walk.check("profile")
        page.get_by_role("link", name="Close my account…").click()
        expect(page.get_by_role("heading", name="Close your account")).to_be_visible()
        walk.check("close")
        walk.press("Close my account")
        expect(page.get_by_role("status")).to_contain_text("Your account is closed.")
        walk.check("closed")
        assert not gateway_allows(server, new_key)
    finally:
        context.close()


# --- sign-up with terms -------------------------------------------------------------------------


@pytest.fixture
def terms_required(server: LiveServer) -> Iterator[None]:
    terms = {"text": TERMS, "enabled": True, "consentRequired": True}
    body = {"properties": {"enabled": True, "termsOfService": terms}}
    admin_call(server, "PUT", "/portalsettings/signup", body)
    yield
    admin_call(server, "PUT", "/portalsettings/signup", {"properties": {"enabled": True}})


@SIZES
def test_sign_up_with_terms_whose_consent_is_required(
    server: LiveServer, browser, terms_required, size
) -> None:
    email = f"grace-{os.urandom(5).hex()}@example.com"
    context = browser.new_context(viewport=size)
    try:
        walk = Walk(context.new_page(), size["width"], "signup")
        page = walk.page
        page.goto(server.base_url + "/")
        walk.check("home")
        page.get_by_role("link", name="Sign up").click()
        expect(page.get_by_role("heading", name="Sign up")).to_be_visible()
        terms = page.get_by_role("region", name="Terms of use")
        expect(terms).to_contain_text("No scraping")
        walk.check("form")

        walk.fill("First name", "Grace")
        walk.fill("Last name", "Hopper")
        walk.fill("Email", email)
        walk.fill("Password", PASSWORD)
        walk.fill("Confirm password", PASSWORD)
        # Without the box ticked the server refuses, saying so next to it; nothing is sent.
        walk.press("Sign up")
        expect(page.locator("#consent-error")).to_have_text("You must agree to the terms of use.")
        assert page.evaluate("document.activeElement.id") == "consent"
        walk.check("refused")
        assert server.mail_to(email) == []

        walk.fill("Password", PASSWORD)
        walk.fill("Confirm password", PASSWORD)
        page.get_by_label("I agree to the terms of use").check()
        walk.press("Sign up")
        expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
        walk.check("sent")

        # The link asks for the password chosen at sign-up: a wrong one activates nothing.
        page.goto(link_in_mail(server, email, SIGNUP_CONFIRM))
        expect(page.get_by_role("heading", name="Confirm your account")).to_be_visible()
        walk.check("confirm")
        walk.fill("Password", "not the one I chose")
        walk.press("Confirm my account")
        expect(page.locator("#password-error")).to_contain_text("not the password chosen")
        assert page.evaluate("document.activeElement.id") == "password"
        walk.check("confirm-refused")
        # The right one activates the account and signs in: the portal's home.
        walk.fill("Password", PASSWORD)
        walk.press("Confirm my account")
        expect(page.get_by_role("heading", name="Welcome, Grace")).to_be_visible()
        assert page.url == server.base_url + "/"
        walk.check("home-signed-in")
    finally:
        context.close()


# --- delegation ---------------------------------------------------------------------------------


@pytest.fixture
def delegation_site(server: LiveServer) -> Iterator[tuple[DelegationSite, str]]:
    """The publisher's site, with delegation of sign-in and account actions on for the test."""
    key = base64.b64encode(os.urandom(64)).decode()

    def generate_sso_url(user_id: str) -> str:
        return str(admin_call(server, "POST", f"/users/{user_id}/generateSsoUrl").json()["value"])

    site = DelegationSite(key, generate_sso_url, accounts={})
    with serve(site) as url:
        props = {"url": url, "validationKey": key, "userRegistration": {"enabled": True}}
        admin_call(server, "PUT", "/portalsettings/delegation", {"properties": props})
        try:
            yield site, url
        finally:
            off = {"userRegistration": {"enabled": False}, "subscriptions": {"enabled": False}}
            admin_call(server, "PUT", "/portalsettings/delegation", {"properties": off})


@SIZES
def test_sign_in_through_the_publishers_site(
    server: LiveServer, browser, delegation_site, admin_email: str, size
) -> None:
    site, url = delegation_site
    user_id, _ = new_developer(server)
    site.accounts["ada-at-publisher"] = user_id
    site.visitor = "ada-at-publisher"  # signed in at the publisher's site already
    context = browser.new_context(viewport=size)
    try:
        walk = Walk(context.new_page(), size["width"], "delegation")
        page = walk.page
        page.goto(server.base_url + "/")
        walk.check("home")
        page.get_by_role("link", name="Sign in").click()
        expect(page.get_by_role("heading", name="Welcome, Ada")).to_be_visible()
        assert page.url == server.base_url + "/"
        walk.check("home-signed-in")
        assert [h["operation"] for h in site.handled] == ["SignIn"]

        # The profile's actions are the publisher's: buttons that go there.
        walk.nav("Profile")
        expect(page.get_by_role("button", name="Change name or email")).to_be_visible()
        walk.check("profile")
        page.get_by_role("button", name="Change password").click()
        page.wait_for_url(url + "?*")
        assert site.handled[-1]["operation"] == "ChangePassword"
        assert site.handled[-1]["userId"] == user_id
    finally:
        context.close()
