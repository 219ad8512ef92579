"""The seed page's steps, literally, in a real browser: Playwright (PyPI) driving Debian's chromium
against the live stack (moto server + ``chalice local``).

The administrator is made by ``apim-users create-admin`` and sets its password through the link
that command prints. Then: sign in; Users; + Add (Active, in Developers); + Invite (the
invitation is read from the captured mail and accepted in a second browser context: Active);
select the user, Block (their portal sign-in fails); Activate; Reset password, Yes (the mail's
link sets a new password, and the developer signs in with it); Delete. Neither the Users page
nor a user page may scroll sideways at 390 px; `make screenshots` saves both at desktop and phone
width under build/screenshots/.

(Named test_console_walkthrough.py: tests/api/test_console.py exists, and without __init__.py
files pytest refuses two test modules with the same name.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from email.message import EmailMessage

import pytest

from chalicelib.cli import project_dir
from tests.browser.conftest import DESKTOP, PHONE, save_screenshot
from tests.live_stack import LiveServer

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "the console admin passphrase"
TIMEOUT_MS = 15_000


def create_admin(server: LiveServer) -> str:
    """``apim-users create-admin`` against the stack's backend; returns the printed link."""
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": server.moto_endpoint,
        "PORTAL_URL": server.base_url,
        "MAIL_DROP_DIR": str(server.mail_dir),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chalicelib.cli",
            "create-admin",
            "--email",
            ADMIN_EMAIL,
            "--first",
            "Grace",
            "--last",
            "Hopper",
        ],
        cwd=project_dir(),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{ADMIN_EMAIL} is an administrator" in done.stdout
    return re.search(r"^(http\S+/confirm-v2/password\?token=\S+)$", done.stdout, re.M).group(1)


def create_admin_with_password(server: LiveServer, browser, password: str) -> None:
    """``create_admin``, then its link followed in a browser of its own to choose ``password``."""
    link = create_admin(server)
    context = browser.new_context()
    page = context.new_page()
    page.goto(link)
    page.get_by_label("New password").fill(password)
    page.get_by_role("button", name="Set the new password").click()
    page.get_by_text("Your new password is set").wait_for()
    context.close()


def link_in(message: EmailMessage, path: str) -> str:
    text = message.get_body(("plain",)).get_content()
    for url in re.findall(r"https?://[^\s<>\"']+", text):
        if path in url:
            return url.rstrip(".,)")
    raise AssertionError(f"no link to {path} in: {text}")


def menu(page, name: str):
    """A link of the console's menu (the seed's "left menu")."""
    return page.get_by_role("navigation", name="Console").get_by_role("link", name=name, exact=True)


def no_sideways_scroll(page, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} is {scroll_width}px wide at {width}px"


