"""Issue 15 in a real browser: a developer subscribes, an administrator approves, the key works.

At 1366 px and at 390 px, against the session's live stack (reset for this module): a developer
made through the management API with a password signs in through /signin, opens the products
page, reads the terms, ticks the box and requests a subscription to a product that needs
approval; the administrator approves it on the developer's page in the console (another browser
context); the developer shows the primary key, which the gateway check allows, regenerates it,
and the gateway check refuses the old key and allows the new one. Cancel asks first. axe-core
finds no violation on either page, in any state visited; nothing scrolls sideways at 390 px.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.browser.conftest import save_screenshot
from tests.browser.test_console_day import (
    ADMIN_PASSWORD,
    PHONE,
    WIDE,
    Axe,
    no_sideways_scroll,
)
from tests.browser.test_console_walkthrough import create_admin_with_password
from tests.live_stack import LiveServer

pytestmark = pytest.mark.browser

API = {"api-version": "2024-05-01"}
DEV_PASSWORD = "a quiet lighthouse by the sea"
PRODUCT = "weather"
TERMS = "Use the data for your own apps only.\nNo reselling."


def admin_call(server: LiveServer, method: str, path: str, body=None) -> requests.Response:
    reply = requests.request(
        method, server.url(path), params=API, json=body, headers=server.headers, timeout=30
    )
    assert reply.status_code < 300, reply.text
    return reply


def gateway_allows(server: LiveServer, key: str) -> bool:
    reply = admin_call(server, "POST", "/gateway/check", {"key": key, "productId": PRODUCT})
    return bool(reply.json()["allowed"])


def approve_in_console(browser, size, user_page: str, admin_email: str) -> None:
    """The administrator signs in to the console at the developer's page (a browser of its own)
    and approves the "Rain radar app" subscription there."""
    console = browser.new_context(viewport=size)
    try:
        admin = console.new_page()
        admin.goto(user_page)
        admin.get_by_label("Email", exact=True).fill(admin_email)
        admin.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
        admin.get_by_role("button", name="Sign in").click()
        subs = admin.get_by_role("table", name=re.compile("Subscriptions of"))
        subs.get_by_role("button", name="Approve Rain radar app").click()
        admin.get_by_text("is approved and active").wait_for()
    finally:
        console.close()


@pytest.fixture(scope="module")
def server(live_server) -> Iterator[LiveServer]:
    """The session's stack, clean for this module: its administrator and one approval product."""
    live_server.reset()
    yield live_server


@pytest.fixture(scope="module")
def admin_email(server, browser) -> str:
    create_admin_with_password(server, browser, ADMIN_PASSWORD)
    product = {
        "displayName": "Weather data",
        "description": "Forecasts and observations.",
        "terms": TERMS,
        "approvalRequired": True,
        "state": "published",
    }
    admin_call(server, "PUT", f"/products/{PRODUCT}", {"properties": product})
    admin_call(server, "PUT", f"/products/{PRODUCT}/groups/developers")
    return "admin@example.com"


def new_developer(server: LiveServer) -> tuple[str, str]:
    user_id = f"dev-{uuid.uuid4().hex[:10]}"
    email = f"{user_id}@example.com"
    props = {"email": email, "firstName": "Ada", "lastName": "Lovelace", "password": DEV_PASSWORD}
    admin_call(server, "PUT", f"/users/{user_id}", {"properties": props})
    return user_id, email


def shown_key(page) -> str:
    return page.locator("code.secret").inner_text().strip()


@pytest.mark.parametrize("size", [WIDE, PHONE], ids=["1366px", "390px"])
def test_subscribe_approve_show_and_regenerate_a_key(server, browser, admin_email, size):
    base = server.base_url
    user_id, email = new_developer(server)
    axe = Axe()
    width = size["width"]

    # --- the developer signs in and requests a subscription ---------------------------------
    developer = browser.new_context(viewport=size)
    page = developer.new_page()
    page.goto(f"{base}/portal/products")  # signed out: sign-in first, then back here
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(DEV_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/portal/products")
    card = page.get_by_role("region", name="Weather data")
    assert "No reselling." in card.get_by_role("region", name="Terms of use").inner_text()
    axe.check(page)
    no_sideways_scroll(page, width)
    save_screenshot(page, f"portal-products-{width}")
    card.get_by_label("Name of your subscription").fill("Rain radar app")
    # Without the box ticked the browser itself holds the form back.
    card.get_by_role("button", name=re.compile("Request a subscription")).click()
    assert page.url.endswith("/portal/products")
    card.get_by_label(re.compile("I agree to the terms of use")).check()
    card.get_by_role("button", name=re.compile("Request a subscription")).click()
    page.get_by_text("It waits for approval").wait_for()
    assert "/portal/subscriptions?" in page.url
    sub = page.get_by_role("region", name="Rain radar app")
    assert "Awaiting approval" in sub.inner_text()
    assert sub.get_by_role("button", name="Show primary key").count() == 0
    axe.check(page)
    no_sideways_scroll(page, width)

    # --- the administrator approves it on the developer's page ------------------------------
    approve_in_console(browser, size, f"{base}/console/users/{user_id}", admin_email)
    assert [m["Subject"] for m in server.mail_to(email)] == [
        "Your subscription request for the Weather data",
        "Your subscription to the Weather data",
    ]

    # --- the developer sees the key, regenerates it -----------------------------------------
    page.goto(f"{base}/portal/subscriptions")
    sub = page.get_by_role("region", name="Rain radar app")
    assert "Active" in sub.inner_text()
    assert page.locator("code.secret").count() == 0
    sub.get_by_role("button", name="Show primary key").click()
    old_key = shown_key(page)
    assert re.fullmatch(r"[0-9a-f]{64}", old_key)
    assert old_key not in page.url
    axe.check(page)
    no_sideways_scroll(page, width)
    save_screenshot(page, f"portal-subscriptions-key-{width}")
    assert gateway_allows(server, old_key)

    sub = page.get_by_role("region", name="Rain radar app")
    sub.get_by_role("button", name="Regenerate primary key").click()
    page.get_by_text("has a new primary key").wait_for()
    page.get_by_role("region", name="Rain radar app").get_by_role(
        "button", name="Show primary key"
    ).click()
    new_key = shown_key(page)
    assert new_key != old_key
    assert not gateway_allows(server, old_key)
    assert gateway_allows(server, new_key)

    # --- hide, rename, and cancel (which asks first) ----------------------------------------
    page.get_by_role("link", name="Hide primary key").click()
    assert page.locator("code.secret").count() == 0
    page.get_by_role("link", name=re.compile("^Rename")).click()
    page.get_by_label("New name").fill("Radar app")
    page.get_by_role("button", name="Save the name").click()
    page.get_by_text("is now called “Radar app”").wait_for()
    page.get_by_role("link", name=re.compile("^Cancel subscription")).click()
    page.get_by_role("heading", name="Cancel this subscription?").wait_for()
    axe.check(page)
    no_sideways_scroll(page, width)
    page.get_by_role("button", name=re.compile("Yes, cancel")).click()
    page.get_by_text("is cancelled: its keys no longer work").wait_for()
    assert not gateway_allows(server, new_key)
    developer.close()
