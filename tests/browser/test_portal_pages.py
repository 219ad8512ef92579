"""The developer pages in a real browser: invitation, password reset, sign-in, an expired link.

Every step is done the way a person does it: the link comes from the email the service sent, the
fields are found by their labels and filled with the keyboard, Enter submits. Each page is also
checked for what makes it usable: every field has a label, Tab reaches the submit button with a
visible focus ring, and nothing overflows a 390 px wide phone screen. `make screenshots` saves every
page at desktop and phone width in build/screenshots/.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.browser.conftest import DESKTOP, PHONE, RESET_LINK_SECONDS, save_screenshot
from tests.live_stack import LiveServer

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture fails every test here, saying why
    expect = None

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

API = {"api-version": "2024-05-01"}
INVITATION = "/confirm/invitation"
RESET = "/confirm-v2/password"
FIRST_PASSWORD = "copper kettle on a winter morning"
NEW_PASSWORD = "seven lanterns over the harbour"


def admin(server: LiveServer, method: str, path: str, body: Any = None) -> requests.Response:
    """A management API call, as an administrator makes it."""
    return requests.request(
        method, server.url(path), params=API, json=body, headers=server.headers, timeout=30
    )


def new_developer(server: LiveServer, **props: Any) -> tuple[str, str]:
    """A user id and a (long, so it has to wrap on a phone) email address of a new account."""
    user_id = f"dev-{uuid.uuid4().hex[:12]}"
    email = f"ada.lovelace.analytical.engine.{user_id}@example.com"
    body = {"properties": {"email": email, "firstName": "Ada", "lastName": "Lovelace", **props}}
    reply = admin(server, "PUT", f"/users/{user_id}", body)
    assert reply.status_code == 201, reply.text
    return user_id, email


def link_in_mail(server: LiveServer, address: str, path: str) -> str:
    """The link to ``path`` in the newest email the service sent to ``address``."""
    for message in reversed(server.mail_to(address)):
        text = message.get_body(("plain",)).get_content()
        found = re.search(rf"https?://\S+{re.escape(path)}\?token=[^\s<>\")]+", text)
        if found:
            return found.group(0)
    raise AssertionError(f"no email to {address} holds a link to {path}")


def active(page: Page) -> dict[str, str]:
    return page.evaluate(
        """() => {
            const e = document.activeElement;
            const s = getComputedStyle(e);
            return {tag: e.tagName, id: e.id, type: e.type || "",
                    focusVisible: String(e.matches(":focus-visible")),
                    outline: s.outlineStyle, outlineWidth: s.outlineWidth};
        }"""
    )


def check_page(page: Page, name: str, *, form: bool = True) -> None:
    """Labels, keyboard order and visible focus (on a form), no overflow at 390 px; screenshots."""
    fields = page.locator("input:not([type=hidden])")
    field_ids = [fields.nth(i).get_attribute("id") for i in range(fields.count())]
    for field_id in field_ids:
        label = page.locator(f"label[for='{field_id}']")
        assert label.count() == 1, f"{name}: the field #{field_id} has no label"
        found = page.get_by_label(label.inner_text().strip(), exact=True)
        assert found.get_attribute("id") == field_id, f"{name}: its label finds another field"
    if form:
        assert field_ids, f"{name}: a form page without fields"
        reached = []
        for _ in range(len(field_ids) + 5):
            page.keyboard.press("Tab")
            now = active(page)
            reached.append(now)
            if now["tag"] == "BUTTON":
                break
        assert reached[-1]["tag"] == "BUTTON", f"{name}: Tab never reached the button: {reached}"
        assert reached[-1]["type"] == "submit"
        assert [r["id"] for r in reached if r["tag"] == "INPUT"] == field_ids, reached
        button = reached[-1]
        assert button["focusVisible"] == "true", f"{name}: keyboard focus is not :focus-visible"
        assert button["outline"] != "none", f"{name}: the focused button shows no outline"
        assert float(button["outlineWidth"].removesuffix("px")) >= 2, button
    save_screenshot(page, f"{name}-desktop")
    page.set_viewport_size(PHONE)
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name}: {width} px wide on a 390 px screen"
        save_screenshot(page, f"{name}-390")
    finally:
        page.set_viewport_size(DESKTOP)


def submit_with_enter(page: Page) -> int:
    """Press Enter in the focused field; the status of the POST that the form sent."""
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.keyboard.press("Enter")
    page.wait_for_load_state()
    return posted.value.status


def type_into(page: Page, label: str, text: str) -> None:
    page.get_by_label(label, exact=True).focus()
    page.keyboard.type(text)


def sign_in(page: Page, server: LiveServer, email: str, password: str, shot: str) -> int:
    """Sign in through the form; the status of the answer."""
    response = page.goto(server.base_url + "/signin")
    assert response is not None and response.status == 200
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    check_page(page, shot)
    type_into(page, "Email", email)
    type_into(page, "Password", password)
    return submit_with_enter(page)


def test_the_stylesheet_marks_keyboard_focus(live_server):
    css = requests.get(live_server.base_url + "/portal.css", timeout=10)
    assert css.status_code == 200
    assert ":focus-visible" in css.text


def test_an_invitation_link_activates_the_account_and_the_developer_signs_in(live_server, page):
    _, email = new_developer(live_server, confirmation="invite")
    link = link_in_mail(live_server, email, INVITATION)
    assert link.startswith(live_server.base_url + INVITATION)

    response = page.goto(link)
    assert response is not None and response.status == 200
    expect(page.get_by_role("heading", name="Activate your account")).to_be_visible()
    expect(page.get_by_text(email)).to_be_visible()
    check_page(page, "invitation")

    # A refused password brings the form back with the reason, the cursor in the field.
    type_into(page, "New password", "short")
    assert submit_with_enter(page) == 400
    expect(page.get_by_role("alert")).to_contain_text("8")
    assert active(page)["id"] == "password"
    check_page(page, "invitation-refused", form=False)

    page.keyboard.type(FIRST_PASSWORD)
    assert submit_with_enter(page) == 200
    expect(page.get_by_role("heading", name="Your account is active")).to_be_visible()
    check_page(page, "invitation-done", form=False)

    # Signed in, the developer lands on the portal's home (the form's answer is a redirect).
    assert sign_in(page, live_server, email, FIRST_PASSWORD, "signin") == 303
    expect(page.get_by_role("heading", name="Welcome, Ada")).to_be_visible()
    expect(page.locator("main")).to_contain_text(f"You are signed in as {email}")
    check_page(page, "signed-in", form=False)


def test_a_reset_link_sets_a_new_password_and_only_the_new_one_signs_in(live_server, page):
    user_id, email = new_developer(live_server, password=FIRST_PASSWORD)
    sent = admin(live_server, "POST", f"/users/{user_id}/confirmations/password/send")
    assert sent.status_code == 204, sent.text
    link = link_in_mail(live_server, email, RESET)

    response = page.goto(link)
    assert response is not None and response.status == 200
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    check_page(page, "reset")
    type_into(page, "New password", NEW_PASSWORD)
    assert submit_with_enter(page) == 200
    expect(page.get_by_role("heading", name="Your password is changed")).to_be_visible()
    check_page(page, "reset-done", form=False)

    assert sign_in(page, live_server, email, FIRST_PASSWORD, "signin-old-password") == 401
    expect(page.get_by_role("alert")).to_be_visible()
    check_page(page, "signin-refused", form=False)

    assert sign_in(page, live_server, email, NEW_PASSWORD, "signin-new-password") == 303
    expect(page.get_by_role("heading", name="Welcome, Ada")).to_be_visible()


def test_an_expired_reset_link_shows_the_expired_page(short_links_server, page):
    user_id, email = new_developer(short_links_server, password=FIRST_PASSWORD)
    sent = admin(short_links_server, "POST", f"/users/{user_id}/confirmations/password/send")
    answered = time.monotonic()
    assert sent.status_code == 204, sent.text
    link = link_in_mail(short_links_server, email, RESET)

    # The link was made before the answer came, so it is dead RESET_LINK_SECONDS after it (a
    # real wait: the live server's clock cannot be moved). At most about 1.5 s.
    time.sleep(max(0.0, answered + RESET_LINK_SECONDS + 0.3 - time.monotonic()))
    response = page.goto(link)
    assert response is not None and response.status == 410
    expect(page.get_by_role("heading", name="This link has expired")).to_be_visible()
    assert "expired" in page.locator("main").inner_text().lower()
    assert page.locator("input[type=password]").count() == 0
    check_page(page, "problem-expired", form=False)