def shoot(page, name: str) -> None:
    """The page at desktop and phone width (screenshots when asked): neither scrolls sideways."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.reload()
        no_sideways_scroll(page, size["width"])
        save_screenshot(page, f"{name}-{label}")
    page.set_viewport_size(DESKTOP)


@pytest.fixture
def server(live_server) -> LiveServer:
    """The session's stack, made clean: the Users page shows only this walk's users (and its
    screenshots)."""
    live_server.reset()
    return live_server


def test_the_seed_page_step_by_step(server, browser):
    base = server.base_url
    setup_link = create_admin(server)
    admin = browser.new_context(viewport=DESKTOP)
    admin.set_default_timeout(TIMEOUT_MS)
    page = admin.new_page()
    problems: list[str] = []
    # Errors in the browser's console (a CSP violation, a missing file), except the
    # developer pages' favicon, which they do not declare.
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.text} ({m.location.get('url')})")
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )

    # The administrator chooses a password through the link create-admin printed.
    page.goto(setup_link)
    page.get_by_label("New password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    page.get_by_text("Your new password is set").wait_for()

    # Sign in as admin.
    page.goto(f"{base}/console/")
    assert page.url.endswith("/console/signin")
    page.get_by_label("Email", exact=True).fill(ADMIN_EMAIL)
    page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Users").wait_for()
    # The keyboard: Tab reaches the skip link, then the menu, with a visible focus ring.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Users"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"

    # Create a new developer: Users, + Add, the user's details, Add.
    menu(page, "Users").click()
    page.get_by_role("link", name="+ Add").click()
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("Email", exact=True).fill("ada@example.com")
    page.keyboard.press("Enter")  # the keyboard submits the form as well as the Add button
    page.get_by_role("heading", name="Ada Lovelace").wait_for()
    assert page.locator(".facts .state").inner_text() == "Active"
    assert "Developers" in page.locator("#groups-title + ul").inner_text()
    menu(page, "Users").click()
    row = page.get_by_role("row").filter(has_text="ada@example.com")
    assert "Active" in row.inner_text() and "Developers" in row.inner_text()

    # Invite a developer: Users, + Invite, the details, Send invitation.
    page.get_by_role("link", name="+ Invite").click()
    page.get_by_label("First name").fill("Iris")
    page.get_by_label("Last name").fill("Murdoch")
    page.get_by_label("Email", exact=True).fill("iris@example.com")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_role("heading", name="Iris Murdoch").wait_for()
    assert page.locator(".facts .state").inner_text() == "Pending"
    iris_page = page.url.split("?")[0]

    # The developer accepts the invitation from the email, in a browser of their own.
    [invitation] = server.mail_to("iris@example.com")
    developer = browser.new_context(viewport=PHONE)
    developer.set_default_timeout(TIMEOUT_MS)
    dev = developer.new_page()
    dev.goto(link_in(invitation, "/confirm/invitation"))
    dev.get_by_label("New password").fill("iris first passphrase")
    dev.get_by_role("button", name="Activate my account").click()
    dev.get_by_role("heading", name="Your account is active").wait_for()
    page.reload()
    assert page.locator(".facts .state").inner_text() == "Active"

    # Block: select the user on the Users page, then Block in the top bar.
    menu(page, "Users").click()
    page.get_by_role("link", name="Iris Murdoch").click()
    assert page.url == iris_page
    page.get_by_role("button", name="Block").click()
    page.get_by_text("Iris Murdoch is blocked").wait_for()
    assert page.locator(".facts .state").inner_text() == "Blocked"
    dev.goto(f"{base}/signin")
    dev.get_by_label("Email", exact=True).fill("iris@example.com")
    dev.get_by_label("Password", exact=True).fill("iris first passphrase")
    dev.get_by_role("button", name="Sign in").click()
    dev.get_by_text("The email or password is not correct.").wait_for()

    # Activate.
    page.get_by_role("button", name="Activate").click()
    page.get_by_text("Iris Murdoch is active again").wait_for()
    assert page.locator(".facts .state").inner_text() == "Active"

    # Reset password: Reset password in the top bar, then Yes.
    page.get_by_role("link", name="Reset password").click()
    page.get_by_role("button", name="Yes").click()
    page.get_by_text("A password reset email was sent").wait_for()
    reset_mail = [m for m in server.mail_to("iris@example.com") if "/confirm-v2/password" in str(m)]
    assert len(reset_mail) == 1
    dev.goto(link_in(reset_mail[0], "/confirm-v2/password"))
    dev.get_by_label("New password").fill("iris second passphrase")
    dev.get_by_role("button", name="Set the new password").click()
    dev.get_by_text("Your new password is set").wait_for()
    dev.goto(f"{base}/signin")
    dev.get_by_label("Email", exact=True).fill("iris@example.com")
    dev.get_by_label("Password", exact=True).fill("iris second passphrase")
    dev.get_by_role("button", name="Sign in").click()
    dev.get_by_role("heading", name="Welcome, Iris").wait_for()

    # Screenshots of a user page and the Users page, desktop and phone.
    shoot(page, "console-user")
    menu(page, "Users").click()
    shoot(page, "console-users")

    # Delete: select the user, Delete in the top bar, confirm.
    page.get_by_role("link", name="Iris Murdoch").click()
    page.get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete").click()
    page.get_by_text("The user was deleted.").wait_for()
    assert "iris@example.com" not in page.locator("table").inner_text()
    assert "ada@example.com" in page.locator("table").inner_text()

    # An email template's preview: subject, its HTML in a sandboxed frame, and its text.
    menu(page, "Email templates").click()
    page.get_by_role("link", name="New developer account").click()
    page.get_by_label("Subject").fill("Welcome, {{ DevFirstName }}")
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("Subject: Welcome, Ada").wait_for()
    # The HTML version shows at once, in its sandboxed frame.
    page.frame_locator("iframe.preview").get_by_text("Ada", exact=False).first.wait_for()

    # Signing out ends the session.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are signed out.").wait_for()
    page.goto(f"{base}/console/users")
    assert page.url.endswith("/console/signin")
    assert not problems, "\n".join(problems)
    developer.close()
    admin.close()
