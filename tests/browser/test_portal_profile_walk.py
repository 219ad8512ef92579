"""A developer's own account in a real browser, at 1366 px and 390 px, with axe on every page.

The walk: invited, accept, the portal's home, sign in, the profile; change the name (once
refused, the cursor in the field), change the email address through the link mailed to the new
one, change the password, sign out, ask for the profile and sign in again to land back on it,
close the account. axe-core finds no violation on any page, and nothing is wider than the screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import save_screenshot
from tests.browser.test_console_day import Axe
from tests.browser.test_portal_pages import INVITATION, link_in_mail, new_developer
from tests.live_stack import LiveServer

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture fails every test here, saying why
    expect = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

EMAIL_CHANGE = "/confirm-v2/identities/basic/email"
FIRST_PASSWORD = "copper kettle on a winter morning"
NEW_PASSWORD = "seven lanterns over the harbour"
WIDTHS = {"1366": {"width": 1366, "height": 900}, "390": {"width": 390, "height": 844}}


class Walk:
    """One browser at one width: every page it reaches is checked by axe and for overflow."""

    def __init__(self, page: Page, width: str) -> None:
        self.page = page
        self.width = width
        self.axe = Axe()

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        self.axe.check(self.page)
        wide = self.page.evaluate("document.documentElement.scrollWidth")
        assert wide <= WIDTHS[self.width]["width"], f"{name}: {wide} px wide"
        save_screenshot(self.page, f"profile-{name}-{self.width}")

    def fill(self, label: str, value: str) -> None:
        field = self.page.get_by_label(label, exact=True)
        field.fill(value)

    def press(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).click()
        self.page.wait_for_load_state()

    def status(self, text: str) -> None:
        expect(self.page.get_by_role("status")).to_contain_text(text)

    def sign_in(self, email: str, password: str) -> None:
        expect(self.page.get_by_role("heading", name="Sign in")).to_be_visible()
        self.fill("Email", email)
        self.fill("Password", password)
        self.press("Sign in")


@pytest.mark.parametrize("width", list(WIDTHS))
def test_a_developer_runs_their_own_account(live_server: LiveServer, browser: Browser, width):
    context = browser.new_context(viewport=WIDTHS[width])
    try:
        walk = Walk(context.new_page(), width)
        journey(live_server, walk)
    finally:
        context.close()


def journey(server: LiveServer, walk: Walk) -> None:
    page = walk.page
    base = server.base_url
    _, email = new_developer(server, confirmation="invite")
    page.goto(link_in_mail(server, email, INVITATION))
    walk.fill("New password", FIRST_PASSWORD)
    walk.press("Activate my account")
    expect(page.get_by_role("heading", name="Your account is active")).to_be_visible()

    # The done page leads to the portal's home, which offers sign-in.
    page.get_by_role("link", name="Go to the developer portal").click()
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    expect(page.get_by_role("link", name="Forgot your password?")).to_be_visible()
    walk.check("home-signed-out")
    page.get_by_role("link", name="Sign in").click()
    walk.check("signin")
    walk.sign_in(email, FIRST_PASSWORD)
    expect(page.get_by_role("heading", name="Welcome, Ada")).to_be_visible()
    walk.check("home")

    # The profile, from the navigation.
    page.get_by_role("navigation").get_by_role("link", name="Profile").click()
    expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text(email)
    walk.check("profile")

    # A name refused: said next to the field, which has the cursor; then saved.
    walk.fill("Last name", "")
    walk.press("Save name")
    expect(page.locator("#lastName-error")).to_have_text("Enter your last name.")
    assert page.evaluate("document.activeElement.id") == "lastName"
    walk.check("profile-name-refused")
    walk.fill("First name", "Augusta")
    walk.fill("Last name", "King")
    walk.press("Save name")
    walk.status("Your name is saved.")
    expect(page.locator(".facts")).to_contain_text("Augusta")

    # The email address changes only through the link mailed to the new one.
    new_email = "augusta." + email
    walk.fill("New email address", new_email)
    walk.press("Send confirmation link")
    walk.status("We sent a link to your new address")
    expect(page.locator(".facts")).to_contain_text(email)
    page.goto(link_in_mail(server, new_email, EMAIL_CHANGE))
    expect(page.get_by_role("heading", name="Confirm your new email address")).to_be_visible()
    walk.check("email-confirm")
    walk.press("Confirm my new email address")
    expect(page.get_by_role("heading", name="Your email address is changed")).to_be_visible()
    walk.check("email-changed")
    page.goto(base + "/portal/profile")
    expect(page.locator(".facts")).to_contain_text(new_email)

    # The password: the current one is required; this session goes on.
    walk.fill("Current password", FIRST_PASSWORD)
    walk.fill("New password", NEW_PASSWORD)
    walk.fill("Confirm new password", NEW_PASSWORD)
    walk.press("Change password")
    walk.status("Your password is changed.")
    walk.check("profile-password-changed")

    # Sign out; asking for the profile signs in again and lands back on it.
    walk.press("Sign out")
    walk.status("You are signed out.")
    page.goto(base + "/portal/profile")
    assert "next=portal%2Fprofile" in page.url
    walk.sign_in(new_email, NEW_PASSWORD)
    expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    assert page.url == base + "/portal/profile"

    # Close the account: asked once, then gone, with a farewell to the address it had.
    page.get_by_role("link", name="Close my account…").click()
    expect(page.get_by_role("heading", name="Close your account")).to_be_visible()
    walk.check("close")
    walk.press("Close my account")
    walk.status("Your account is closed.")
    walk.check("home-closed")
    farewell = server.mail_to(new_email)[-1]
    assert "closed" in str(farewell["Subject"]).lower() or "closed" in str(
        farewell.get_body(("plain",)).get_content()
    )
    page.goto(base + "/signin")
    walk.sign_in(new_email, NEW_PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text("not correct")
